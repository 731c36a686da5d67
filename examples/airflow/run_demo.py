"""Run the example DAG once with ``dag.test()`` against a Domino (or the local sandbox).

``run(host, api_key, project)`` returns one row per task for the demo summary table:
``{"orchestrator": "airflow", "task": ..., "job_id": ..., "state": ...}``. As a script it starts a
sandbox unless ``DOMINO_API_HOST`` is set, and prints the rows. Airflow needs a home and a
metadata DB: when ``AIRFLOW_HOME`` is not set, a temporary one (SQLite) is created.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DAG_FILE = HERE / "domino_example_dag.py"


def _prepare_airflow() -> None:
    """A throwaway AIRFLOW_HOME + SQLite DB unless Airflow is already configured/imported."""
    if "airflow" not in sys.modules and not os.environ.get("AIRFLOW_HOME"):
        home = Path(tempfile.mkdtemp(prefix="airflow-demo-"))
        (home / "dags").mkdir()
        os.environ["AIRFLOW_HOME"] = str(home)
        os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home}/airflow.db"
        os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
        os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(home / "dags")
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.models.dag import DagModel
    from airflow.utils import db
    from airflow.utils.session import create_session

    try:
        with create_session() as session:
            session.query(DagModel).limit(1).all()
    except Exception:  # no tables yet
        db.initdb()
    DagBundlesManager().sync_bundles_to_db()


def _load_dag() -> Any:
    spec = importlib.util.spec_from_file_location("domino_example_dag", DAG_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def run(host: str, api_key: str, project: str) -> list[dict[str, Any]]:
    """Run the example DAG against ``host``; one summary row per task."""
    os.environ["AIRFLOW_CONN_DOMINO_DEFAULT"] = json.dumps({
        "conn_type": "domino", "host": host, "password": api_key, "extra": {"project": project},
    })
    _prepare_airflow()
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    dag = _load_dag()
    bag = DagBag(dag_folder=os.environ.get("AIRFLOW__CORE__DAGS_FOLDER") or str(HERE))
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    dag_run = dag.test()
    from domino_orchestrate.core import DominoClient

    domino = DominoClient(host, project, api_key=api_key)
    rows: list[dict[str, Any]] = []
    with create_session() as session:
        for ti in sorted(dag_run.get_task_instances(session=session), key=lambda t: t.task_id):
            xcom = session.query(XComModel).filter(
                XComModel.dag_id == ti.dag_id, XComModel.run_id == ti.run_id,
                XComModel.task_id == ti.task_id, XComModel.key == "job_id",
            ).first()
            job_id = XComModel.deserialize_value(xcom) if xcom is not None else None
            rows.append({
                "orchestrator": "airflow",
                "task": ti.task_id,
                "job_id": job_id,
                # The Domino job's own final state; Airflow's task state is beside it.
                "state": domino.get_job(job_id).status.value if job_id else "not started",
                "task_state": str(ti.state),
            })
    return rows


def main() -> int:
    host = os.environ.get("DOMINO_API_HOST")
    if host:
        rows = run(host, os.environ.get("DOMINO_USER_API_KEY", ""),
                   os.environ.get("DOMINO_PROJECT", "demo/quick-start"))
    else:
        from domino_orchestrate.sandbox import SandboxServer

        with SandboxServer() as srv:
            rows = run(srv.url, srv.api_key, "demo/quick-start")
    for row in rows:
        print(f"{row['orchestrator']:<8} {row['task']:<14} {row['job_id'] or '-':<26} {row['state']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
