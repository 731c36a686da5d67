"""Helpers for code running *inside* a Domino job started by domino-orchestrate.

One line finds the MLflow run that represents this job (by ``DOMINO_RUN_ID``), so the job's own
metrics land in the run the orchestrator closes with the job's status::

    from domino_orchestrate.injob import mlflow_run

    with mlflow_run():
        mlflow.log_metric("auc", 0.91)

See ``domino_orchestrate.core.lineage.injob`` for the rules; ``examples/project/train_mlflow.py``.
"""

from domino_orchestrate.core.lineage.injob import (
    WAIT_ENV,
    domino_job_id,
    find_job_run,
    mlflow_run,
    openlineage_parent,
)

__all__ = ["WAIT_ENV", "domino_job_id", "find_job_run", "mlflow_run", "openlineage_parent"]
