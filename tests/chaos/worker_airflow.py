"""Chaos worker: run a one-task DAG (``chaos_kill``) once with ``dag.test()`` — a fixed
``run_after``/``logical_date``, so every invocation is the same DAG run id.

Environment: ``AIRFLOW_HOME`` and the ``AIRFLOW__*`` settings (set by the test before this process
imports Airflow), ``AIRFLOW_CONN_DOMINO_DEFAULT``, ``CHAOS_COMMAND`` and ``CHAOS_TITLE``. Prints
``CHAOS-RESULT <json>`` at the end. ``dag.test()`` runs the task inline in this process, so a SIGKILL
of this process is a dead worker.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

WHEN = datetime(2026, 1, 1, tzinfo=timezone.utc)


def main() -> None:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.utils import db

    home = Path(os.environ["AIRFLOW_HOME"])
    marker = home / ".db-ready"
    if not marker.exists():
        db.initdb()
        DagBundlesManager().sync_bundles_to_db()
        marker.touch()

    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.xcom import XComModel
    from airflow.sdk import DAG
    from airflow.utils.session import create_session

    from domino_orchestrate.airflow import DominoJobOperator

    with DAG("chaos_kill", schedule=None, start_date=WHEN) as dag:
        DominoJobOperator(task_id="victim", command=os.environ["CHAOS_COMMAND"],
                          title=os.environ["CHAOS_TITLE"], poll_freq=0.5, initial_interval=0.2,
                          stop_timeout=15.0)
    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    print(f"CHAOS-PID {os.getpid()}", flush=True)
    dag_run = dag.test(run_after=WHEN, logical_date=WHEN)
    with create_session() as session:
        (ti,) = dag_run.get_task_instances(session=session)
        xcoms = {
            row.key: XComModel.deserialize_value(row)
            for row in session.query(XComModel).filter(
                XComModel.dag_id == ti.dag_id, XComModel.run_id == ti.run_id,
                XComModel.task_id == ti.task_id)
        }
        result = {"run_id": dag_run.run_id, "dag_state": str(dag_run.state),
                  "state": str(ti.state), "try_number": ti.try_number,
                  "job_id": xcoms.get("job_id"), "return_value": xcoms.get("return_value")}
    print("CHAOS-RESULT " + json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    main()
