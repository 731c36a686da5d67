"""Example DAG: one Domino job that prints a few lines and succeeds, one that fails.

The ``domino_default`` connection comes from ``AIRFLOW_CONN_DOMINO_DEFAULT`` (JSON:
``{"conn_type": "domino", "host": ..., "password": <api key>, "extra": {"project": "owner/name"}}``)
or, when that is absent, from ``DOMINO_API_HOST`` / ``DOMINO_USER_API_KEY`` / ``DOMINO_PROJECT``.
Run it with ``examples/airflow/run_demo.py`` (``dag.test()`` against a local sandbox). In a
deployment (scheduler, dag-processor, triggerer, api-server), put this file in the dags folder and
give every Airflow process the same connection variable — ``tests/deploy/airflow`` runs Airflow
that way. There, an automatic retry reattaches to the task's running job, a clear (or a backfill
that reprocesses the run) starts a fresh one, and mark failed / mark success stop the job.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from domino_orchestrate.airflow import DominoJobOperator

with DAG(
    dag_id="domino_example",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["domino", "example"],
    doc_md=__doc__,
) as dag:
    hello = DominoJobOperator(
        task_id="hello_domino",
        command=(
            "echo 'training started for {{ ds }}'; "
            "for i in 1 2 3; do echo \"epoch $i: loss=0.$((4 - i))\"; sleep 0.3; done; "
            "echo 'model saved'"
        ),
        title="hello from Airflow",
        poll_freq=1.0,
        initial_interval=0.2,
    )
    doomed = DominoJobOperator(
        task_id="failing_job",
        command="echo 'loading data'; echo 'ValueError: bad row 42' >&2; exit 3",
        title="a job that fails",
        poll_freq=1.0,
        initial_interval=0.2,
    )
