"""python-domino's Airflow operators, one import changed, run by real Airflow (``dag.test()``)
against the sandbox: every seed parameter reaches the start request Domino receives (the sandbox
records it), with the seed's defaults, and where we are deliberately better it shows."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.timeout(180), pytest.mark.xdist_group("airflow-compat")]

#: python-domino's examples/example_airflow_dag.py (Release 1.5.1) with its import line changed to
#: ours, and ``schedule_interval`` renamed ``schedule`` (Airflow 3 removed the old name).
SEED_DAG = '''
from datetime import datetime, timedelta
from airflow import DAG
from airflow.models import Variable

from domino_orchestrate.airflow.compat import DominoOperator

api_key = Variable.get("DOMINO_USER_API_KEY")
host = Variable.get("DOMINO_API_HOST")

default_args = {
    "owner": "domino",
    "depends_on_past": False,
    "start_date": datetime(2019, 6, 5),
    "retries": 1,
    "retry_delay": timedelta(minutes=0.5),
}

dag = DAG(
    "domino_pipeline",
    description="Execute Airflow DAG in Domino",
    default_args=default_args,
    schedule=timedelta(days=1),
)

t1 = DominoOperator(
    task_id="hello_world",
    api_key=api_key,
    host=host,
    project="weaton/domino-test",
    isDirect=True,
    dag=dag,
    command=["python -V"],
)
'''

FAST = {"poll_freq": 0.5, "initial_interval": 0.2, "stop_timeout": 15.0}


@pytest.fixture(scope="module")
def seed_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from domino_orchestrate.sandbox import SandboxServer

    folder = tmp_path_factory.mktemp("compat-project")
    (folder / "main.py").write_text("import sys\nprint('main says', *sys.argv[1:])\n")
    projects = {"weaton/domino-test": folder, "demo/quick-start": folder}
    with SandboxServer(projects=projects, api_key="compat-key-0123456789") as srv:
        yield srv


@pytest.fixture
def no_domino_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DOMINO_") or name.startswith("AIRFLOW_CONN_DOMINO"):
            monkeypatch.delenv(name)
    # The seed's command is `python -V`: the sandbox runs it with this venv's python.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def _starts(srv: Any) -> list[dict[str, Any]]:
    """Every execution of the sandbox with the start request it received, oldest first."""
    executions = sorted(srv.ctx.store.all(), key=lambda ex: ex.number)
    return [{"id": ex.id, "title": ex.title, **srv.execution_info(ex.id)} for ex in executions]


def _new_starts(srv: Any, before: set[str]) -> list[dict[str, Any]]:
    return [s for s in _starts(srv) if s["id"] not in before]


def test_the_seed_dag_runs_with_one_import_changed(seed_sandbox: Any, no_domino_env: None,
                                                   monkeypatch: pytest.MonkeyPatch, af: Any,
                                                   capfd: Any) -> None:
    """The seed DAG: credentials from Variables as operator arguments, isDirect, the default
    startup_delay (10 s, before the start) and include_setup_log (True)."""
    monkeypatch.setenv("AIRFLOW_VAR_DOMINO_USER_API_KEY", seed_sandbox.api_key)
    monkeypatch.setenv("AIRFLOW_VAR_DOMINO_API_HOST", seed_sandbox.url)
    before = {s["id"] for s in _starts(seed_sandbox)}
    namespace: dict[str, Any] = {}
    exec(compile(SEED_DAG, "example_airflow_dag.py", "exec"), namespace)
    dag = namespace["dag"]
    assert namespace["t1"].startup_delay == 10 and namespace["t1"].include_setup_log is True
    from airflow.serialization.serialized_objects import DagSerialization

    # the key given as an argument never reaches the serialized DAG (the metadata DB, the UI)
    assert seed_sandbox.api_key not in json.dumps(DagSerialization.to_dict(dag), default=str)

    dr = af.run_dag(dag)
    out = capfd.readouterr().out
    ti = af.task_instances(dr)["hello_world"]
    assert str(ti.state) == "success", out[-3000:]
    [start] = _new_starts(seed_sandbox, before)
    body = start["startRequest"]
    assert body["command"] == ["python -V"] and body["isDirect"] is True
    assert start["startAuth"] == "X-Domino-Api-Key"
    # startup_delay=10 delays the start itself (python-domino's meaning), not the polling
    job = seed_sandbox.ctx.store.get(start["id"])
    assert job.queued_ms / 1000 - ti.start_date.timestamp() >= 9.5
    # include_setup_log=True: the setup log precedes stdout in the task log, streamed
    assert "Preparing environment..." in out and "Python 3." in out
    assert out.index("Preparing environment...") < out.index("Python 3.")
    result = af.xcoms(dr, "hello_world")["return_value"]
    assert result["runId"] == start["id"] and result["status"] == "Succeeded"
    assert seed_sandbox.api_key not in out


def test_every_seed_parameter_reaches_the_start_request_v1_and_v4(
        seed_sandbox: Any, no_domino_env: None, af: Any, capfd: Any) -> None:
    from airflow.sdk import DAG

    from domino_orchestrate.airflow.compat import DominoOperator, DominoSparkOperator

    creds = {"host": seed_sandbox.url, "api_key": seed_sandbox.api_key,
             "project": "demo/quick-start"}
    env_id = "5f1a2b3c4d5e6f7081920a0c"
    spark = {"computeEnvironmentId": env_id, "executorCount": 2,
             "executorHardwareTierId": "small-k8s", "masterHardwareTierId": "small-k8s",
             "executorStorageMB": 0}
    cluster = {"clusterType": "Ray", "computeEnvironmentId": env_id, "workerCount": 2,
               "masterHardwareTierId": "medium-k8s", "workerHardwareTierId": "small-k8s"}
    commit = seed_sandbox.ctx.store.find_project("demo", "quick-start").commits[0]
    with DAG("compat_params", schedule=None) as dag:
        DominoOperator(task_id="v1", command=["main.py", "v1 arg"], isDirect=False,
                       commitId=commit, title="seed v1", tier="Medium", publishApiEndpoint=True,
                       startup_delay=0, **creds, **FAST)
        DominoOperator(task_id="v1_direct", command=["echo direct-$((40+2))"], isDirect=True,
                       startup_delay=0, include_setup_log=False, **creds, **FAST)
        DominoSparkOperator(task_id="v4", command="main.py v4", commit_id=commit,
                            hardware_tier_name="Large", environment_id=env_id,
                            on_demand_spark_cluster_properties=spark,
                            compute_cluster_properties=cluster, title="seed v4",
                            external_volume_mounts=["vol-1", "vol-2"], **creds, **FAST)
        DominoOperator(task_id="bad_tier", command=["main.py"], tier="Gigantic",
                       startup_delay=0, **creds, **FAST)
    before = {s["id"] for s in _starts(seed_sandbox)}
    dr = af.run_dag(dag)
    out = capfd.readouterr().out
    states = {k: str(v.state) for k, v in af.task_instances(dr).items()}
    assert states == {"v1": "success", "v1_direct": "success", "v4": "success",
                      "bad_tier": "failed"}, out[-3000:]
    starts = {s["title"].split(" [do:")[0]: s for s in _new_starts(seed_sandbox, before)}
    # the v1 tier is checked against the project's tier names before anything starts
    assert "Hardware tier 'Gigantic' is not available" in out and "Small, Medium, Large" in out
    assert len(starts) == 3

    v1 = starts["seed v1"]["startRequest"]
    assert v1["command"] == ["main.py", "v1 arg"] and v1["isDirect"] is False
    assert (v1["commitId"], v1["tier"], v1["publishApiEndpoint"]) == (commit, "Medium", True)
    assert "main says v1 arg" in out
    direct = starts["compat_params.v1_direct"]["startRequest"]
    assert direct["command"] == ["echo direct-$((40+2))"] and direct["isDirect"] is True
    assert "direct-42" in out

    v4 = starts["seed v4"]["startRequest"]
    assert v4["commandToRun"] == "main.py v4" and v4["commitId"] == commit
    assert v4["overrideHardwareTierId"] == "large-k8s" and v4["environmentId"] == env_id
    assert v4["onDemandSparkClusterProperties"] == spark
    assert v4["computeClusterProperties"] == {
        **cluster, "masterHardwareTierId": {"value": "medium-k8s"},
        "workerHardwareTierId": {"value": "small-k8s"}}
    assert v4["externalVolumeMounts"] == ["vol-1", "vol-2"]
    # the XComs keep python-domino's shapes: runId (v1), the final v4 job JSON (Spark)
    assert af.xcoms(dr, "v1")["return_value"]["runId"] == starts["seed v1"]["id"]
    v4_result = af.xcoms(dr, "v4")["return_value"]
    assert v4_result["id"] == starts["seed v4"]["id"]
    assert v4_result["statuses"]["executionStatus"] == "Succeeded"


def test_auth_token_in_the_connection_extra_is_sent_as_a_bearer_token(
        seed_sandbox: Any, no_domino_env: None, monkeypatch: pytest.MonkeyPatch, af: Any) -> None:
    """python-domino's precedence: auth_token before the API key (the connection's password)."""
    from airflow.sdk import DAG

    from domino_orchestrate.airflow import DominoJobOperator
    from domino_orchestrate.airflow.compat import DominoSparkOperator

    token = "airflow-bearer-token-0001"
    seed_sandbox.add_token(token)
    monkeypatch.setenv("AIRFLOW_CONN_DOMINO_DEFAULT", json.dumps({
        "conn_type": "domino", "host": seed_sandbox.url, "password": seed_sandbox.api_key,
        "extra": {"project": "demo/quick-start", "auth_token": token},
    }))
    with DAG("compat_auth", schedule=None) as dag:
        DominoJobOperator(task_id="conn", command="echo via-conn", title="auth conn", **FAST)
        DominoSparkOperator(task_id="arg", command="echo via-arg", title="auth arg",
                            project="demo/quick-start", auth_token=token, **FAST)
    before = {s["id"] for s in _starts(seed_sandbox)}
    dr = af.run_dag(dag)
    assert {str(ti.state) for ti in af.task_instances(dr).values()} == {"success"}
    auths = {s["title"].split(" [do:")[0]: s["startAuth"]
             for s in _new_starts(seed_sandbox, before)}
    assert auths == {"auth conn": "Authorization: Bearer", "auth arg": "Authorization: Bearer"}


def test_deferrable_with_credentials_as_arguments_is_a_clear_error() -> None:
    from domino_orchestrate.airflow.compat import DominoOperator
    from domino_orchestrate.core import ConfigurationError

    with pytest.raises(ConfigurationError, match="Airflow connection"):
        DominoOperator(task_id="x", project="a/b", command=["main.py"], api_key="k" * 8,
                       deferrable=True)


def test_startup_delay_waits_before_the_start(seed_sandbox: Any, no_domino_env: None,
                                              af: Any) -> None:
    """DominoJobOperator's startup_delay slept *after* the start (issue 19): now before it."""
    from airflow.sdk import DAG

    from domino_orchestrate.airflow import DominoJobOperator

    with DAG("compat_delay", schedule=None) as dag:
        DominoJobOperator(task_id="late", command="echo late", title="delayed start",
                          project="demo/quick-start", startup_delay=2, **FAST)
    os.environ["AIRFLOW_CONN_DOMINO_DEFAULT"] = json.dumps({
        "conn_type": "domino", "host": seed_sandbox.url, "password": seed_sandbox.api_key})
    try:
        before = {s["id"] for s in _starts(seed_sandbox)}
        started = time.time()
        dr = af.run_dag(dag)
    finally:
        os.environ.pop("AIRFLOW_CONN_DOMINO_DEFAULT", None)
    ti = af.task_instances(dr)["late"]
    assert str(ti.state) == "success"
    [start] = _new_starts(seed_sandbox, before)
    queued = seed_sandbox.ctx.store.get(start["id"]).queued_ms / 1000
    assert queued >= started and queued - ti.start_date.timestamp() >= 1.9
