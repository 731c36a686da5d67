"""Event builders and the OpenLineage observer, driven directly with JobSnapshots: states,
facets, deterministic ids, secret scrubbing, and schema validity of every event."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
from openlineage.client.event_v2 import RunState
from openlineage.client.serde import Serde

from domino_orchestrate.core import (
    JobFailedError,
    JobHandle,
    JobSnapshot,
    JobSpec,
    JobStatus,
    LogLine,
    PollTimeoutError,
    StopNotConfirmedError,
)
from domino_orchestrate.core.errors import TransportError
from domino_orchestrate.core.lineage import Dataset, LineageInfo, ParentRun, lineage_run_id
from domino_orchestrate.core.lineage.events import (
    STATE_BY_STATUS,
    DominoFacts,
    LineageRun,
    as_uuid,
    build_event,
)
from domino_orchestrate.core.lineage.observer import OpenLineageObserver, final_state

SECRET = "sk-very-secret-api-key-0001"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def info(**kw: Any) -> LineageInfo:
    base: dict[str, Any] = dict(
        orchestrator="airflow", job_name="etl.train", run_key=("etl", "train", "manual__1", "-1"),
        parent=ParentRun("airflow-prod", "etl.train", str(uuid.uuid4()),
                         root_namespace="airflow-prod", root_name="etl", root_run_id="dagrun-1"),
        inputs=(Dataset("s3://raw", "events"),), outputs=(Dataset("s3://curated", "features"),),
        nominal_time=T0, tags={"team": "ml"},
    )
    base.update(kw)
    return LineageInfo(**base)


def snap(status: JobStatus, **kw: Any) -> JobSnapshot:
    return JobSnapshot(job_id="job-42", status=status, raw_status=status.value,
                       url="https://domino.example/jobs/o/p/job-42", hardware_tier="small",
                       started_at=T0, completed_at=T0, **kw)


def observe(lineage: LineageInfo | None = None) -> tuple[OpenLineageObserver, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    run = LineageRun.create(lineage or info(), "domino.o.p", "o/p", (SECRET,))
    obs = OpenLineageObserver(run, lambda e: events.append(Serde.to_dict(e)))
    return obs, events


def drive(obs: OpenLineageObserver, final: JobSnapshot | None, error: BaseException | None,
          lines: tuple[str, ...] = ("hello", f"key={SECRET}", "Traceback: boom")) -> None:
    obs.on_submitted(JobHandle("job-42", url="https://domino.example/jobs/o/p/job-42"),
                     JobSpec(command="python train.py", hardware_tier_name="small"))
    obs.on_status(snap(JobStatus.QUEUED))
    obs.on_status(snap(JobStatus.RUNNING))
    obs.on_status(snap(JobStatus.RUNNING))  # repeated status: no second RUNNING
    for text in lines:
        obs.on_line(LogLine(text))
    obs.on_finished(final, error)


def test_run_id_is_deterministic_uuid_and_ignores_try_number() -> None:
    a = lineage_run_id(info())
    assert a == lineage_run_id(info(tags={"other": "x"}, nominal_time=None))
    assert uuid.UUID(a).version == 5
    assert a != lineage_run_id(info(run_key=("etl", "train", "manual__2", "-1")))
    assert a != lineage_run_id(info(orchestrator="prefect"))


def test_as_uuid_keeps_uuids_and_maps_other_ids_stably() -> None:
    u = str(uuid.uuid4())
    assert as_uuid(u) == u
    assert as_uuid("manual__2024") == as_uuid("manual__2024")
    assert uuid.UUID(as_uuid("manual__2024"))


@pytest.mark.parametrize("status", list(JobStatus))
def test_every_status_maps_to_one_state(status: JobStatus) -> None:
    state, detail = final_state(snap(status), None)
    if status is JobStatus.SUCCEEDED:
        assert (state, detail) == (RunState.COMPLETE, None)
    elif status in (JobStatus.FAILED, JobStatus.ERROR):
        assert state is RunState.FAIL and detail and status.value in detail[0]
    else:  # Stopped, and any non-terminal status seen last (wait ended without an end)
        assert state is RunState.ABORT
    if status.is_terminal:
        assert STATE_BY_STATUS[status] is state


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (PollTimeoutError("job-42", waited_s=5.0, last_status="Running", stop_confirmed=True),
         RunState.ABORT),
        (StopNotConfirmedError("job-42", last_status="Stopping", waited_s=1.0), RunState.ABORT),
        (KeyboardInterrupt(), RunState.ABORT),
        (TransportError("connection reset"), RunState.FAIL),
    ],
)
def test_final_state_without_terminal_snapshot(error: BaseException, expected: RunState) -> None:
    state, detail = final_state(None, error, ["last line"])
    assert state is expected
    assert detail is not None and type(error).__name__ in detail[0] and detail[1] == "last line"


@pytest.mark.parametrize(
    ("final", "error", "expected"),
    [
        (snap(JobStatus.SUCCEEDED), None, "COMPLETE"),
        (snap(JobStatus.FAILED), "failed", "FAIL"),
        (snap(JobStatus.ERROR), "failed", "FAIL"),
        (snap(JobStatus.STOPPED), "failed", "ABORT"),
        (None, KeyboardInterrupt(), "ABORT"),
        (snap(JobStatus.RUNNING),
         PollTimeoutError("job-42", waited_s=5.0, last_status="Running", stop_confirmed=True),
         "ABORT"),
    ],
)
def test_observer_lifecycle_events_are_valid(
    ol_schema: Any, final: JobSnapshot | None, error: Any, expected: str
) -> None:
    if error == "failed":
        assert final is not None
        error = JobFailedError(final, ["tail"])
    obs, events = observe()
    drive(obs, final, error)
    obs.on_finished(final, error)  # a second end is ignored
    assert [e["eventType"] for e in events] == ["START", "RUNNING", expected]
    run_ids = {e["run"]["runId"] for e in events}
    assert run_ids == {lineage_run_id(info())}
    for event in events:
        ol_schema.validate(event)
        assert SECRET not in json.dumps(event)
    last = events[-1]
    facets = last["run"]["facets"]
    tags = {t["key"]: t["value"] for t in facets["tags"]["tags"]}
    assert tags["domino.job_id"] == "job-42"
    assert tags["domino.job_url"].endswith("/job-42")
    assert tags["domino.hardware_tier"] == "small"
    assert tags["orchestrator"] == "airflow" and tags["team"] == "ml"
    assert facets["processing_engine"]["name"] == "Domino"
    assert facets["nominalTime"]["nominalStartTime"].startswith("2026-01-02T03:04:05")
    assert facets["parent"]["job"] == {"namespace": "airflow-prod", "name": "etl.train",
                                       "facets": {}}
    assert facets["parent"]["root"]["job"]["name"] == "etl"
    assert uuid.UUID(facets["parent"]["root"]["run"]["runId"])  # "dagrun-1" made a UUID
    assert last["job"]["facets"]["jobType"]["integration"] == "DOMINO"
    assert last["job"]["facets"]["jobType"]["processingType"] == "BATCH"
    assert last["job"]["namespace"] == "domino.o.p" and last["job"]["name"] == "etl.train"
    assert [d["name"] for d in last["inputs"]] == ["events"]
    assert [d["namespace"] for d in last["outputs"]] == ["s3://curated"]
    if expected == "COMPLETE":
        assert "errorMessage" not in facets
    else:
        message = facets["errorMessage"]
        assert message["programmingLanguage"] == "shell"
        assert "Traceback: boom" in message["stackTrace"]
        assert "key=***" in message["stackTrace"]  # the echoed secret was scrubbed


def test_fail_message_names_status_and_keeps_last_20_lines(ol_schema: Any) -> None:
    obs, events = observe()
    lines = tuple(f"line {i}" for i in range(50))
    final = snap(JobStatus.FAILED, failure_message="exit code 3")
    drive(obs, final, JobFailedError(final, []), lines)
    message = events[-1]["run"]["facets"]["errorMessage"]
    assert "Failed" in message["message"] and "exit code 3" in message["message"]
    assert message["stackTrace"].splitlines() == [f"line {i}" for i in range(30, 50)]


def test_minimal_info_without_parent_or_datasets_is_valid(ol_schema: Any) -> None:
    lineage = LineageInfo(orchestrator="cli", job_name="adhoc", run_key=("x",))
    run = LineageRun.create(lineage, "domino")
    for state in (RunState.START, RunState.COMPLETE):
        event = Serde.to_dict(build_event(run, state, DominoFacts()))
        ol_schema.validate(event)
        assert "parent" not in event["run"]["facets"]
        assert "nominalTime" not in event["run"]["facets"]
