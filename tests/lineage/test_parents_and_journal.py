"""The orchestrator run's own events, the job journal, the end-of-job delivery wait and the
Airflow ``[openlineage]`` activation — against a real HTTP receiver (Databand stand-in) and real
processes where "another process" is the point."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from domino_orchestrate.core import DominoConfig, JobHandle, JobSnapshot, JobSpec, JobStatus
from domino_orchestrate.core.lineage import (
    LineageInfo,
    ParentRun,
    finish_parent_run,
    lineage_observers,
    lineage_observers_for_job,
    lineage_run_id,
)
from domino_orchestrate.core.lineage.config import LineageSettings, register_client_config

from .conftest import Receiver, use_databand

PARENT = ParentRun("prefect", "nightly", "3f1c2a4e-9b7d-4e0a-8c55-2d6f1e0b7a91")


def config() -> DominoConfig:
    return DominoConfig.resolve("http://127.0.0.1:1", "alice/churn", api_key="key-123456")


def info(name: str, parent: ParentRun | None = PARENT) -> LineageInfo:
    return LineageInfo("prefect", f"nightly.{name}", ("root", name), parent=parent)


def submit(name: str, job_id: str, *, attached: bool = False,
           parent: ParentRun | None = PARENT) -> list[Any]:
    observers = lineage_observers(info(name, parent), config())
    for observer in observers:
        observer.on_submitted(JobHandle(job_id, attached=attached),
                              JobSpec("python train.py", commit_id="c0ffee", title="nightly"))
    return observers


def finish(observers: list[Any], job_id: str) -> None:
    for observer in observers:
        observer.on_finished(JobSnapshot(job_id, JobStatus.SUCCEEDED, "Succeeded"), None)


def kinds(rec: Receiver) -> list[tuple[str, str]]:
    return [(e["job"]["name"], e["eventType"]) for e in rec.events]


def test_the_parent_starts_once_before_its_first_job_and_ends_once(
    databand: Receiver, ol_schema: Any
) -> None:
    first = submit("a", "6b03dc4e384459ed41115b01")
    second = submit("b", "6b03dc4e384459ed41115b02")
    finish(first, "6b03dc4e384459ed41115b01")
    finish(second, "6b03dc4e384459ed41115b02")
    assert finish_parent_run(PARENT, "COMPLETE", orchestrator="prefect")
    assert not finish_parent_run(PARENT, "COMPLETE", orchestrator="prefect")  # once
    assert kinds(databand) == [
        ("nightly", "START"), ("nightly.a", "START"), ("nightly.b", "START"),
        ("nightly.a", "COMPLETE"), ("nightly.b", "COMPLETE"), ("nightly", "COMPLETE")]
    parent_start = databand.events[0]
    assert parent_start["run"]["runId"] == PARENT.run_id
    assert parent_start["job"]["facets"]["jobType"]["jobType"] == "FLOW"
    for event in databand.events:
        ol_schema.validate(event)


def test_a_parent_without_jobs_emits_nothing_at_its_end(databand: Receiver) -> None:
    other = ParentRun("prefect", "idle", "0d2a8e5c-1f3b-4a7e-9c6d-5b4e3f2a1c0b")
    assert not finish_parent_run(other, "FAIL", orchestrator="prefect", error="boom")
    assert databand.events == []


def test_the_parent_starts_once_across_processes(databand: Receiver) -> None:
    """Four processes each submit a job of the same flow run at once: one parent START."""
    script = textwrap.dedent("""
        import sys
        from domino_orchestrate.core import DominoConfig, JobHandle, JobSpec
        from domino_orchestrate.core.lineage import LineageInfo, ParentRun, lineage_observers
        parent = ParentRun("prefect", "nightly", "3f1c2a4e-9b7d-4e0a-8c55-2d6f1e0b7a91")
        config = DominoConfig.resolve("http://127.0.0.1:1", "alice/churn", api_key="key-123456")
        n = sys.argv[1]
        for o in lineage_observers(LineageInfo("prefect", "nightly.t" + n, ("r", n), parent=parent),
                                   config):
            o.on_submitted(JobHandle("job" + n), JobSpec("true"))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(n)]) for n in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    assert sorted(kinds(databand)).count(("nightly", "START")) == 1
    assert len([k for k in kinds(databand) if k[1] == "START"]) == 5


def test_a_reattach_sends_no_second_start(databand: Receiver) -> None:
    finish(submit("a", "6b03dc4e384459ed41115b03", parent=None), "6b03dc4e384459ed41115b03")
    retry = submit("a", "6b03dc4e384459ed41115b03", attached=True, parent=None)
    finish(retry, "6b03dc4e384459ed41115b03")
    assert kinds(databand) == [("nightly.a", "START"), ("nightly.a", "COMPLETE"),
                               ("nightly.a", "COMPLETE")]


def test_a_wait_in_another_process_ends_the_same_run_with_the_same_facets(
    databand: Receiver, ol_schema: Any
) -> None:
    job_id = "6b03dc4e384459ed41115b04"
    submit("journal", job_id, parent=None)  # the starting process records the job
    script = textwrap.dedent(f"""
        from domino_orchestrate.core import DominoConfig, JobSnapshot, JobStatus
        from domino_orchestrate.core.lineage import lineage_observers_for_job
        config = DominoConfig.resolve("http://127.0.0.1:1", "alice/churn", api_key="key-123456")
        observers = lineage_observers_for_job("{job_id}", config)
        assert [type(o).__name__ for o in observers] == ["OpenLineageObserver"], observers
        for o in observers:
            o.on_finished(JobSnapshot("{job_id}", JobStatus.FAILED, "Failed"), None)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    start, fail = databand.events
    assert (start["eventType"], fail["eventType"]) == ("START", "FAIL")
    assert fail["run"]["runId"] == start["run"]["runId"] == lineage_run_id(
        info("journal", None))
    assert fail["run"]["facets"]["dominoJob"]["commitId"] == "c0ffee"  # from the submission
    assert fail["run"]["facets"]["dominoJob"]["title"] == "nightly"
    ol_schema.validate(fail)
    assert lineage_observers_for_job("6b03dc4e384459ed41115bff", config()) == []  # unknown job


def test_a_jobs_end_waits_for_a_backend_that_comes_back(
    make_receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ephemeral worker must not take spooled events with it: the job's end retries delivery
    for up to DOMINO_ORCHESTRATE_LINEAGE_DELIVERY_WAIT seconds."""
    rec = make_receiver()  # down at first
    use_databand(monkeypatch, rec)
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_DELIVERY_WAIT", "20")
    observers = submit("late", "6b03dc4e384459ed41115b05", parent=None)
    threading.Timer(1.0, rec.start).start()  # the backend comes back while the job ends
    began = time.monotonic()
    finish(observers, "6b03dc4e384459ed41115b05")
    assert time.monotonic() - began < 15
    assert [e["eventType"] for e in rec.events] == ["START", "COMPLETE"]
    assert LineageSettings.from_env().spool_dir.joinpath("databand").is_dir()
    assert not list(LineageSettings.from_env().spool_dir.joinpath("databand").glob("*.json"))


def test_undelivered_events_are_named_with_the_flush_command(
    make_receiver: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    rec = make_receiver()  # stays down
    use_databand(monkeypatch, rec)
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_DELIVERY_WAIT", "1")
    observers = submit("lost", "6b03dc4e384459ed41115b06", parent=None)
    with caplog.at_level(logging.WARNING, "domino_orchestrate.lineage"):
        finish(observers, "6b03dc4e384459ed41115b06")
    warning = [r.getMessage() for r in caplog.records if "not delivered yet" in r.getMessage()]
    assert warning and "domino-orchestrate lineage flush" in warning[-1]
    assert str(LineageSettings.from_env().spool_dir / "databand") in warning[-1]


def test_a_registered_client_config_turns_lineage_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What Airflow's [openlineage] section does through the provider (no OPENLINEAGE_* env)."""
    from domino_orchestrate.core.lineage import config as lineage_config

    path = tmp_path / "events.jsonl"
    monkeypatch.setattr(lineage_config, "_client_config_sources", [])
    assert not LineageSettings.from_env().openlineage
    register_client_config(lambda: {"transport": {"type": "file", "log_file_path": str(path),
                                                  "append": True}})
    settings = LineageSettings.from_env()
    assert settings.openlineage and settings.openlineage_client
    finish(submit("conf", "6b03dc4e384459ed41115b07", parent=None), "6b03dc4e384459ed41115b07")
    assert [json.loads(line)["eventType"] for line in path.read_text().splitlines()] == [
        "START", "COMPLETE"]
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    assert not LineageSettings.from_env().openlineage


def test_airflows_openlineage_section_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    from domino_orchestrate.airflow._lineage import airflow_openlineage_config

    transport = {"type": "file", "log_file_path": str(tmp_path / "x.jsonl")}
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps(transport))
    assert airflow_openlineage_config() == {"transport": transport}
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__DISABLED", "true")
    assert airflow_openlineage_config() is None


def test_the_snapshot_reads_the_input_commit() -> None:
    v4 = JobSnapshot.from_v4({"id": "j1", "statuses": {"executionStatus": "Succeeded"},
                              "commitDetails": {"inputCommitId": "aabbcc112233",
                                                "outputCommitId": "ddeeff445566"}})
    assert (v4.commit_id, v4.output_commit_id) == ("aabbcc112233", "ddeeff445566")
    v1 = JobSnapshot.from_v1({"id": "r1", "status": "Succeeded", "commitId": "abc123"})
    assert v1.commit_id == "abc123"


def test_the_job_finds_its_openlineage_parent_from_its_run_id_alone(databand: Receiver) -> None:
    """No env injected into the command: the job (a process that sees the spool directory, as
    on a shared volume) names its lineage run from DOMINO_RUN_ID, without MLflow."""
    job_id = "6b03dc4e384459ed41115b08"
    submit("injob", job_id)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "MLFLOW"))}
    env["DOMINO_RUN_ID"] = job_id
    out = subprocess.run(
        [sys.executable, "-c", "import json; from domino_orchestrate.injob import "
         "openlineage_parent; print(json.dumps(openlineage_parent()))"],
        capture_output=True, text=True, env=env, timeout=120, check=True)
    variables = json.loads(out.stdout)
    assert variables["OPENLINEAGE_PARENT_RUN_ID"] == lineage_run_id(info("injob"))
    assert variables["OPENLINEAGE_PARENT_JOB_NAMESPACE"] == "domino.alice.churn"
    assert variables["OPENLINEAGE_PARENT_JOB_NAME"] == "nightly.injob"
    assert variables["OPENLINEAGE_ROOT_PARENT_RUN_ID"] == PARENT.run_id
    # The START the job's own events will name as parent went out.
    assert lineage_run_id(info("injob")) in {e["run"]["runId"] for e in databand.events}
