"""Audit of issue 14 ("Datasets: Prefect tasks ... can declare inputs and outputs"): datasets a
Prefect flow declares for its Domino job reach that job's OpenLineage events, named by the one
rule (the orchestrator-path test cannot tell them from the ones the job reports itself)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from prefect import flow

from domino_orchestrate.prefect import DominoCredentials, run_domino_job


def test_declared_inputs_and_outputs_reach_the_jobs_events(
    creds: DominoCredentials, h: Any, monkeypatch: pytest.MonkeyPatch, lineage_file: Path,
    run_event_check: Any,
) -> None:
    events_file = lineage_file
    title = f"datasets-{uuid.uuid4().hex[:8]}"

    @flow(name="audit-datasets")
    def declared() -> dict[str, Any]:
        return run_domino_job(creds, "echo declared", title=title, poll_options=h.fast(),
                              inputs=["s3://raw/events", "warehouse:sales.orders"],
                              outputs=["file:///models/churn.pkl"])

    summary = declared()
    events = [e for e in map(json.loads, events_file.read_text().splitlines())
              if "dominoJob" in e["run"]["facets"]
              and e["run"]["facets"]["dominoJob"]["jobId"] == summary["job_id"]]
    assert (events[0]["eventType"], events[-1]["eventType"]) == ("START", "COMPLETE")
    for event in (events[0], events[-1]):  # the start and the end the waiting task sends
        run_event_check.validate(event)
        assert [(d["namespace"], d["name"]) for d in event["inputs"]] == [
            ("s3://raw", "events"), ("warehouse", "sales.orders")], event["eventType"]
        assert [(d["namespace"], d["name"]) for d in event["outputs"]] == [
            ("file", "/models/churn.pkl")], event["eventType"]
