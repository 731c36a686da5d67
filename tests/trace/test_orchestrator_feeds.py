"""Airflow and Prefect feeding the lineage store as users run them: Domino jobs in the sandbox,
lineage configured the documented way, then the store answered through the Python API and the
``domino-orchestrate lineage`` CLI.

- Airflow: a DAG features -> train -> report of ``DominoJobOperator``s under ``dag.test()``, the
  store configured only through Airflow's own ``[openlineage] transport`` (``type:
  domino_store``), run twice: the second DAG run's features job fails, train still runs
  (``trigger_rule="all_done"``) and report does not.
- Prefect: a flow of ``start_domino_job``/``wait_for_domino_job`` tasks with ``inputs=``/
  ``outputs=``, the store configured by ``DOMINO_ORCHESTRATE_LINEAGE_STORE``, run in full, then
  with only its features stage re-run.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from domino_orchestrate.trace.cli import lineage_app
from domino_orchestrate.trace.errors import UnknownRunError
from domino_orchestrate.trace.model import RULE_FAILED, RULE_FRESHER, ComponentRun
from domino_orchestrate.trace.store import LineageStore

PROJECT = "demo/quick-start"
FAST = {"poll_freq": 0.3, "initial_interval": 0.1, "stop_timeout": 15.0}
DATA = "warehouse"
#: The job namespace of Domino jobs of PROJECT (``core.lineage.config.job_namespace``).
NAMESPACE = "domino.demo.quick-start"


def lineage_cli(store: Path, *args: str) -> Any:
    """``domino-orchestrate lineage ARGS --json --store STORE`` (typer's runner); parsed JSON."""
    result = CliRunner().invoke(lineage_app, [*args, "--json", "--store", str(store)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def chain(node: dict[str, Any]) -> list[tuple[str | None, str]]:
    """A trace (``--json``) as [(via dataset, run id)], depth first."""
    found = [((node["via"] or {}).get("name"), node["run"]["run_id"])]
    for upstream in node["upstream"]:
        found.extend(chain(upstream))
    return found


def settled(store: LineageStore, run_id: str, timeout: float = 60.0) -> ComponentRun:
    """The run once it has ended: Airflow's provider sends a DAG run's end from a worker pool,
    after ``dag.test()`` has returned."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(UnknownRunError):
            run = store.inspect(run_id)
            if run.status != "RUNNING" or time.monotonic() > deadline:
                return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} never reached the store")
        time.sleep(0.2)


# --- Airflow ---------------------------------------------------------------------------------


# ``airflow_openlineage``: the root conftest's fixture.


def test_airflow_dag_runs_feed_the_store_through_airflows_openlineage_config(
        domino_sandbox: Any, airflow_db: Any, airflow_openlineage: None, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.sdk import DAG

    from domino_orchestrate.airflow import DominoJobOperator

    store_path = tmp_path / "lineage.db"
    # As a user configures Airflow: [openlineage] transport, nothing else.
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps(
        {"type": "domino_store", "store": str(store_path)}))
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_DELIVERY_WAIT", "0")
    # The provider emits each task event from a forked child it kills after execution_timeout
    # (10 s): on a loaded CI machine that child can need longer, and its event is then lost.
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__EXECUTION_TIMEOUT", "120")
    monkeypatch.setenv("AIRFLOW_CONN_DOMINO_DEFAULT", json.dumps({
        "conn_type": "domino", "host": domino_sandbox.url, "password": domino_sandbox.api_key,
        "extra": {"project": PROJECT}}))
    dag_id = f"churn_{tmp_path.name[-12:].replace('-', '_')}"
    with DAG(dag_id=dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
             params={"features": "echo features"}) as dag:
        features = DominoJobOperator(task_id="features", command="{{ params.features }}",
                                     output_datasets=[f"{DATA}:features.parquet"], **FAST)
        train = DominoJobOperator(task_id="train", command="echo train",
                                  input_datasets=[f"{DATA}:features.parquet"],
                                  output_datasets=[f"{DATA}:model.pkl"],
                                  trigger_rule="all_done", **FAST)
        report = DominoJobOperator(task_id="report", command="echo report",
                                   input_datasets=[f"{DATA}:model.pkl",
                                                   f"{DATA}:features.parquet"],
                                   output_datasets=[f"{DATA}:report.html"], **FAST)
        features >> train >> report
        features >> report
    bag = DagBag(dag_folder=str(Path(os.environ["AIRFLOW_HOME"]) / "dags"))
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    first = dag.test()
    assert str(first.state) == "success"
    second = dag.test(run_conf={"features": "echo features v2; exit 3"})
    assert str(second.state) == "failed"

    with LineageStore(store_path) as store:
        # Each task is two runs: the Airflow task run (Airflow's provider, job namespace
        # "default", parent: the DAG run) and its Domino job (ours, parent: that task run).
        jobs = {task: store.history(f"{NAMESPACE}/{dag_id}.{task}", limit=10)
                for task in ("features", "train", "report")}
        assert [len(jobs[t]) for t in ("features", "train", "report")] == [2, 2, 1]
        (features2, features1), (train2, train1), (report1,) = (
            jobs["features"], jobs["train"], jobs["report"])
        assert [r.status for r in (features1, train1, report1, train2)] == ["COMPLETE"] * 4
        assert (features2.status, features2.domino_status) == ("FAIL", "Failed")
        dag_runs = {}
        for run in (features1, features2, train1, report1, train2):
            assert run.orchestrator == "airflow" and run.domino_job_id
            assert run.domino_job_url == (f"{domino_sandbox.url}/jobs/{PROJECT}/"
                                          f"{run.domino_job_id}")
            assert run.parent_name == run.component and run.parent_run_id
            task_run = settled(store, run.parent_run_id, timeout=60)
            assert (task_run.namespace, task_run.component) == ("default", run.component)
            assert task_run.domino_job_id == run.domino_job_id
            dag_run = settled(store, task_run.parent_run_id or "?")
            assert dag_run.component == dag_id
            dag_runs[run.run_id] = dag_run
        assert dag_runs[features1.run_id] == dag_runs[report1.run_id]
        assert (dag_runs[report1.run_id].status, dag_runs[features2.run_id].status) == (
            "COMPLETE", "FAIL")
        root = store.trace("report.html")
        assert root.run.run_id == report1.run_id
        assert {n.via.name: n.run.run_id for n in root.upstream if n.via} == {
            "model.pkl": train1.run_id, "features.parquet": features1.run_id}
        # train#2 read what the failed features#2 wrote; report#1 used train#1, and train has
        # completed again since. features#2 failed: no fresher data for anyone.
        assert {(f.rule, f.run.run_id, f.dependency.run_id) for f in store.stale()
                if f.run.namespace == NAMESPACE} == {
            (RULE_FAILED, train2.run_id, features2.run_id),
            (RULE_FRESHER, report1.run_id, train1.run_id)}

    trace = lineage_cli(store_path, "trace", "report.html")
    assert chain(trace) == [(None, report1.run_id), ("model.pkl", train1.run_id),
                            ("features.parquet", features1.run_id),
                            ("features.parquet", features1.run_id)]
    assert trace["run"]["domino_job_id"] == report1.domino_job_id
    recent = {r["run_id"]: r for r in lineage_cli(store_path, "recent", "--limit", "50")}
    assert recent[features2.run_id]["status"] == "FAIL"
    assert recent[features2.run_id]["domino_status"] == "Failed"
    stale = lineage_cli(store_path, "stale")
    assert {(f["rule"], f["run"]["run_id"], f["dependency"]["run_id"]) for f in stale
            if f["run"]["namespace"] == NAMESPACE} == {
        (RULE_FAILED, train2.run_id, features2.run_id),
        (RULE_FRESHER, report1.run_id, train1.run_id)}


# --- Prefect ---------------------------------------------------------------------------------


def test_prefect_flow_runs_feed_the_store_through_the_store_env(
        domino_sandbox: Any, prefect_api: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect import flow

    from domino_orchestrate.prefect import (
        DominoCredentials,
        start_domino_job,
        wait_for_domino_job,
    )

    store_path = tmp_path / "lineage.db"
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_STORE", str(store_path))
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_DELIVERY_WAIT", "0")
    creds = DominoCredentials(host=domino_sandbox.url, api_key=domino_sandbox.api_key,
                              project=PROJECT)
    stages = {
        "features": ((), (f"{DATA}:features.parquet",)),
        "train": ((f"{DATA}:features.parquet",), (f"{DATA}:model.pkl",)),
        "report": ((f"{DATA}:model.pkl", f"{DATA}:features.parquet"),
                   (f"{DATA}:report.html",)),
    }

    @flow(name="churn")
    def churn(only: list[str] | None = None) -> dict[str, str]:
        job_ids = {}
        for stage, (inputs, outputs) in stages.items():
            if only and stage not in only:
                continue
            handle = start_domino_job.with_options(name=stage)(
                creds, f"echo {stage}", inputs=list(inputs), outputs=list(outputs))
            job_ids[stage] = wait_for_domino_job(creds, handle, poll_options=FAST)["job_id"]
        return job_ids

    first = churn(return_state=True)
    second = churn(only=["features"], return_state=True)
    assert first.is_completed() and second.is_completed()
    first_jobs, second_jobs = first.result(), second.result()
    flow_runs = {str(first.state_details.flow_run_id): first_jobs,
                 str(second.state_details.flow_run_id): second_jobs}

    with LineageStore(store_path) as store:
        jobs = {stage: store.history(f"{NAMESPACE}/churn.{stage}", limit=10)
                for stage in stages}
        assert [len(jobs[s]) for s in stages] == [2, 1, 1]
        (features2, features1), (train1,), (report1,) = (
            jobs["features"], jobs["train"], jobs["report"])
        for run in (features2, features1, train1, report1):
            assert (run.status, run.domino_status, run.orchestrator) == (
                "COMPLETE", "Succeeded", "prefect")
            assert run.domino_job_url == (f"{domino_sandbox.url}/jobs/{PROJECT}/"
                                          f"{run.domino_job_id}")
            # The parent is the flow run (its own START and COMPLETE from the flow's hooks).
            flow_run = settled(store, run.parent_run_id or "?")
            assert (flow_run.namespace, flow_run.component, flow_run.status) == (
                "prefect", "churn", "COMPLETE")
            stage = run.component.split(".", 1)[1]
            assert flow_runs[flow_run.run_id][stage] == run.domino_job_id
        assert features2.parent_run_id == str(second.state_details.flow_run_id)
        root = store.trace("report.html")
        assert root.run.run_id == report1.run_id
        assert [(n.via.name if n.via else None, n.run.run_id) for n in root.walk()] == [
            (None, report1.run_id), ("model.pkl", train1.run_id),
            ("features.parquet", features1.run_id), ("features.parquet", features1.run_id)]
        # features ran again (and completed): what train#1 and report#1 read is stale.
        assert {(f.rule, f.run.run_id, f.dependency.run_id) for f in store.stale()} == {
            (RULE_FRESHER, train1.run_id, features1.run_id),
            (RULE_FRESHER, report1.run_id, features1.run_id)}

    trace = lineage_cli(store_path, "trace", f"{DATA}/report.html")
    assert chain(trace) == [(None, report1.run_id), ("model.pkl", train1.run_id),
                            ("features.parquet", features1.run_id),
                            ("features.parquet", features1.run_id)]
    recent = lineage_cli(store_path, "recent", "--limit", "20")
    assert {r["run_id"]: r["status"] for r in recent if r["namespace"] == NAMESPACE} == {
        r.run_id: "COMPLETE" for r in (features2, features1, train1, report1)}
    stale = lineage_cli(store_path, "stale", "report.html")
    assert {(f["rule"], f["run"]["run_id"], f["dependency"]["run_id"]) for f in stale} == {
        (RULE_FRESHER, train1.run_id, features1.run_id),
        (RULE_FRESHER, report1.run_id, features1.run_id)}
