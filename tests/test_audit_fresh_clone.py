"""Tests must not skip on a fresh clone (issue 17): the chaos tests check lineage events in
passing, so they must run without the OpenLineage spec copy in ``../shared`` -- they validate
against the spec when it is there and check each event's RunEvent shape when it is not."""

from __future__ import annotations

import ast
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Tests whose subject is not the schema. (tests/lineage/test_e2e_sandbox.py still asks for
#: ``ol_schema``, so it skips without the spec: its owners switch it to ``run_event_check``.)
NOT_ABOUT_THE_SCHEMA = sorted((ROOT / "tests" / "chaos").glob("test_*.py"))


def _fixtures_requested(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {arg.arg for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
            for arg in node.args.args}


@pytest.mark.parametrize("path", NOT_ABOUT_THE_SCHEMA, ids=lambda p: p.name)
def test_chaos_tests_do_not_need_the_spec(path: Path) -> None:
    # ol_schema skips without the spec; run_event_check validates against it when it is there
    assert "ol_schema" not in _fixtures_requested(path)


def _root_conftest(config: pytest.Config) -> Any:
    """The root conftest pytest loaded (loading it again would fail once Airflow is imported)."""
    path = ROOT / "tests" / "conftest.py"
    [module] = [plugin for plugin in config.pluginmanager.get_plugins()
                if Path(getattr(plugin, "__file__", None) or "/").resolve() == path]
    return module


def test_without_the_spec_events_are_still_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   pytestconfig: pytest.Config) -> None:
    conftest = _root_conftest(pytestconfig)
    monkeypatch.setattr(conftest, "SPEC_DIR", tmp_path / "absent")  # a fresh clone's
    check = conftest.run_event_checker()
    assert isinstance(check, conftest.RunEventShape)
    event = {"eventType": "COMPLETE", "eventTime": "2026-11-30T08:00:00.000Z",
             "producer": "https://github.com/domino-orchestrate", "schemaURL": "https://x/y.json",
             "run": {"runId": str(uuid.uuid4())}, "job": {"namespace": "ns", "name": "job"}}
    check.validate(event)
    for broken in ({**event, "eventType": "DONE"}, {**event, "run": {"runId": "not-a-uuid"}},
                   {**event, "job": {"namespace": "ns"}}, {k: v for k, v in event.items()
                                                          if k != "eventTime"}):
        with pytest.raises((AssertionError, ValueError, KeyError)):
            check.validate(broken)
