"""Helpers for code running *inside* a Domino job started by domino-orchestrate.

One line finds the MLflow run that represents this job (by ``DOMINO_RUN_ID``), so the job's own
metrics land in the run the orchestrator closes with the job's status::

    from domino_orchestrate.injob import mlflow_run

    with mlflow_run():
        mlflow.log_metric("auc", 0.91)

``report(inputs=[...], outputs=[...], metrics={...}, params={...})`` tells the orchestrator what
the job read, wrote and measured (one Dagster Pipes message on stdout): the datasets join the
job's OpenLineage events, the metrics and params its MLflow run.

See ``domino_orchestrate.core.lineage.injob`` for the rules; ``examples/project/train_mlflow.py``.
"""

from typing import Any

from domino_orchestrate.core.lineage.injob import (
    WAIT_ENV,
    domino_job_id,
    find_job_run,
    mlflow_run,
    openlineage_parent,
)
from domino_orchestrate.core.lineage.reported import report

__all__ = ["WAIT_ENV", "domino_job_id", "find_job_run", "mlflow_run", "open_pipes",
           "openlineage_parent", "report"]


def open_pipes(**kwargs: Any) -> Any:
    """Inside a Domino job: open Dagster Pipes (``dagster_pipes.open_dagster_pipes``) whoever
    started the job, with messages written to stdout, the one channel Domino gives back::

        from domino_orchestrate.injob import open_pipes

        with open_pipes() as pipes:
            pipes.report_asset_materialization(asset_key="orders", metadata={"rows": 42})
            pipes.report_custom_message({"auc": 0.91})   # the job's result

    Under ``PipesDominoClient`` (Dagster) this reads the context the client appended to the
    command (``PipesCliArgsParamsLoader``). Started by Airflow, Prefect or the CLI there is no
    Dagster context, so a minimal one is made here (no asset: pass ``asset_key``); the
    orchestrator reads the messages from stdout all the same (XCom, artifacts, lineage). Needs
    only ``dagster-pipes`` (no dependencies) in the job's environment. ``kwargs`` go to
    ``open_dagster_pipes`` (not ``params_loader``).
    """
    import os

    from dagster_pipes import (
        DAGSTER_PIPES_CONTEXT_ENV_VAR,
        DAGSTER_PIPES_MESSAGES_ENV_VAR,
        PipesCliArgsParamsLoader,
        PipesMappingParamsLoader,
        encode_param,
        open_dagster_pipes,
    )

    loader: Any = PipesCliArgsParamsLoader()
    if not loader.is_dagster_pipes_process():
        context: dict[str, Any] = {
            "asset_keys": None, "code_version_by_asset_key": None,
            "provenance_by_asset_key": None, "partition_key": None, "partition_key_range": None,
            "partition_time_window": None, "run_id": os.environ.get("DOMINO_RUN_ID") or "local",
            "job_name": os.environ.get("DOMINO_PROJECT_NAME"), "retry_number": 0, "extras": {},
        }
        loader = PipesMappingParamsLoader({
            DAGSTER_PIPES_CONTEXT_ENV_VAR: encode_param({"data": context}),
            DAGSTER_PIPES_MESSAGES_ENV_VAR: encode_param({"stdio": "stdout"}),
        })
    return open_dagster_pipes(params_loader=loader, **kwargs)
