"""Every orchestrator path, real parts all the way: a real ``mlflow server``, a sandbox running each
job as a real process (the job logs into its own MLflow run through ``injob.mlflow_run()`` and
reports datasets and a metric through ``injob.report()``), OpenLineage's file transport, and
each orchestrator as users run it — Airflow under ``dag.test()`` (sync, and deferrable with the
trigger in-process; lineage on through Airflow's own ``[openlineage] transport``, no
``OPENLINEAGE__*`` env), Prefect with start and wait in two processes, Dagster ``materialize``,
and the CLI as a subprocess.

Each ends with the job's MLflow run closed (FINISHED / FAILED) with the exact command param,
``stdout.txt``, Domino's times and the job's own metric in the same run, and every lineage
event valid against the OpenLineage JSON Schema (our facets against theirs), parents included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from domino_orchestrate.core import DominoClient

from .conftest import MLFLOW_EXPERIMENT, MLFLOW_PROJECT, read_events

pytestmark = [pytest.mark.xdist_group("mlflow")]

SESSION = uuid.uuid4().hex[:8]
#: The job: prints its epochs, then reports datasets, a metric and a param (``report.py``,
#: written into the project by ``mlflow_sandbox``).
COMMAND = "python train.py 2 && python report.py"
#: The same, with the job logging into its run through ``injob.mlflow_run()`` (imports MLflow in
#: the job: seconds of CPU, so one path runs it).
MLFLOW_COMMAND = "python train_mlflow.py 2 && python report.py"
FAST = {"poll_freq": 0.4, "initial_interval": 0.1, "stop_timeout": 15.0}


@pytest.fixture
def sandbox(mlflow_sandbox: Any) -> Any:
    return mlflow_sandbox


def ms(when: datetime) -> int:
    return int(when.replace(tzinfo=when.tzinfo or timezone.utc).timestamp() * 1000)


def check_job(sandbox: Any, mlflow_url: str, job_id: str, events: list[dict[str, Any]],
              ol_schema: Any, tmp_path: Path, *, status: str = "FINISHED",
              command: str = COMMAND) -> tuple[Any, list[dict[str, Any]]]:
    """The job's MLflow run and OpenLineage events are complete and agree; returns both."""
    from mlflow import MlflowClient

    from domino_orchestrate.core.lineage.mlflow_sink import JOB_ID_TAG, SINK_ERROR_TAG, find_run

    with DominoClient(sandbox.url, MLFLOW_PROJECT, api_key=sandbox.api_key) as client:
        snap = client.get_job(job_id)
    assert snap.command == command  # Domino received the command as written
    mlflow = MlflowClient(tracking_uri=mlflow_url)
    exp = mlflow.get_experiment_by_name(MLFLOW_EXPERIMENT)
    run = find_run(mlflow, exp.experiment_id, JOB_ID_TAG, job_id)
    assert run is not None, f"no MLflow run for job {job_id}"
    tags, params = run.data.tags, run.data.params
    assert run.info.status == status
    assert SINK_ERROR_TAG not in tags
    assert params["command"] == command
    assert snap.completed_at is not None and snap.started_at is not None
    assert run.info.end_time == ms(snap.completed_at)  # Domino's clock
    assert tags["domino.started_at"] == snap.started_at.replace(
        tzinfo=snap.started_at.tzinfo or timezone.utc).isoformat()
    assert snap.commit_id and tags["mlflow.source.git.commit"] == snap.commit_id
    stdout = Path(mlflow.download_artifacts(run.info.run_id, "stdout.txt",
                                            str(tmp_path / job_id))).read_text()
    if "train_mlflow.py" in command:  # the job found this run by DOMINO_RUN_ID and logged in it
        assert f"logging into MLflow run {run.info.run_id}" in stdout
        assert [m.step for m in mlflow.get_metric_history(run.info.run_id, "loss")][:2] == [1, 2]
        assert params["epochs"] in command
    if status == "FINISHED":
        assert "epoch 2/2" in stdout
        # What the job reported through a Pipes message: its metric and param, in this run.
        assert run.data.metrics["auc"] == pytest.approx(0.91)
        assert params["model"] == "gbm"
    for event in events:
        ol_schema.validate(event)
    mine = [e for e in events if e["run"]["runId"] == tags["openlineage.run_id"]]
    types = [e["eventType"] for e in mine]
    assert types.count("START") == 1 and types[0] == "START", types
    assert types[-1] == {"FINISHED": "COMPLETE", "FAILED": "FAIL"}[status], types
    final = mine[-1]["run"]["facets"]
    assert final["dominoJob"]["jobId"] == job_id
    assert final["dominoJob"]["commitId"] == snap.commit_id
    assert final["startTime"]["startTime"] == snap.started_at.replace(
        tzinfo=snap.started_at.tzinfo or timezone.utc).isoformat()
    if status == "FINISHED":
        outputs = {(d["namespace"], d["name"]) for d in mine[-1]["outputs"]}
        inputs = {(d["namespace"], d["name"]) for d in mine[-1]["inputs"]}
        assert ("s3://curated", "model") in outputs and ("s3://raw", "events") in inputs
    return run, mine


def parent_events(events: list[dict[str, Any]], namespace: str) -> dict[str, list[str]]:
    """{parent run id: event types} of the orchestrator runs in ``namespace``."""
    found: dict[str, list[str]] = {}
    for event in events:
        if event["job"]["namespace"] == namespace and "dominoJob" not in event["run"]["facets"]:
            found.setdefault(event["run"]["runId"], []).append(event["eventType"])
    return found


# --- Airflow -------------------------------------------------------------------------------------


def run_airflow(sandbox: Any, monkeypatch: pytest.MonkeyPatch, lineage_file: Path,
                deferrable: bool) -> tuple[Any, str]:
    pytest.importorskip("airflow")
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.sdk import DAG

    from domino_orchestrate.airflow import DominoJobOperator

    # Only Airflow's own [openlineage] section configures OpenLineage here.
    for key in list(os.environ):
        if key.startswith("OPENLINEAGE__"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps(
        {"type": "file", "log_file_path": str(lineage_file), "append": True}))
    monkeypatch.setenv("AIRFLOW_CONN_DOMINO_DEFAULT", json.dumps({
        "conn_type": "domino", "host": sandbox.url, "password": sandbox.api_key,
        "extra": {"project": MLFLOW_PROJECT}}))
    for name in ("DOMINO_API_HOST", "DOMINO_USER_API_KEY", "DOMINO_TOKEN_FILE", "DOMINO_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    with DAG(dag_id=f"lineage_{'deferred' if deferrable else 'sync'}_{SESSION}",
             schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        DominoJobOperator(task_id="train", command=COMMAND, deferrable=deferrable, **FAST)
    bag = DagBag(dag_folder=str(Path(os.environ["AIRFLOW_HOME"]) / "dags"))
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    dag_run = dag.test()
    job_ids = {e["run"]["facets"]["dominoJob"]["jobId"] for e in read_events(lineage_file)
               if e["job"]["name"] == f"{dag.dag_id}.train" and "dominoJob" in e["run"]["facets"]}
    assert len(job_ids) == 1, job_ids
    return dag_run, job_ids.pop()


def test_airflow_sync_and_deferrable_close_the_run_with_the_same_facets(
    sandbox: Any, mlflow_env: str, lineage_file: Path, monkeypatch: pytest.MonkeyPatch,
    ol_schema: Any, tmp_path: Path, airflow_db: Any,
) -> None:
    completes = {}
    for deferrable in (False, True):
        dag_run, job_id = run_airflow(sandbox, monkeypatch, lineage_file, deferrable)
        assert str(dag_run.state) == "success"
        job_events = [e for e in read_events(lineage_file) if "dominoJob" in e["run"]["facets"]
                      and e["run"]["facets"]["dominoJob"]["jobId"] == job_id]
        _, mine = check_job(sandbox, mlflow_env, job_id, job_events, ol_schema, tmp_path)
        completes[deferrable] = mine[-1]
        parent = mine[0]["run"]["facets"]["parent"]
        assert parent["root"]["job"]["name"] == dag_run.dag_id  # the provider's DAG run
    # The deferrable COMPLETE (sent by the trigger, which never saw the start) carries the same
    # facets, tags and Domino facts as the synchronous one.
    sync, deferred = completes[False]["run"]["facets"], completes[True]["run"]["facets"]
    assert sorted(sync) == sorted(deferred)
    assert sorted(t["key"] for t in sync["tags"]["tags"]) == \
        sorted(t["key"] for t in deferred["tags"]["tags"])
    assert sorted(sync["dominoJob"]) == sorted(deferred["dominoJob"])


# --- Prefect: start and wait in two processes ------------------------------------------------------

PREFECT_WAITER = textwrap.dedent("""
    import json, sys
    from prefect import flow
    from domino_orchestrate.prefect import DominoCredentials, wait_for_domino_job

    host, key, project, handle = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])

    @flow(name="lineage-waiter")
    def waiter():
        creds = DominoCredentials(host=host, api_key=key, project=project)
        return wait_for_domino_job(creds, handle, poll_freq=0.4)

    print(json.dumps(waiter()), flush=True)
""")


def test_prefect_start_and_wait_in_two_processes_end_one_run(
    sandbox: Any, mlflow_env: str, lineage_file: Path, ol_schema: Any, tmp_path: Path,
    prefect_api: str,
) -> None:
    from prefect import flow

    from domino_orchestrate.prefect import DominoCredentials, start_domino_job

    @flow(name="lineage-starter")
    def starter() -> dict[str, Any]:
        creds = DominoCredentials(host=sandbox.url, api_key=sandbox.api_key,
                                  project=MLFLOW_PROJECT)
        handle = start_domino_job(creds, COMMAND, inputs=["s3://raw/events"],
                                  outputs=["s3://curated/model"])
        return handle.to_dict()

    state = starter(return_state=True)
    handle = state.result()
    flow_run_id = str(state.state_details.flow_run_id)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PREFECT_API_URL"] = prefect_api
    waited = subprocess.run(
        [sys.executable, "-c", PREFECT_WAITER, sandbox.url, sandbox.api_key, MLFLOW_PROJECT,
         json.dumps(handle)], capture_output=True, text=True, timeout=180, env=env)
    assert waited.returncode == 0, waited.stderr[-3000:]
    events = read_events(lineage_file)
    _, mine = check_job(sandbox, mlflow_env, handle["job_id"], [
        e for e in events if e["job"]["namespace"] != "prefect"], ol_schema, tmp_path)
    # START from the starting process, COMPLETE from the waiting one: one lineage run, and the
    # flow run that started the job has its own START and COMPLETE (no orphan parent).
    assert mine[0]["run"]["facets"]["parent"]["run"]["runId"] == flow_run_id
    assert parent_events(events, "prefect")[flow_run_id] == ["START", "COMPLETE"]
    for event in events:
        ol_schema.validate(event)


# --- Dagster ---------------------------------------------------------------------------------------


def test_dagster_materialize_closes_each_run_and_starts_the_dagster_run(
    sandbox: Any, mlflow_env: str, lineage_file: Path, ol_schema: Any, tmp_path: Path,
) -> None:
    pytest.importorskip("dagster")
    from dagster import (
        DagsterEventType,
        DagsterInstance,
        build_run_status_sensor_context,
        materialize,
    )

    from domino_orchestrate.dagster import (
        DominoResource,
        domino_job_asset,
        domino_lineage_sensors,
    )

    ok = domino_job_asset("trained", COMMAND, pass_partition_key=False)
    broken = domino_job_asset("broken", "python train.py 1 && python fail.py",
                              pass_partition_key=False)
    resource = DominoResource(host=sandbox.url, api_key=sandbox.api_key, project=MLFLOW_PROJECT,
                              poll_freq=0.4, initial_interval=0.1, stop_timeout=15.0)
    instance = DagsterInstance.ephemeral()
    result = materialize([ok, broken], resources={"domino": resource}, raise_on_error=False,
                         instance=instance)
    assert not result.success
    events = read_events(lineage_file)
    by_asset = {}
    for event in events:
        facets = event["run"]["facets"]
        if "dominoJob" in facets:
            by_asset[event["job"]["name"].rsplit(".", 1)[-1]] = facets["dominoJob"]["jobId"]
    job_events = [e for e in events if e["job"]["namespace"] != "dagster"]
    _, ok_events = check_job(sandbox, mlflow_env, by_asset["trained"], job_events, ol_schema,
                             tmp_path)
    check_job(sandbox, mlflow_env, by_asset["broken"], job_events, ol_schema, tmp_path,
              status="FAILED", command="python train.py 1 && python fail.py")
    # The asset is an output as the job's own report is; the Dagster run has its START, and its
    # FAIL with Dagster's own run failure, in process (no daemon needed).
    assert ("dagster", "trained") in {(d["namespace"], d["name"]) for d in ok_events[-1]["outputs"]}
    assert parent_events(events, "dagster") == {result.run_id: ["START", "FAIL"]}
    # The daemon's run-status sensor, when it runs too, sends no second end.
    [failed] = instance.get_records_for_run(
        result.run_id, of_type=DagsterEventType.RUN_FAILURE).records
    sensor = next(s for s in domino_lineage_sensors() if s.name.endswith("failure"))
    for _ in range(2):
        sensor(build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_event=failed.event_log_entry.dagster_event,
            dagster_instance=instance, dagster_run=instance.get_run_by_id(result.run_id)))
    events = read_events(lineage_file)
    assert parent_events(events, "dagster") == {result.run_id: ["START", "FAIL"]}
    for event in events:
        ol_schema.validate(event)


# --- CLI -------------------------------------------------------------------------------------------


def test_cli_run_closes_the_run_the_job_logged_into(
    sandbox: Any, mlflow_env: str, lineage_file: Path, ol_schema: Any, tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(DOMINO_API_HOST=sandbox.url, DOMINO_USER_API_KEY=sandbox.api_key,
               DOMINO_PROJECT=MLFLOW_PROJECT)
    done = subprocess.run(
        [sys.executable, "-m", "domino_orchestrate", "run", "--json", MLFLOW_COMMAND],
        capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    job_id = json.loads(done.stdout)["handle"]["job_id"]
    check_job(sandbox, mlflow_env, job_id, read_events(lineage_file), ol_schema, tmp_path,
              command=MLFLOW_COMMAND)
