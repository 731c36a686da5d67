"""Databand's custom integration (seed 004) reads what it needs from every event we send to its
bulk endpoint: ``log`` (stdout tail + job URL), ``startTime``, ``tags`` with ``projectName`` and
``runName``, our ``dominoJob`` facet; events queued while it is down go out as one gzip list."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone
from typing import Any

import pytest

from domino_orchestrate.core import (
    DominoConfig,
    JobHandle,
    JobSnapshot,
    JobSpec,
    JobStatus,
    LogLine,
)
from domino_orchestrate.core.lineage import LineageInfo, flush_spool, lineage_observers

from .conftest import Receiver, use_databand

STARTED = datetime(2026, 11, 30, 1, 0, 5, tzinfo=timezone.utc)
COMPLETED = datetime(2026, 11, 30, 1, 1, 0, tzinfo=timezone.utc)


def run_one(name: str, job_id: str) -> None:
    config = DominoConfig.resolve("http://127.0.0.1:1", "alice/churn", api_key="key-123456")
    info = LineageInfo("airflow", f"dag.{name}", ("dag", name, "run-1", "-1"))
    [observer] = lineage_observers(info, config)
    handle = JobHandle(job_id, url=f"https://domino.example.com/jobs/alice/churn/{job_id}")
    observer.on_submitted(handle, JobSpec("python train.py", commit_id="c0ffee"))
    observer.on_status(JobSnapshot(job_id, JobStatus.RUNNING, "Running", started_at=STARTED))
    for i in range(3):
        observer.on_line(LogLine(f"epoch {i}"))
    observer.on_finished(JobSnapshot(job_id, JobStatus.SUCCEEDED, "Succeeded", url=handle.url,
                                     started_at=STARTED, completed_at=COMPLETED,
                                     output_commit_id="beef01"), None)


def test_each_seed_field_reaches_the_bulk_endpoint(databand: Receiver, ol_schema: Any) -> None:
    run_one("train", "6b03dc4e384459ed41115bd0")
    events = databand.events
    assert [e["eventType"] for e in events] == ["START", "RUNNING", "COMPLETE"]
    for post in databand.posts:
        assert post["headers"]["Content-Encoding"] == "gzip"
        assert isinstance(json.loads(gzip.decompress(post["raw"])), list)
    for event in events:
        ol_schema.validate(event)
        facets = event["run"]["facets"]
        assert facets["tags"]["projectName"] == "alice/churn"
        assert facets["tags"]["runName"] == "dag.train"
        assert facets["dominoJob"]["jobId"] == "6b03dc4e384459ed41115bd0"
        assert facets["dominoJob"]["commitId"] == "c0ffee"
    complete = events[-1]["run"]["facets"]
    assert complete["startTime"]["startTime"] == STARTED.isoformat()
    assert complete["log"]["logBody"] == "epoch 0\nepoch 1\nepoch 2"
    assert complete["log"]["logUrl"].endswith("/6b03dc4e384459ed41115bd0")
    assert complete["dominoJob"]["outputCommitId"] == "beef01"


def test_events_queued_while_databand_is_down_go_out_in_one_post(
    make_receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = make_receiver()  # not started: the endpoint is down
    use_databand(monkeypatch, rec)
    run_one("a", "6b03dc4e384459ed41115bd1")
    run_one("b", "6b03dc4e384459ed41115bd2")
    rec.start()
    delivered, remaining = flush_spool()
    assert (delivered, remaining) == (6, 0)
    assert len(rec.posts) == 1 and len(rec.events) == 6
