"""The migration page (issue 19) against the code: python-domino's operator parameters are all
accepted with python-domino's defaults and each is documented with what it does here; the
before/after examples differ only by the import; and what the page says about ``auth_token`` in
each integration is what the integration does."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
MIGRATION = (ROOT / "docs" / "migration.md").read_text()

_NONE: Any = None
#: python-domino's operators as dominodatalab 2.2.0 declares them (domino/airflow/_operator.py),
#: each parameter with its default (``inspect.Parameter.empty`` for required ones).
OFFICIAL = {
    "DominoOperator": {
        "project": inspect.Parameter.empty, "command": inspect.Parameter.empty,
        "host": _NONE, "api_key": _NONE, "domino_token_file": _NONE, "isDirect": _NONE,
        "commitId": _NONE, "title": _NONE, "tier": _NONE, "publishApiEndpoint": _NONE,
        "poll_freq": 5, "max_poll_time": 6000, "startup_delay": 10, "include_setup_log": True,
    },
    "DominoSparkOperator": {
        "project": inspect.Parameter.empty, "command": inspect.Parameter.empty,
        "host": _NONE, "api_key": _NONE, "domino_token_file": _NONE, "poll_freq": 5,
        "max_poll_time": 6000, "startup_delay": _NONE, "commit_id": _NONE,
        "hardware_tier_name": _NONE, "environment_id": _NONE,
        "on_demand_spark_cluster_properties": _NONE, "compute_cluster_properties": _NONE,
    },
}
#: python-domino's ``template_fields``.
OFFICIAL_TEMPLATED = {"DominoOperator": ("command", "title"), "DominoSparkOperator": ("command",)}
#: What the seed adds: ``auth_token`` (its precedence step 2) and ``api_proxy`` from ``Domino``;
#: ``job_start``'s ``external_volume_mounts`` and ``title`` for the v4 operator (the seed: "the
#: same function signature as domino.job_start").
SEED_EXTRA = {"DominoOperator": ("auth_token", "api_proxy"),
              "DominoSparkOperator": ("auth_token", "api_proxy", "external_volume_mounts",
                                      "title")}


def _section(heading: str) -> str:
    start = MIGRATION.index(heading)
    following = re.search(r"^#{1,3} ", MIGRATION[start + len(heading):], re.M)
    return MIGRATION[start:start + len(heading) + following.start()] if following else (
        MIGRATION[start:])


def _documented_parameters() -> set[str]:
    """Names in backticks in the first column of the page's operator parameter table."""
    table = _section("### What each operator parameter does here")
    names: set[str] = set()
    for row in table.splitlines():
        if row.startswith("|") and not row.startswith("|---"):
            names.update(re.findall(r"`([A-Za-z_]+)`", row.split("|")[1]))
    return names


@pytest.mark.parametrize("name", list(OFFICIAL))
def test_the_compat_operators_take_python_dominos_parameters_and_defaults(name: str) -> None:
    from domino_orchestrate.airflow import compat

    operator = getattr(compat, name)
    ours = inspect.signature(operator.__init__).parameters
    for parameter, default in OFFICIAL[name].items():
        assert parameter in ours, f"{name} does not take {parameter}"
        assert ours[parameter].default == default, (name, parameter, ours[parameter].default)
    # the rest: declared here or by an operator underneath (DominoJobOperator's fields)
    declared = {p for cls in operator.__mro__ if "__init__" in vars(cls)
                for p in inspect.signature(cls.__init__).parameters}
    missing = [p for p in SEED_EXTRA[name] if p not in declared]
    assert missing == [], f"{name} does not take {missing}"
    # python-domino renders Jinja in these (a DAG's "{{ ds }}" keeps working)
    assert set(OFFICIAL_TEMPLATED[name]) <= set(operator.template_fields)


def test_every_operator_parameter_is_documented_with_what_it_does_here() -> None:
    from domino_orchestrate.airflow import compat

    documented = _documented_parameters()
    expected = {p for params in OFFICIAL.values() for p in params}
    expected |= {p for extra in SEED_EXTRA.values() for p in extra}
    for name in OFFICIAL:  # and whatever else the compat classes declare themselves
        expected |= {p for p in inspect.signature(getattr(compat, name).__init__).parameters
                     if p not in {"self", "kwargs"}}
    assert sorted(expected - documented) == []


def _code_blocks(heading: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", _section(heading), re.S)


@pytest.mark.parametrize(("heading", "renamed"), [
    ("## An Airflow DAG", {"schedule_interval=": "schedule="}),  # Airflow 3 removed the old name
    ("## A script", {}),
])
def test_before_and_after_differ_only_by_the_import(heading: str,
                                                    renamed: dict[str, str]) -> None:
    before, after = _code_blocks(heading)[:2]
    for old, new in renamed.items():
        before = before.replace(old, new)
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True)
               if a != b]
    assert changed and all(a.startswith("from domino") and b.startswith("from domino_orchestrate")
                           for a, b in changed), changed


def test_the_page_says_what_each_integration_does_with_auth_token() -> None:
    """The page lists every place ``auth_token`` is accepted, and claims of each follow the
    code: the Dagster resource takes it beside an API key, by the seed's precedence (the page
    said it refused the pair, which the resource no longer does)."""
    from domino_orchestrate.dagster import DominoResource

    credentials = MIGRATION[MIGRATION.index("Credentials follow python-domino exactly"):]
    for place in ("`Domino` class", "`auth_token` extra", "`--auth-token`", "`DominoCredentials`",
                  "`DominoResource`"):
        assert place in credentials, place
    resource = DominoResource(host="https://domino.example.com", project="a/b",
                              auth_token="tok-0123456789", api_key="key-0123456789")
    assert resource.get_config().credentials.kind == "token"  # not refused: the token wins
    assert "refuse" not in credentials, credentials


def test_the_retry_key_in_the_title_is_short_and_documented() -> None:
    """Domino's start request has no tag field (issue 17: "if they cannot, keep the title tag
    short and document it")."""
    from domino_orchestrate.core import idempotency_key
    from domino_orchestrate.core.flows import tagged_title

    tag = tagged_title(None, idempotency_key("dag", "task", "run", -1))
    assert re.fullmatch(r"\[do:[0-9a-f]{20}\]", tag) and len(tag) == 25
    assert tagged_title("nightly", "k1") == "nightly [do:k1]"
    assert "`[do:…]` (25 characters" in MIGRATION
