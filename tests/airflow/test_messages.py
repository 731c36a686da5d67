"""What a job reports from inside (Dagster Pipes messages on its stdout) reaches Airflow as XComs and
task-log lines, synchronous and deferrable; many lines go to the task log in few calls.

Real Airflow (``dag.test()``) against the sandbox; the job runs ``domino_orchestrate.injob``'s
``open_pipes`` (dagster-pipes' own writer) in this venv's Python.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(180)

JOB = """
from domino_orchestrate.injob import open_pipes
print("job starting")
with open_pipes() as pipes:
    pipes.log.info("counting rows")
    pipes.report_asset_materialization(asset_key="orders", metadata={"rows": 42})
    pipes.report_asset_check(asset_key="orders", check_name="has_rows", passed=True)
    pipes.report_custom_message({"auc": 0.91})
for i in range(300):
    print(f"bulk line {i}")
"""


def test_reported_messages_become_xcoms_and_task_log_lines(domino_conn: Any, af: Any,
                                                           capfd: Any, tmp_path: Path) -> None:
    from airflow.sdk import DAG

    from domino_orchestrate.airflow import DominoJobOperator

    script = tmp_path / "job.py"
    script.write_text(JOB)
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"
    with DAG("domino_messages", schedule=None) as dag:
        DominoJobOperator(task_id="sync", command=command, **af.fast)
        DominoJobOperator(task_id="deferred", command=command, deferrable=True, **af.fast)
    dr = af.run_dag(dag)
    out = capfd.readouterr().out
    tis = af.task_instances(dr)
    assert {k: str(v.state) for k, v in tis.items()} == {"sync": "success",
                                                         "deferred": "success"}
    assert out.count("Deferring") >= 1
    for task_id in ("sync", "deferred"):
        x = af.xcoms(dr, task_id)
        report = x["domino_messages"]
        assert report["materializations"] == [
            {"asset_key": "orders", "data_version": None, "metadata": {"rows": 42}}]
        assert report["checks"][0]["check_name"] == "has_rows" and report["checks"][0]["passed"]
        assert report["logs"] == [{"level": "INFO", "message": "counting rows"}]
        assert x["domino_result"] == {"auc": 0.91}
    job_ids = {af.xcoms(dr, t)["job_id"] for t in ("sync", "deferred")}
    for job_id in job_ids:
        assert f"Domino job {job_id} reported a materialization of orders: rows=42" in out
        assert f"Domino job {job_id} reported check has_rows on orders: passed" in out
    # 300 lines in one fetch: one task-log call per stream, every line in it.
    assert out.count("lines of Domino stdout:") >= 2
    assert all(re.search(rf"^bulk line {i}\b", out, re.M) for i in (0, 150, 299))
