"""How the CLI connects and what it says about it: a private CA (``--ca-bundle``,
``DOMINO_VERIFY_CERTIFICATE=PATH``), python-domino's ``auth_token`` (``--auth-token``), and the
``domino_orchestrate`` log level (``-v``/``-vv``, ``DOMINO_LOG_LEVEL``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from domino_orchestrate.cli import app
from domino_orchestrate.sandbox import SandboxServer

from .conftest import cli_env, hostile_server, run_cli

KEY = "hostile-key-0123456789abcdef"
JOB = "aabbccddeeff001122334455"


def _with_job(server: Any) -> None:
    server.domino.jobs[JOB] = hostile_server.job_body(JOB, "Succeeded", server.domino.project_id)


def test_ca_bundle_reaches_a_domino_behind_a_private_ca(tls_hostile: Any, private_ca: Any) -> None:
    _with_job(tls_hostile)
    env = cli_env(tls_hostile.url, KEY, project="alice/churn", DOMINO_MAX_RETRIES="0")
    untrusted = run_cli(env, "status", JOB)
    assert untrusted.returncode == 4, untrusted.stderr
    assert "Traceback" not in untrusted.stderr

    trusted = run_cli(env, "status", JOB, "--json", "--ca-bundle", str(private_ca.ca_pem))
    assert trusted.returncode == 0, trusted.stderr
    assert '"status": "Succeeded"' in trusted.stdout

    by_env = run_cli({**env, "DOMINO_VERIFY_CERTIFICATE": str(private_ca.ca_pem)}, "status", JOB)
    assert by_env.returncode == 0, by_env.stderr


def test_auth_token_is_sent_as_a_bearer_token_and_wins_over_the_env_key(hostile: Any) -> None:
    _with_job(hostile)
    token = "explicit-token-9876543210"
    env = cli_env(hostile.url, KEY, project="alice/churn", DOMINO_MAX_RETRIES="0")
    done = run_cli(env, "status", JOB, "--auth-token", token)
    assert done.returncode == 0, done.stderr
    [request] = hostile.requests_to("GET", f"/v4/jobs/{JOB}")
    assert request.headers.get("authorization") == f"Bearer {token}"
    assert "x-domino-api-key" not in request.headers  # explicit credentials ignore the env (§1.2)
    assert token not in done.stdout + done.stderr


@pytest.mark.parametrize(("args", "env_extra", "shown"), [
    ([], {}, False),
    (["-v"], {}, True),
    (["--verbose"], {"DOMINO_LOG_LEVEL": "ERROR"}, True),  # the flag wins over the variable
    ([], {"DOMINO_LOG_LEVEL": "info"}, True),
], ids=["default", "-v", "--verbose-over-env", "env-info"])
def test_info_logs_follow_verbose_and_domino_log_level(
    hostile: Any, args: list[str], env_extra: dict[str, str], shown: bool
) -> None:
    _with_job(hostile)
    env = cli_env(hostile.url, KEY, project="alice/churn", DOMINO_MAX_RETRIES="0", **env_extra)
    done = run_cli(env, *args, "status", JOB)
    assert done.returncode == 0, done.stderr
    assert (f"info: Domino {hostile.url}, project alice/churn" in done.stderr) is shown, done.stderr


@pytest.fixture
def log_level() -> Iterator[logging.Logger]:
    """The ``domino_orchestrate`` logger, its level restored after an in-process CLI call."""
    logger = logging.getLogger("domino_orchestrate")
    before = logger.level
    yield logger
    logger.setLevel(before)


@pytest.mark.parametrize(("args", "level"), [
    (["status", JOB, "-v"], logging.INFO),
    (["-v", "status", JOB, "-v"], logging.DEBUG),
    (["-v", "lineage", "flush"], logging.INFO),
    (["-v", "lineage", "flush", "-v"], logging.DEBUG),
], ids=["after", "before-and-after", "flush-before", "flush-before-and-after"])
def test_verbose_counts_before_and_after_the_command_name(
    hostile: Any, log_level: logging.Logger, monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
    args: list[str], level: int,
) -> None:
    _with_job(hostile)
    env = cli_env(hostile.url, KEY, project="alice/churn", DOMINO_MAX_RETRIES="0",
                  DOMINO_ORCHESTRATE_LINEAGE_SPOOL=str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert log_level.level == level


def test_core_info_logs_reach_stderr_with_verbose(sandbox: SandboxServer) -> None:
    env = cli_env(sandbox.url, sandbox.api_key)
    args = ["run", "--poll-freq", "0.2", "--idempotency-key", "log-level-reattach", "echo once"]
    first = run_cli(env, *args)
    assert first.returncode == 0, first.stderr
    again = run_cli(env, "run", "-v", *args[1:])
    assert again.returncode == 0, again.stderr
    assert "Reattached to Domino job" in again.stderr  # the console's own line, at any level
    assert "info: Reattaching to Domino job" in again.stderr  # the core's, at INFO
    assert "info: Reattaching" not in first.stderr


def test_warnings_show_by_default_and_domino_log_level_error_hides_them(hostile: Any) -> None:
    _with_job(hostile)
    env = cli_env(hostile.url, KEY, project="alice/churn", DOMINO_MAX_RETRIES="1")
    hostile.script("GET", f"/v4/jobs/{JOB}", [hostile_server.Reply(503, {"message": "busy"})])
    loud = run_cli(env, "status", JOB)
    assert loud.returncode == 0 and "warning: Retrying GET" in loud.stderr, loud.stderr

    hostile.script("GET", f"/v4/jobs/{JOB}", [hostile_server.Reply(503, {"message": "busy"})])
    quiet = run_cli({**env, "DOMINO_LOG_LEVEL": "ERROR"}, "status", JOB)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
