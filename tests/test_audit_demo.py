"""``make demo`` shows the user's story, not the framework's (issue 17: its output was dominated by
Airflow's own info logs -- migrations, DAG bundles, the execution API): the Airflow example, run
as the demo runs it, prints the Domino jobs, their streamed lines and how they ended; everything
Airflow said goes to the example's log file."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

import pytest

from .conftest import load_module

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.timeout(300)]


def _demo() -> Any:
    return load_module("_demo", ROOT / "examples" / "run_demo.py")


def test_the_airflow_part_of_the_demo_prints_the_jobs_and_logs_the_rest(tmp_path: Path) -> None:
    from domino_orchestrate.sandbox import SandboxServer

    demo = _demo()
    homes = {name: tmp_path / name for name in ("airflow", "prefect", "dagster")}
    for home in homes.values():
        home.mkdir()
    with SandboxServer(projects={demo.PROJECT: demo.HERE / "project"},
                       api_key="demo-key-0123456789") as srv:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("DOMINO_", "AIRFLOW"))},
               "DOMINO_API_HOST": srv.url, "DOMINO_USER_API_KEY": srv.api_key,
               "DOMINO_PROJECT": demo.PROJECT,
               "DOMINO_ORCHESTRATE_LINEAGE_SPOOL": str(tmp_path / "spool"),
               **{f"{name.upper()}_HOME": str(home) for name, home in homes.items()}}
        shown = io.StringIO()
        with contextlib.redirect_stdout(shown):
            rows = demo.run_orchestrator("airflow", env, tmp_path / "airflow.log")
    printed = shown.getvalue()
    assert {row["task"]: row["state"] for row in rows} == {"hello_domino": "Succeeded",
                                                           "failing_job": "Failed"}, printed
    story = [f"Started Domino job {row['job_id']}" for row in rows] + [
        "epoch 1: loss=0.3", "model saved", "ValueError: bad row 42", "ended Failed"]
    assert [line for line in story if line not in printed] == [], printed
    noise = ("alembic", "DAG bundle", "Task instance state updated", "Traceback", "::group::",
             "Filling up the DagBag")
    assert [word for word in noise if word in printed] == [], printed
    assert len(printed.splitlines()) <= 30, printed
    full = (tmp_path / "airflow.log").read_text()
    assert "alembic" in full and "Started Domino job" in full  # nothing is lost
    assert str(tmp_path / "airflow.log") in printed  # and the user is told where it is
