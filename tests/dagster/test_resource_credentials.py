"""``DominoResource`` credentials follow python-domino's precedence — ``api_proxy``, ``auth_token``,
``token_file``, ``api_key`` — by the core's one rule (``DominoConfig.resolve``), as the CLI, Airflow
and Prefect do. The resource used to refuse ``auth_token`` together with ``api_key`` (and
``api_proxy`` with any other credential), so a Dagster deployment could not keep an API key
configured beside the token it prefers, as python-domino allows."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from domino_orchestrate.core.config import DominoConfig
from domino_orchestrate.dagster import DominoResource

pytestmark = pytest.mark.timeout(120)

HOST = "https://domino.example.com"
GIVEN = {"api_proxy": "http://127.0.0.1:8899", "auth_token": "tok-0123456789",
         "token_file": "/run/domino/token", "api_key": "key-0123456789"}
#: What wins, strongest first (python-domino's README, seeds/python-domino-README.md).
PRECEDENCE = [("api_proxy", "proxy"), ("auth_token", "token"), ("token_file", "token_file"),
              ("api_key", "api_key")]
COMBINATIONS = [combo for n in range(2, 5) for combo in itertools.combinations(GIVEN, n)]


@pytest.mark.parametrize("names", COMBINATIONS, ids=["+".join(c) for c in COMBINATIONS])
def test_credentials_given_together_follow_the_core_precedence(names: tuple[str, ...]) -> None:
    fields = {name: GIVEN[name] for name in names}
    resource = DominoResource(host=HOST, project="a/b", **fields)  # not refused
    config = resource.get_config()
    core = DominoConfig.resolve(HOST, "a/b", env={}, **{
        ("domino_token_file" if name == "token_file" else name): value
        for name, value in fields.items()})
    assert config.credentials == core.credentials and config.api_proxy == core.api_proxy
    winner = next(kind for name, kind in PRECEDENCE if name in names)
    assert config.credentials.kind == winner
    if winner == "token_file" and "api_key" in names:  # the key stays as the token's fallback
        assert config.credentials.fallback_api_key == GIVEN["api_key"]


def test_auth_token_wins_over_a_stale_api_key_in_a_real_materialization(
    domino_sandbox: Any, tmp_path: Path
) -> None:
    """The deployment keeps an old API key configured beside the token it prefers: the job
    starts with the token (the key would be rejected: 401) and succeeds."""
    from dagster import DagsterInstance, materialize

    from domino_orchestrate.dagster import domino_job_asset

    srv = domino_sandbox
    token = "dagster-precedence-token-01"
    srv.add_token(token)
    resource = DominoResource(host=srv.url, project="demo/quick-start", auth_token=token,
                              api_key="revoked-api-key-0123456789", poll_freq=0.5,
                              initial_interval=0.2)
    asset = domino_job_asset("precedence", "echo token-won", title="dagster precedence")
    with DagsterInstance.ephemeral() as instance:
        result = materialize([asset], resources={"domino": resource}, instance=instance)
    assert result.success
    [execution] = [ex for ex in srv.ctx.store.all() if (ex.title or "").startswith(
        "dagster precedence")]
    assert srv.execution_info(execution.id)["startAuth"] == "Authorization: Bearer"
    assert execution.status == "Succeeded"
