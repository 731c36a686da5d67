"""The example DAG and its demo runner, against the sandbox."""

from __future__ import annotations

from typing import Any

from ..conftest import load_module


def test_example_dag_via_run_demo(domino_sandbox: Any, af: Any, capfd: Any) -> None:
    demo = load_module("airflow_run_demo", af.examples / "run_demo.py")
    rows = demo.run(domino_sandbox.url, domino_sandbox.api_key, "demo/quick-start")
    out = capfd.readouterr().out
    by_task = {row["task"]: row for row in rows}
    assert set(by_task) == {"hello_domino", "failing_job"}
    assert by_task["hello_domino"]["state"] == "Succeeded"
    assert by_task["hello_domino"]["task_state"] == "success"
    assert by_task["failing_job"]["state"] == "Failed"
    assert by_task["failing_job"]["task_state"] == "failed"
    assert all(row["orchestrator"] == "airflow" and row["job_id"] for row in rows)
    client = af.sandbox_client(domino_sandbox)
    assert str(client.get_job(by_task["hello_domino"]["job_id"]).status) == "Succeeded"
    assert str(client.get_job(by_task["failing_job"]["job_id"]).status) == "Failed"
    assert "epoch 3: loss=0.1" in out and "model saved" in out
    assert "ValueError: bad row 42" in out
    assert domino_sandbox.api_key not in out
