"""Dagster Pipes for Domino under ``dagster dev`` (webserver + daemon, GraphQL launch): what the
job reports shows in Dagster, a FROM_FAILURE re-execution reattaches and applies the
materialization once, and a 20,000-line job leaves few events with every line in the step's
captured logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.deploy, pytest.mark.xdist_group("dagster-deployment")]

#: From the noisy job's end to its step's end. Measured 0.9 s on a quiet machine; the per-line
#: behaviour this guards against took minutes (477 s for 20,000 lines, README "Log volume"), so
#: the bound leaves a machine at load 8 room to be ten times slower and still catches that.
STEP_DONE_WITHIN_MS = 15_000


def materializations(found: list[dict[str, Any]], asset: str = "pipes_orders"
                     ) -> list[dict[str, Any]]:
    """The metadata of each materialization of ``asset``."""
    return [{entry["label"]: entry.get("intValue", entry.get("text"))
             for entry in e["metadataEntries"]}
            for e in found if e["__typename"] == "MaterializationEvent"
            and e["assetKey"]["path"] == [asset]]


def test_pipes_job_reports_to_dagster_once_and_a_big_log_stays_cheap(
    dagster_deployment: Any,
) -> None:
    deploy = dagster_deployment
    first = deploy.launch("pipes_job")
    assert deploy.wait_status(first) == "FAILURE"  # failed after its results were recorded
    found = deploy.events(first)
    (mat,) = materializations(found)
    assert mat["rows"] == 42
    job_id = mat["domino_job_id"]
    assert mat["domino/message"].startswith(f"{job_id}#")
    checks = [e["evaluation"] for e in found if e["__typename"] == "AssetCheckEvaluationEvent"]
    assert checks == [{"checkName": "has_rows", "success": True}]
    assert "counted the orders" in [e.get("message") for e in found]

    again = deploy.reexecute(first, "FROM_FAILURE")
    assert deploy.wait_status(again) == "SUCCESS"
    # Reattached, not started again.
    assert deploy.jobs_titled("dagster pipes_job.pipes_orders") == {job_id: "Succeeded"}
    found = deploy.events(again)
    # The materialization the first run recorded is not applied again (the step yields Dagster's
    # implicit one, with the job's metadata); the check is evaluated again, as Dagster wants.
    assert [m for m in materializations(found) if "rows" in m] == []
    assert any(m.get("domino_job_id") == job_id for m in materializations(found))

    # The 20,000-line job ran beside it in the first run.
    noisy = [e for e in deploy.events(first) if e.get("stepKey") == "pipes_noisy"]
    (noisy_job_id,) = deploy.jobs_titled("dagster pipes_job.pipes_noisy")
    execution = deploy.sandbox.ctx.store.get(noisy_job_id)
    step_done = max(int(float(e["timestamp"])) for e in noisy
                    if e["__typename"] == "ExecutionStepSuccessEvent")
    print(f"20,000 lines: {len(noisy)} events, step done {step_done - execution.completed_ms} ms "
          "after the job")
    assert len(noisy) < 2000, len(noisy)
    assert step_done - execution.completed_ms < STEP_DONE_WITHIN_MS
    captured = [p for p in Path(deploy.home).rglob("*.out") if first in str(p)]
    text = "".join(p.read_text(errors="replace") for p in captured)
    assert all(f"line {i}\n" in text for i in (0, 10000, 19999)), captured
