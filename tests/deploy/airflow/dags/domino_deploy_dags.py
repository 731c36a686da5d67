"""DAGs the deployment tests drive (copied into a temporary AIRFLOW_HOME/dags).

Every job's command is driven by the DAG run's conf, so one DAG serves many tests:
``before`` lines printed first, then (if ``gate`` is set) the job waits until the file ``gate``
exists — the test releases it — then prints ``after`` lines. ``tag`` makes a command unique;
``slow_stop`` makes the job ignore SIGTERM, so a stop takes the sandbox's whole stop grace.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from domino_orchestrate.airflow import DominoJobOperator, DominoJobSensor

COMMAND = (
    "{% if dag_run.conf.get('slow_stop') %}trap 'echo slow to stop' TERM; {% endif %}"
    "echo 'job {{ dag_run.conf.get(\"tag\", \"\") }} begins'; "
    "for i in $(seq 1 {{ dag_run.conf.get('before', 0) }}); do echo before-$i; done; "
    "{% if dag_run.conf.get('gate') %}"
    "while [ ! -e '{{ dag_run.conf['gate'] }}' ]; do sleep 0.2; done; "
    "{% endif %}"
    "for i in $(seq 1 {{ dag_run.conf.get('after', 0) }}); do echo after-$i; done; "
    "echo 'job ends'"
)
FAST = {"poll_freq": 0.5, "initial_interval": 0.2, "stop_timeout": 20.0}
ARGS = {"retries": 1, "retry_delay": timedelta(seconds=1)}


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id=dag_id, schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
               default_args=ARGS, tags=["domino-deploy"])


with _dag("deploy_sync"):
    DominoJobOperator(task_id="job", command=COMMAND, title="deploy sync", **FAST)

with _dag("deploy_sync_not_durable"):  # no task_state_store: the idempotency key alone decides
    DominoJobOperator(task_id="job", command=COMMAND, title="deploy sync not durable",
                      durable=False, **FAST)

with _dag("deploy_defer"):
    DominoJobOperator(task_id="job", command=COMMAND, title="deploy defer", deferrable=True,
                      **FAST)

with _dag("deploy_timeout"):
    DominoJobOperator(task_id="sync", command=COMMAND, title="deploy timeout sync",
                      execution_timeout=timedelta(seconds=8), retries=0, **FAST)
    DominoJobOperator(task_id="defer", command=COMMAND, title="deploy timeout defer",
                      execution_timeout=timedelta(seconds=8), retries=0, deferrable=True, **FAST)

with _dag("deploy_mapped"):
    DominoJobOperator.partial(task_id="job", title="deploy mapped", **FAST).expand(
        command=[COMMAND + " m0", COMMAND + " m1"]
    )

with _dag("deploy_sensor"):
    DominoJobSensor(task_id="poke", job_id="{{ dag_run.conf['job_id'] }}", poke_interval=1,
                    retries=0)
    DominoJobSensor(task_id="defer", job_id="{{ dag_run.conf['job_id'] }}", poke_interval=1,
                    retries=0, deferrable=True)

# A schedule in the past only: nothing runs by itself; the test triggers 2024-01-01, then
# backfills it again with reprocess_behavior="completed".
with DAG(dag_id="deploy_backfill", schedule="@yearly", start_date=datetime(2024, 1, 1),
         end_date=datetime(2024, 12, 31), catchup=False, default_args=ARGS,
         tags=["domino-deploy"]):
    DominoJobOperator(task_id="job", command=COMMAND, title="deploy backfill", **FAST)
