"""The one reattach-or-fresh rule (core/identity.py) that every integration uses."""

from __future__ import annotations

import pytest

from domino_orchestrate.core import DominoConfig, JobSnapshot, JobSpec
from domino_orchestrate.core.identity import ExecutionIdentity, reusable

CONFIG = DominoConfig.resolve("http://domino-a", "alice/churn", api_key="k" * 8, env={})
IDENT = ExecutionIdentity("airflow", ("dag", "task", "run-1", "-1"))
SPEC = JobSpec(command="python train.py")


def snap(status: str) -> JobSnapshot:
    return JobSnapshot.from_v4({"id": "j", "statuses": {"executionStatus": status}})


def test_same_unit_same_key_across_retries() -> None:
    assert IDENT.key(SPEC, CONFIG) == ExecutionIdentity(*vars(IDENT).values()).key(SPEC, CONFIG)


@pytest.mark.parametrize("changed", [
    ExecutionIdentity("airflow", IDENT.scope, generation="1"),           # a clear / rerun
    ExecutionIdentity("airflow", ("dag", "task", "run-1", "0")),          # another map index
    ExecutionIdentity("prefect", IDENT.scope),                            # another orchestrator
])
def test_a_deliberate_rerun_or_another_unit_is_a_new_key(changed: ExecutionIdentity) -> None:
    assert changed.key(SPEC, CONFIG) != IDENT.key(SPEC, CONFIG)


def test_changed_command_project_or_host_is_a_new_key() -> None:
    base = IDENT.key(SPEC, CONFIG)
    assert IDENT.key(JobSpec(command="python train.py --v2"), CONFIG) != base
    assert IDENT.key(SPEC, CONFIG.with_project("bob/churn")) != base
    other_host = DominoConfig.resolve("http://domino-b", "alice/churn", api_key="k" * 8, env={})
    assert IDENT.key(SPEC, other_host) != base


@pytest.mark.parametrize("status,expected", [
    ("Running", True), ("Queued", True), ("Succeeded", True),
    ("Failed", False), ("Error", False), ("Stopped", False),
    ("StopRequested", False), ("Stopping", False),
])
def test_reusable_only_running_or_succeeded(status: str, expected: bool) -> None:
    assert reusable(snap(status)) is expected
