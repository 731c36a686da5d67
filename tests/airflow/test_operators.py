"""DominoJobOperator / DominoRunOperator run by real Airflow (``dag.test()``) against the sandbox.

Task logs of ``dag.test()`` go to this process's stdout, so ``capfd`` sees the streamed lines.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(180)


def _jobs_by_task(client: Any) -> dict[str, Any]:
    """Sandbox jobs keyed by the task part of their title ("dag.task [do:key]")."""
    out: dict[str, Any] = {}
    for snap in client.list_jobs():
        out[(snap.title or "").split(" ")[0].split(".")[-1]] = snap
    return out


def test_outcomes_success_failed_error_run_and_templates(domino_conn: Any, af: Any,
                                                         capfd: Any) -> None:
    from airflow.sdk import DAG

    from domino_orchestrate.airflow import DominoJobOperator, DominoRunOperator

    with DAG("domino_outcomes", schedule=None) as dag:
        DominoJobOperator(task_id="ok", command="echo line-one; echo line-two >&2; echo line-three",
                          **af.fast)
        DominoJobOperator(task_id="bad", command="echo doomed-1; echo doomed-2; exit 3", **af.fast)
        DominoJobOperator(task_id="err", command="no-such-program-xyz --flag", **af.fast)
        DominoRunOperator(task_id="v1", command=["echo", "from-v1-run"], **af.fast)
        DominoJobOperator(task_id="tpl", command="echo rendered={{ dag.dag_id }}/{{ task.task_id }}",
                          title="T {{ dag.dag_id }}", **af.fast)
    dr = af.run_dag(dag)
    out = capfd.readouterr().out
    tis = af.task_instances(dr)
    assert {k: str(v.state) for k, v in tis.items()} == {
        "ok": "success", "bad": "failed", "err": "failed", "v1": "success", "tpl": "success"}

    # success: job_id/job_url XComs, extra link, summary returned, stdout streamed into the log
    x = af.xcoms(dr, "ok")
    assert x["return_value"]["status"] == "Succeeded"
    assert x["return_value"]["job_id"] == x["job_id"]
    assert x["job_url"].startswith(domino_conn.url) and x["job_url"].endswith(x["job_id"])
    assert x["_link_DominoJobLink"] == x["job_url"]
    for line in ("line-one", "line-two", "line-three"):
        assert line in out
    assert out.index("line-one") < out.index("line-three")

    # failure: the task error carries the status and the last lines of output
    assert "ended Failed" in out and "doomed-2" in out
    assert af.xcoms(dr, "bad")["job_id"]  # pushed before waiting
    assert "ended Error" in out
    # v1 run
    v1 = af.xcoms(dr, "v1")["return_value"]
    assert v1["kind"] == "run" and v1["status"] == "Succeeded"
    assert "from-v1-run" in out
    # templated command and title
    assert "rendered=domino_outcomes/tpl" in out
    assert af.xcoms(dr, "tpl")["return_value"]["title"].startswith("T domino_outcomes")
    # exactly one Domino execution per task, and no secret anywhere
    assert sum(domino_conn.stats()["starts_by_title"].values()) == 5
    for task_id in tis:
        assert domino_conn.api_key not in repr(af.xcoms(dr, task_id))
    assert domino_conn.api_key not in out


def test_execution_timeout_stops_the_job_sync(domino_conn: Any, af: Any, capfd: Any,
                                             caplog: Any) -> None:
    from airflow.sdk import DAG

    from domino_orchestrate.airflow import DominoJobOperator

    with DAG("domino_timeout_sync", schedule=None) as dag:
        DominoJobOperator(task_id="slow", command="echo started; sleep 120",
                          execution_timeout=timedelta(seconds=4), **af.fast)
    started = time.monotonic()
    dr = af.run_dag(dag)
    assert str(af.task_instances(dr)["slow"].state) == "failed"
    job_id = af.xcoms(dr, "slow")["job_id"]
    assert str(af.sandbox_client(domino_conn).get_job(job_id).status) == "Stopped"
    # 5 s at load 10 on 2 cores; a task that waited for its job would take its 120 s.
    assert time.monotonic() - started < 90
    captured = capfd.readouterr()
    out = captured.out + captured.err + caplog.text  # core notices: the domino_orchestrate logger
    assert "AirflowTaskTimeout" in out and "execution_timeout" in out
    assert f"stopping Domino job {job_id}" in out and f"Domino job {job_id} stopped" in out


def test_execution_timeout_stops_the_job_deferrable(domino_conn: Any, af: Any, capfd: Any) -> None:
    from airflow.sdk import DAG

    from domino_orchestrate.airflow import DominoJobOperator

    with DAG("domino_timeout_deferred", schedule=None) as dag:
        DominoJobOperator(task_id="slow", command="echo deferred-start; sleep 120", deferrable=True,
                          execution_timeout=timedelta(seconds=4), **af.fast)
    dr = af.run_dag(dag)
    out = capfd.readouterr().out
    assert str(af.task_instances(dr)["slow"].state) == "failed"
    job_id = af.xcoms(dr, "slow")["job_id"]
    assert str(af.sandbox_client(domino_conn).get_job(job_id).status) == "Stopped"
    assert "did not finish" in out
    # the knob that fired, and Airflow's own timeout exception (issue 12)
    assert "within execution_timeout" in out and "Raise execution_timeout" in out
    assert "max_poll_time" not in out
    assert "AirflowTaskTimeout" in out


def test_deferrable_success_and_failure(domino_conn: Any, af: Any, capfd: Any) -> None:
    from airflow.sdk import DAG

    from domino_orchestrate.airflow import DominoJobOperator

    with DAG("domino_deferred", schedule=None) as dag:
        DominoJobOperator(task_id="ok", command="echo def-one; sleep 1; echo def-two",
                          deferrable=True, **af.fast)
        DominoJobOperator(task_id="bad", command="echo def-doomed; sleep 1; exit 5",
                          deferrable=True, **af.fast)
    dr = af.run_dag(dag)
    out = capfd.readouterr().out
    tis = af.task_instances(dr)
    assert str(tis["ok"].state) == "success" and str(tis["bad"].state) == "failed"
    assert out.count("Deferring") >= 2  # really went through the trigger
    assert "def-one" in out and "def-two" in out  # streamed by the trigger
    ok = af.xcoms(dr, "ok")
    assert ok["return_value"]["status"] == "Succeeded" and ok["job_url"].endswith(ok["job_id"])
    assert "ended Failed" in out and "def-doomed" in out
    assert sum(domino_conn.stats()["starts_by_title"].values()) == 2


def test_on_kill_stops_the_running_job(domino_conn: Any, af: Any) -> None:
    from airflow.sdk import DAG

    from domino_orchestrate.airflow import DominoJobOperator

    running: dict[str, Any] = {}

    def remember(context: Any) -> None:
        running["op"] = context["task"]  # the operator instance actually executing

    client = af.sandbox_client(domino_conn)

    def killer() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            op = running.get("op")
            if (op is not None and op.domino_job_id
                    and str(client.get_job(op.domino_job_id).status) == "Running"):
                op.on_kill()  # what Airflow's SIGTERM handler calls
                return
            time.sleep(0.2)

    with DAG("domino_kill", schedule=None) as dag:
        DominoJobOperator(task_id="victim", command="echo alive; sleep 120",
                          on_execute_callback=remember, **af.fast)
    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    dr = af.run_dag(dag)
    thread.join(5)
    assert str(af.task_instances(dr)["victim"].state) == "failed"
    job_id = af.xcoms(dr, "victim")["job_id"]
    assert str(client.get_job(job_id).status) == "Stopped"


@pytest.mark.parametrize("durable", [True, False], ids=["task_state_store", "idempotency_key"])
def test_retry_after_a_crash_attaches_to_the_same_job(domino_conn: Any, af: Any, mocker: Any,
                                                      durable: bool) -> None:
    from airflow.sdk import DAG

    from domino_orchestrate.airflow import DominoJobOperator
    from domino_orchestrate.core.client import DominoClient

    real_wait = DominoClient.wait
    calls = {"n": 0}

    def flaky_wait(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("worker died right after the start")
        return real_wait(self, *args, **kwargs)

    mocker.patch.object(DominoClient, "wait", flaky_wait)
    with DAG(f"domino_retry_{durable}", schedule=None) as dag:
        DominoJobOperator(task_id="once", command="echo only-once; sleep 2; echo finished",
                          retries=1, retry_delay=timedelta(seconds=0), durable=durable, **af.fast)
    dr = af.run_dag(dag)
    ti = af.task_instances(dr)["once"]
    assert str(ti.state) == "success" and ti.try_number == 2
    assert calls["n"] == 2
    assert sum(domino_conn.stats()["starts_by_title"].values()) == 1
    assert len(af.sandbox_client(domino_conn).list_jobs()) == 1
    assert af.xcoms(dr, "once")["return_value"]["status"] == "Succeeded"


def test_lineage_info_uses_airflow_openlineage_ids(domino_conn: Any, af: Any) -> None:
    from airflow.sdk import DAG

    from domino_orchestrate.airflow import DominoJobOperator
    from domino_orchestrate.airflow._lineage import task_run_ids
    from domino_orchestrate.core.lineage import Dataset

    seen: dict[str, Any] = {}

    def grab(context: Any) -> None:
        seen["info"] = context["task"].lineage_info(context)
        seen["ti"] = context["ti"]
        seen["dag_run"] = context["dag_run"]

    with DAG("domino_lineage", schedule=None) as dag:
        DominoJobOperator(task_id="lin", command="echo x", on_execute_callback=grab,
                          input_datasets=["s3://bucket/raw/data.csv"],
                          output_datasets=[Dataset("postgres://db", "public.t")], **af.fast)
    af.run_dag(dag)
    info, ti, dag_run = seen["info"], seen["ti"], seen["dag_run"]
    assert info.orchestrator == "airflow" and info.job_name == "domino_lineage.lin"
    assert info.run_key == ("domino_lineage", "lin", ti.run_id, "-1")
    assert info.inputs == (Dataset("s3://bucket", "raw/data.csv"),)
    assert info.outputs == (Dataset("postgres://db", "public.t"),)
    task_run, root_run = task_run_ids("domino_lineage", "lin", ti.try_number,
                                      dag_run.logical_date, -1, dag_run.clear_number)
    assert info.parent is not None
    assert (info.parent.namespace, info.parent.name, info.parent.run_id) == (
        "default", "domino_lineage.lin", task_run)
    assert (info.parent.root_name, info.parent.root_run_id) == ("domino_lineage", root_run)
