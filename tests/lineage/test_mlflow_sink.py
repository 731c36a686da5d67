"""The MLflow sink against a real ``mlflow server`` (SQLite backend): one MLflow run per lineage
run, updated by retries; status, params, tags, duration and the stdout artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from domino_orchestrate.core import (
    DominoConfig,
    JobFailedError,
    JobHandle,
    JobSnapshot,
    JobSpec,
    JobStatus,
    LogLine,
)
from domino_orchestrate.core.lineage import LineageInfo, lineage_observers, lineage_run_id
from domino_orchestrate.core.lineage.mlflow_sink import RUN_ID_TAG, MlflowObserver

pytestmark = pytest.mark.xdist_group("mlflow")

API_KEY = "domino-api-key-mlflow-999"


def config() -> DominoConfig:
    return DominoConfig.resolve("http://127.0.0.1:1", "alice/churn", api_key=API_KEY)


def drive(observers: list[Any], job_id: str, final: JobStatus, lines: int = 3) -> None:
    handle = JobHandle(job_id, url=f"http://domino/jobs/alice/churn/{job_id}")
    spec = JobSpec(command="python train.py --lr 0.1", hardware_tier_name="small",
                   environment_id="env-1")
    snapshot = JobSnapshot(job_id, final, final.value, url=handle.url, hardware_tier="small")
    for obs in observers:
        obs.on_submitted(handle, spec)
        obs.on_status(JobSnapshot(job_id, JobStatus.RUNNING, "Running"))
        for i in range(lines):
            obs.on_line(LogLine(f"epoch {i} key={API_KEY}"))
        error = None if final is JobStatus.SUCCEEDED else JobFailedError(snapshot, [])
        obs.on_finished(snapshot, error)


def runs_for(url: str, experiment: str, lineage: LineageInfo) -> list[Any]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=url)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    return list(client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`{RUN_ID_TAG}` = '{lineage_run_id(lineage)}'",
    ))


def test_failed_then_retried_job_is_one_mlflow_run(
    mlflow_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from mlflow import MlflowClient

    monkeypatch.setenv("DOMINO_ORCHESTRATE_MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("DOMINO_ORCHESTRATE_MLFLOW_EXPERIMENT", "lineage-tests")
    lineage = LineageInfo("airflow", "dag.train", ("dag", "train", "run-7", "-1"))
    observers = lineage_observers(lineage, config())
    assert [type(o).__name__ for o in observers] == ["MlflowObserver"]
    drive(observers, "job-1", JobStatus.FAILED)
    [run] = runs_for(mlflow_server, "lineage-tests", lineage)
    assert run.info.status == "FAILED"
    # The retry (try 2) records into the same MLflow run.
    drive(lineage_observers(lineage, config()), "job-2", JobStatus.SUCCEEDED, lines=12_000)
    [run] = runs_for(mlflow_server, "lineage-tests", lineage)
    assert run.info.status == "FINISHED"
    assert run.data.params["command"] == "python train.py --lr 0.1"
    assert run.data.params["hardware_tier"] == "small"
    assert run.data.params["environment_id"] == "env-1"
    tags = run.data.tags
    assert tags["domino.job_id"] == "job-2"
    assert tags["domino.job_url"].endswith("/job-2")
    assert tags["orchestrator"] == "airflow" and tags["task"] == "dag.train"
    assert tags["run_key"] == "dag/train/run-7/-1"
    assert "duration_s" in run.data.metrics
    client = MlflowClient(tracking_uri=mlflow_server)
    path = client.download_artifacts(run.info.run_id, "stdout.txt", str(tmp_path))
    text = Path(path).read_text()
    assert text.splitlines()[-1] == "epoch 11999 key=***"
    assert len(text.splitlines()) == 10_000  # bounded
    everything = text + repr(run.data.params) + repr(run.data.tags)
    assert API_KEY not in everything


def test_stopped_job_is_killed(mlflow_server: str) -> None:
    lineage = LineageInfo("prefect", "flow.stop", ("flow-run-9", "stop"))
    observer = MlflowObserver(lineage, mlflow_server, "lineage-tests-2")
    drive([observer], "job-9", JobStatus.STOPPED)
    [run] = runs_for(mlflow_server, "lineage-tests-2", lineage)
    assert run.info.status == "KILLED"


def test_unreachable_tracking_server_switches_the_sink_off_quickly() -> None:
    import time

    from .conftest import free_port

    lineage = LineageInfo("dagster", "asset", ("r", "a"))
    observer = MlflowObserver(lineage, f"http://127.0.0.1:{free_port()}", "x")
    started = time.monotonic()
    drive([observer], "job-1", JobStatus.SUCCEEDED)
    # A refused connection answers at once (well under 0.5 s here, also at load 10); MLflow's own
    # retries would hold the task for minutes.
    assert time.monotonic() - started < 5
    assert observer.enabled is False and observer.run_id is None
