"""Audit of issue 14 ("Schema validation of every event type of every orchestrator"): the
orchestrator's own run events — START, COMPLETE, FAIL and ABORT of a Prefect flow run, a Dagster
run, a CLI session (and Airflow's job type) — are valid OpenLineage, a root parent included
(against the spec where its copy is, as in CI; by their shape on a fresh clone, never skipped)."""

from __future__ import annotations

from typing import Any

import pytest
from openlineage.client.serde import Serde

from domino_orchestrate.core.lineage import ParentRun
from domino_orchestrate.core.lineage.parents import JOB_TYPES, parent_event

ROOT = "0b6f7c62-8d7e-4c5b-9a37-6f1b2b0e9d11"


@pytest.mark.parametrize("orchestrator", sorted(JOB_TYPES))
@pytest.mark.parametrize("state", ["START", "COMPLETE", "FAIL", "ABORT"])
def test_every_parent_event_is_valid_openlineage(
    run_event_check: Any, orchestrator: str, state: str,
) -> None:
    parent = ParentRun(orchestrator, "nightly", "run-2", root_namespace=orchestrator,
                       root_name="nightly", root_run_id=ROOT)
    error = None if state in ("START", "COMPLETE") else f"{orchestrator} run ended {state}"
    event = Serde.to_dict(parent_event(parent, state, orchestrator=orchestrator, error=error))
    run_event_check.validate(event)
    assert event["eventType"] == state
    facets = event["run"]["facets"]
    assert facets["parent"]["run"]["runId"] == ROOT  # a re-execution names the run it repeats
    assert event["job"]["facets"]["jobType"]["jobType"] == JOB_TYPES[orchestrator]
    assert ("errorMessage" in facets) == (error is not None)
