"""MLflow runs close from whichever process sees the end, and the job finds its own run.

Real processes all the way: a real ``mlflow server`` (SQLite), a sandbox that runs each job as a
real process, a waiting observer in another Python process (as Dagster's ``wait()``, the Airflow
trigger or a second Prefect task do), and a job that logs through ``domino_orchestrate.injob``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from datetime import timezone
from pathlib import Path
from typing import Any

import pytest

from domino_orchestrate.core import DominoClient, PollOptions
from domino_orchestrate.core.lineage import LineageInfo, lineage_observers, lineage_run_id
from domino_orchestrate.core.lineage.mlflow_sink import (
    JOB_ID_TAG,
    MAX_PARAM,
    RUN_ID_TAG,
    SINK_ERROR_TAG,
    find_run,
)

from .conftest import MLFLOW_EXPERIMENT as EXPERIMENT
from .conftest import MLFLOW_PROJECT as PROJECT

pytestmark = [pytest.mark.xdist_group("mlflow")]

FAST = PollOptions(poll_freq=0.3, initial_interval=0.1, stop_timeout=20)
LONG_NOTE = "n" * 300
COMMANDS = {
    # Quotes, a pipe and a 300-character argument: the param is what the user wrote.
    "ok": f"python train.py 2 --note '{LONG_NOTE}' | cat",
    "bad": 'python fail.py "it broke"',
    "slow": "sleep 60",
}


@pytest.fixture
def sandbox(mlflow_sandbox: Any) -> Any:
    return mlflow_sandbox


#: A fresh orchestrator run per session: the same key on a reused server would be a "retry".
SESSION = uuid.uuid4().hex[:8]


def info(name: str, test: str) -> LineageInfo:
    return LineageInfo("dagster", f"assets.{name}", (SESSION, test, name))


def mlflow_client(url: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=url)


def the_run(url: str, lineage: LineageInfo) -> Any:
    client = mlflow_client(url)
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs(
        [exp.experiment_id], filter_string=f"tags.\"{RUN_ID_TAG}\" = '{lineage_run_id(lineage)}'")
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


def ms(when: Any) -> int:
    return int(when.replace(tzinfo=when.tzinfo or timezone.utc).timestamp() * 1000)


WAITER = textwrap.dedent("""
    import json, sys
    from domino_orchestrate.core import DominoClient, PollOptions
    from domino_orchestrate.core.lineage import LineageInfo, lineage_observers

    url, key, project, jobs = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    with DominoClient(url, project, api_key=key) as client:
        for job in jobs:
            lineage = LineageInfo("dagster", job["name"], tuple(job["key"]))
            options = PollOptions(poll_freq=0.3, initial_interval=0.1, stop_timeout=20,
                                  max_poll_time=job["max_poll_time"])
            try:
                client.wait(job["job_id"], options,
                            observers=lineage_observers(lineage, client.config))
                print(job["job_id"], "ok", flush=True)
            except Exception as exc:
                print(job["job_id"], type(exc).__name__, flush=True)
""")


def test_a_run_started_in_one_process_is_closed_by_the_waiting_process(
    sandbox: Any, mlflow_env: str, tmp_path: Path
) -> None:
    """Start here (the observer that opens the run), wait in a subprocess (a fresh observer that
    never saw the start): each run ends FINISHED / FAILED / KILLED with the command as written,
    stdout.txt, and Domino's own times."""
    lineages = {name: info(name, "split") for name in COMMANDS}
    jobs = []
    with DominoClient(sandbox.url, PROJECT, api_key=sandbox.api_key) as client:
        for name, command in COMMANDS.items():
            lineage = lineages[name]
            handle = client.start_job(command, observers=lineage_observers(lineage, client.config))
            jobs.append({"job_id": handle.job_id, "name": lineage.job_name,
                         "key": list(lineage.run_key),
                         "max_poll_time": 3 if name == "slow" else 120})
            # Opened by the starting process, still RUNNING until someone sees the end.
            assert the_run(mlflow_env, lineage).info.status == "RUNNING"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        waited = subprocess.run(
            [sys.executable, "-c", WAITER, sandbox.url, sandbox.api_key, PROJECT,
             json.dumps(jobs)], capture_output=True, text=True, timeout=120, env=env,
        )
        assert waited.returncode == 0, waited.stderr[-3000:]
        ids = {job["job_id"] for job in jobs}
        outcomes = dict(line.split()[:2] for line in waited.stdout.splitlines()
                        if line.split()[:1] and line.split()[0] in ids)
        assert [outcomes[j["job_id"]] for j in jobs] == ["ok", "JobFailedError",
                                                        "PollTimeoutError"]
        snapshots = {name: client.get_job(job["job_id"]) for name, job in zip(COMMANDS, jobs, strict=True)}

    client = mlflow_client(mlflow_env)
    expected = {"ok": "FINISHED", "bad": "FAILED", "slow": "KILLED"}
    for name, job in zip(COMMANDS, jobs, strict=True):
        run, snap = the_run(mlflow_env, lineages[name]), snapshots[name]
        assert run.info.status == expected[name], name
        tags, params = run.data.tags, run.data.params
        assert tags[JOB_ID_TAG] == job["job_id"]
        assert SINK_ERROR_TAG not in tags
        # Domino's clock, not the observers'.
        assert snap.started_at is not None and snap.completed_at is not None
        assert run.info.end_time == ms(snap.completed_at), name
        assert tags["domino.started_at"] == snap.started_at.replace(
            tzinfo=snap.started_at.tzinfo or timezone.utc).isoformat()
        assert run.data.metrics["duration_s"] == pytest.approx(
            (snap.completed_at - snap.started_at).total_seconds(), abs=1e-3)
        assert tags["domino.status"] == snap.raw_status
        assert tags["mlflow.source.type"] == "JOB"
        assert job["job_id"] in tags["mlflow.note.content"]
        # The param is the command as written (no env prefix); a long one is cut to Databricks'
        # 250 characters and kept whole in a tag and in command.txt.
        command = COMMANDS[name]
        if len(command) <= MAX_PARAM:
            assert params["command"] == command
        else:
            assert len(params["command"]) == MAX_PARAM
            assert command.startswith(params["command"][:-1])
            assert tags["domino.param.command"] == command
            path = client.download_artifacts(run.info.run_id, "command.txt", str(tmp_path))
            assert Path(path).read_text() == command
        assert snap.command == command  # and Domino received it unchanged
    ok_stdout = Path(client.download_artifacts(
        the_run(mlflow_env, lineages["ok"]).info.run_id, "stdout.txt", str(tmp_path / "ok"))
    ).read_text()
    assert "epoch 2/2" in ok_stdout and "model saved" in ok_stdout


def test_the_job_logs_into_its_own_run_through_the_injob_helper(
    sandbox: Any, mlflow_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    ol_schema: Any,
) -> None:
    """examples/project/train_mlflow.py finds the run the orchestrator opened (by DOMINO_RUN_ID
    alone: OpenLineage is on too, and the command still reaches Domino as written)."""
    lineage_file = tmp_path / "lineage.jsonl"
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "file")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", str(lineage_file))
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__APPEND", "true")
    lineage = info("train", "injob")
    command = "python train_mlflow.py 3"
    lines: list[str] = []
    with DominoClient(sandbox.url, PROJECT, api_key=sandbox.api_key) as client:
        observers = lineage_observers(lineage, client.config)
        assert sorted(type(o).__name__ for o in observers) == [
            "MlflowObserver", "OpenLineageObserver"]
        final = client.run_job(command, FAST, observers=observers,
                               on_line=lambda line: lines.append(line.text))
    assert final.status.is_success, lines
    assert final.command == command
    run = the_run(mlflow_env, lineage)
    assert f"logging into MLflow run {run.info.run_id}" in lines
    assert run.info.status == "FINISHED"
    assert run.data.params["epochs"] == "3" and run.data.params["command"] == command
    history = mlflow_client(mlflow_env).get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [1, 2, 3]
    assert run.data.tags[JOB_ID_TAG] == final.job_id
    assert run.data.tags["openlineage.run_id"] == lineage_run_id(lineage)
    exp = mlflow_client(mlflow_env).get_experiment_by_name(EXPERIMENT)
    assert find_run(mlflow_client(mlflow_env), exp.experiment_id, JOB_ID_TAG,
                    final.job_id).info.run_id == run.info.run_id
    events = [json.loads(line) for line in lineage_file.read_text().splitlines()]
    assert events and {e["run"]["runId"] for e in events} == {lineage_run_id(lineage)}
    for event in events:
        ol_schema.validate(event)


def test_the_jobs_run_is_nested_under_the_orchestrators_own_run(mlflow_server: str) -> None:
    """A flow that wraps its tasks in ``mlflow.start_run()`` gets the Domino job's run as a child."""
    import mlflow

    from domino_orchestrate.core import JobHandle, JobSpec
    from domino_orchestrate.core.lineage.mlflow_sink import MlflowObserver

    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment(EXPERIMENT)
    lineage = info("nested", "nested")
    with mlflow.start_run() as parent:
        observer = MlflowObserver(lineage, mlflow_server, EXPERIMENT)
        observer.on_submitted(JobHandle("6b03dc4e384459ed41115bc1"), JobSpec("python train.py"))
    run = the_run(mlflow_server, lineage)
    assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
