"""Lineage wiring, end to end: real OpenLineage events (file transport) from a Prefect flow that
runs a Domino job — job name, one stable run id, the parent and root flow runs, and the parent ids
passed into the job's environment."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from prefect import flow

from domino_orchestrate.prefect import DominoCredentials, run_domino_job


def test_lineage_events_parent_and_env(
    creds: DominoCredentials, h: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch,
    lineage_file: Path,
) -> None:
    events_file = lineage_file
    # Opt in to the parent ids in the job's environment (otherwise the command goes as written).
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_ENV", "true")
    title = f"lin-{uuid.uuid4().hex[:8]}"

    @flow(name="lineage-parent")
    def parent() -> dict[str, Any]:
        return run_domino_job(creds, 'echo "parent=$OPENLINEAGE_ROOT_PARENT_JOB_NAME"', title=title,
                              poll_options=h.fast())

    state = parent(return_state=True)
    summary = state.result()
    parent_run_id = str(state.state_details.flow_run_id)

    everything = [json.loads(line) for line in events_file.read_text().splitlines()]
    events = [e for e in everything if e["job"]["namespace"] != "prefect"]
    # The flow runs' own events, so the job's parent and root are no orphans: each START before
    # the job's, each COMPLETE from the flow-run hook.
    flows = [(e["job"]["name"], e["run"]["runId"], e["eventType"]) for e in everything
             if e["job"]["namespace"] == "prefect"]
    sub_run_id = events[0]["run"]["facets"]["parent"]["run"]["runId"]
    assert sorted(flows) == sorted([
        ("lineage-parent", parent_run_id, "START"), ("lineage-parent", parent_run_id, "COMPLETE"),
        ("run_domino_job", sub_run_id, "START"), ("run_domino_job", sub_run_id, "COMPLETE")])
    order = [(e["job"]["name"], e["eventType"]) for e in everything]
    assert order.index(("lineage-parent", "START")) < order.index(("run_domino_job", "START")) \
        < order.index(("run_domino_job.start_domino_job", "START"))
    types = [e["eventType"] for e in events]
    assert types[0] == "START" and types[-1] == "COMPLETE" and set(types) <= {"START", "RUNNING", "COMPLETE"}
    assert {e["job"]["name"] for e in events} == {"run_domino_job.start_domino_job"}
    assert len({e["run"]["runId"] for e in events}) == 1
    facet = events[0]["run"]["facets"]["parent"]
    assert (facet["job"]["namespace"], facet["job"]["name"]) == ("prefect", "run_domino_job")
    assert facet["root"]["run"]["runId"] == parent_run_id
    assert facet["root"]["job"]["name"] == "lineage-parent"
    tags = {t["key"]: t["value"] for t in events[-1]["run"]["facets"]["tags"]["tags"]}
    assert tags["domino.job_id"] == summary["job_id"]
    assert "parent=lineage-parent" in h.read_logs(parent_run_id)
    assert sandbox.api_key not in events_file.read_text()


def test_stdout_lines_are_scrubbed_of_the_api_key(creds: DominoCredentials, h: Any,
                                                   sandbox: Any) -> None:
    state = run_domino_job(creds, f"echo leaked={sandbox.api_key}", title="scrub",
                           poll_options=h.fast(), return_state=True)
    assert state.is_completed()
    logs = h.read_logs(state.state_details.flow_run_id)
    assert "leaked=***" in logs
    assert not [m for m in logs if sandbox.api_key in m]
