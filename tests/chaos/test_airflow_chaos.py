"""Chaos through Airflow: ``DominoJobOperator`` tasks run by ``dag.test()`` against a sandbox that
fails 20 % of the API requests (every fault kind), and a worker process SIGKILLed mid-wait whose
task is then run again."""

from __future__ import annotations

import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from domino_orchestrate.sandbox import SandboxServer

TAG = "af"


def _conn(srv: SandboxServer, project: str, max_retries: int) -> str:
    return json.dumps({
        "conn_type": "domino", "host": srv.url, "password": srv.api_key,
        "extra": {"project": project, "max_retries": max_retries},
    })


def _streamed(out: str) -> list[str]:
    """The stdout lines the operator streamed into the task log (``_log_text``'s info call; the
    chaos jobs print a few lines per fetch, so each is its own record, not a LineBatcher batch)."""
    from domino_orchestrate.airflow.operators import _DominoBaseOperator

    source, first = inspect.getsourcelines(_DominoBaseOperator._log_text)
    (offset,) = [n for n, text in enumerate(source) if 'self.log.info("%s", text)' in text]
    loc = f"loc=operators.py:{first + offset}"
    pattern = re.compile(r"\[info\s*\] (.*?)\s+\[airflow\.task\.operators\.domino_orchestrate"
                         r"\.airflow\.operators\.DominoJobOperator\] " + re.escape(loc) + "$")
    return [m.group(1) for m in map(pattern.search, out.splitlines()) if m]


@pytest.mark.chaos
@pytest.mark.timeout(3600)
def test_airflow_jobs_under_faults(run_event_check: Any, srv: SandboxServer, chaos: Any, lineage_file: Path,
                                   airflow_db: Path, domino_env: None,
                                   monkeypatch: pytest.MonkeyPatch, capfd: Any) -> None:
    """N tasks, one DAG run: each task in its right state (every 4th job exits 3), one Domino
    start per task, the task log holds exactly the job's stdout lines, and one START plus one
    terminal lineage event per Domino job."""
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.sdk import DAG
    from airflow.utils.session import create_session

    from domino_orchestrate.airflow import DominoJobOperator

    n = chaos.jobs
    monkeypatch.setenv("AIRFLOW_CONN_DOMINO_DEFAULT", _conn(srv, chaos.project, chaos.max_retries))
    with DAG("chaos_airflow", schedule=None) as dag:
        for i in range(n):
            DominoJobOperator(task_id=f"job_{i}", command=chaos.command(TAG, i),
                              title=chaos.title(TAG, i), poll_freq=0.5, initial_interval=0.2,
                              stop_timeout=15.0, retries=0)
    bag = DagBag(dag_folder=str(airflow_db / "dags"))
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)

    srv.set_faults(rate=chaos.fault_rate, seed=3303, slow_seconds=1.0)
    dag_run = dag.test()
    srv.set_faults(rate=0.0)
    out = capfd.readouterr().out

    with create_session() as session:
        states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances(session=session)}
    assert states == {f"job_{i}": "failed" if chaos.exit_code(i) else "success" for i in range(n)}
    streamed = _streamed(out)
    jobs = chaos.check_jobs(srv, TAG, n, chaos.group_lines(TAG, streamed))
    assert len(streamed) == sum(len(chaos.stdout_lines(srv, s.job_id)) for s in jobs.values())
    events = chaos.check_lineage(lineage_file, jobs)
    for event in events:  # success and failure events of this orchestrator, against the spec
        run_event_check.validate(event)


@pytest.mark.chaos
@pytest.mark.timeout(600)
def test_airflow_worker_killed_mid_wait_then_task_rerun(srv: SandboxServer, chaos: Any,
                                                        tmp_path: Path) -> None:
    """A worker running the one-task DAG ``chaos_kill`` (``dag.test()`` inline, see
    worker_airflow.py) is SIGKILLed while its Domino job runs; then the same DAG run (same dag_id,
    same fixed run_after/logical_date, hence the same run_id) is run again. ``dag.test()`` replaces
    the dead DAG run by a fresh one with that run_id, so the task's durable state is gone and the
    reattach must come from the operator's idempotency key (dag, task, run_id, map index): one
    Domino job in all, the rerun attaches to it and the task succeeds. 20 % faults throughout."""
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    env = chaos.clean_env({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW_CONN_DOMINO_DEFAULT": _conn(srv, chaos.project, chaos.max_retries),
        "CHAOS_COMMAND": "echo started; sleep 4; echo done",
        "CHAOS_TITLE": "chaos-af-kill",
    })
    argv = [sys.executable, str(chaos.workers / "worker_airflow.py")]
    srv.set_faults(rate=chaos.fault_rate, seed=77, slow_seconds=1.0)
    job_id = chaos.kill_when_running(srv, argv, env, tmp_path / "first.log", "chaos-af-kill")
    result = chaos.run_worker(argv, env, tmp_path / "second.log")
    srv.set_faults(rate=0.0)

    second = (tmp_path / "second.log").read_text()
    assert result["run_id"] == "manual__2026-01-01T00:00:00+00:00"
    assert result["state"] == "success" and result["dag_state"] == "success"
    assert result["job_id"] == job_id
    assert result["return_value"]["job_id"] == job_id
    assert result["return_value"]["status"] == "Succeeded"
    assert f"Attached to Domino job {job_id}" in second
    assert chaos.starts_per_title(srv) == {"chaos-af-kill": 1}
    with chaos.watcher(srv) as client:
        (snap,) = client.list_jobs()
    assert snap.job_id == job_id and snap.status.value == "Succeeded"
    assert srv.output(job_id)[0] == b"started\ndone\n"
