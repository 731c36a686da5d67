"""Inside a Domino job: find the MLflow run (and the OpenLineage run) that represents this job.

Domino gives every job ``DOMINO_RUN_ID`` (the job id), ``DOMINO_PROJECT_OWNER`` and
``DOMINO_PROJECT_NAME``. The orchestrator's MLflow sink tags the job's run with
``domino.job_id`` = that id, so the job needs nothing passed in its command line::

    import mlflow
    from domino_orchestrate.injob import mlflow_run

    with mlflow_run():                       # resumes the run the orchestrator opened for this job
        mlflow.log_metric("auc", 0.91)

The run is the one the orchestrator closes with the job's final status, times and stdout: the
job's own metrics, params and models land beside them, nested under the orchestrator's run where
one exists (``mlflow.parentRunId``). Without an orchestrator run (MLflow not configured there),
``mlflow_run()`` opens a run of its own, tagged with the job id, and ends it itself.

Where: ``DOMINO_ORCHESTRATE_MLFLOW_TRACKING_URI``, else ``MLFLOW_TRACKING_URI`` (Domino sets it
in jobs); experiment ``DOMINO_ORCHESTRATE_MLFLOW_EXPERIMENT`` (default ``domino-orchestrate``),
as the orchestrator uses them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ..errors import ConfigurationError
from ..extras import requires_extra
from .config import (
    DEFAULT_MLFLOW_EXPERIMENT,
    MLFLOW_EXPERIMENT_ENV,
    MLFLOW_URI_ENV,
    mlflow_experiment_name,
)

__all__ = ["WAIT_ENV", "domino_job_id", "find_job_run", "mlflow_run", "openlineage_parent"]

#: Seconds ``mlflow_run`` waits for the orchestrator to open the job's run (it opens it right
#: after Domino accepts the job, which can race with a job that starts at once).
WAIT_ENV = "DOMINO_ORCHESTRATE_MLFLOW_WAIT"
DEFAULT_WAIT_S = 10.0


def domino_job_id(env: Mapping[str, str] | None = None) -> str:
    """This job's Domino id (``DOMINO_RUN_ID``); a ``ConfigurationError`` outside a job."""
    env = os.environ if env is None else env
    job_id = env.get("DOMINO_RUN_ID", "").strip()
    if not job_id:
        raise ConfigurationError(
            "DOMINO_RUN_ID is not set: domino_orchestrate.injob helpers run inside a Domino job "
            "(set DOMINO_RUN_ID=<job id> to try them elsewhere)")
    return job_id


def _tracking_uri(tracking_uri: str | None, env: Mapping[str, str]) -> str:
    uri = tracking_uri or env.get(MLFLOW_URI_ENV) or env.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise ConfigurationError(
            f"No MLflow tracking server: set {MLFLOW_URI_ENV} or MLFLOW_TRACKING_URI in the job")
    return uri


def find_job_run(client: Any, experiment: str, job_id: str, wait_s: float = 0.0) -> Any:
    """The MLflow run tagged ``domino.job_id`` = ``job_id`` in ``experiment``, waiting up to
    ``wait_s`` seconds for it to appear; None if there is none."""
    from .mlflow_sink import JOB_ID_TAG, experiment_id, find_run

    deadline = time.monotonic() + wait_s
    pause = 0.25
    while True:
        exp_id = experiment_id(client, experiment, create=False)
        found = find_run(client, exp_id, JOB_ID_TAG, job_id) if exp_id else None
        if found is not None or time.monotonic() >= deadline:
            return found
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, 2.0)


@contextmanager
def mlflow_run(*, tracking_uri: str | None = None, experiment: str | None = None,
               wait_s: float | None = None) -> Iterator[Any]:
    """Make this Domino job's MLflow run the active run (``mlflow.log_*`` go into it).

    The orchestrator's run for this job is resumed and left RUNNING on exit: the orchestrator
    closes it with Domino's final status. With none, a run of the job's own is started and ended
    (FINISHED, or FAILED when the block raises).
    """
    with requires_extra("mlflow", "domino_orchestrate.injob.mlflow_run"):
        import mlflow
        from mlflow import MlflowClient

    from .mlflow_sink import JOB_ID_TAG

    env = os.environ
    job_id = domino_job_id(env)
    uri = _tracking_uri(tracking_uri, env)
    name = mlflow_experiment_name(
        experiment or env.get(MLFLOW_EXPERIMENT_ENV) or DEFAULT_MLFLOW_EXPERIMENT, uri)
    if wait_s is None:
        wait_s = float(env.get(WAIT_ENV) or DEFAULT_WAIT_S)
    found = find_job_run(MlflowClient(tracking_uri=uri), name, job_id, wait_s)
    mlflow.set_tracking_uri(uri)
    if found is not None:
        active = mlflow.start_run(run_id=found.info.run_id)
        owned = False
    else:
        mlflow.set_experiment(name)
        project = "/".join(p for p in (env.get("DOMINO_PROJECT_OWNER"),
                                        env.get("DOMINO_PROJECT_NAME")) if p)
        tags = {JOB_ID_TAG: job_id, "mlflow.source.type": "JOB",
                "mlflow.source.name": f"domino:{project or job_id}"}
        if project:
            tags["domino.project"] = project
        if env.get("DOMINO_STARTING_USERNAME"):
            tags["mlflow.user"] = env["DOMINO_STARTING_USERNAME"]
        active = mlflow.start_run(run_name=f"domino-job-{job_id}", tags=tags)
        owned = True
    try:
        yield active
    except BaseException:
        mlflow.end_run("FAILED" if owned else "RUNNING")
        raise
    # A resumed run stays RUNNING: the orchestrator ends it with Domino's status and times.
    mlflow.end_run("FINISHED" if owned else "RUNNING")


def openlineage_parent(*, tracking_uri: str | None = None, experiment: str | None = None,
                       wait_s: float = 0.0) -> dict[str, str]:
    """The ``OPENLINEAGE_PARENT_*`` (and ``_ROOT_PARENT_*``) variables naming this job's
    OpenLineage run, so lineage emitted inside the job (dbt-ol, Spark) links to it; ``{}`` when
    the orchestrator recorded none. Found from ``DOMINO_RUN_ID`` alone, without env injection:

    1. the orchestrator's job journal (``<spool>/jobs/<job id>.json``, see
       ``core/lineage/journal.py``), when the job sees that directory (a shared volume named by
       ``DOMINO_ORCHESTRATE_LINEAGE_SPOOL`` on both sides); it also names the root run;
    2. else the tags of the job's MLflow run (needs MLflow on, there and in the job).
    """
    env = os.environ
    job_id = domino_job_id(env)
    from .config import LineageSettings
    from .journal import lookup_job

    recorded = lookup_job(LineageSettings.from_env(env).spool_dir, job_id)
    if recorded is not None:
        from . import parent_variables

        info, namespace, _ = recorded
        return parent_variables(info, namespace)
    uri = tracking_uri or env.get(MLFLOW_URI_ENV) or env.get("MLFLOW_TRACKING_URI")
    if not uri:
        return {}
    with requires_extra("mlflow", "domino_orchestrate.injob.openlineage_parent"):
        from mlflow import MlflowClient

    name = mlflow_experiment_name(
        experiment or env.get(MLFLOW_EXPERIMENT_ENV) or DEFAULT_MLFLOW_EXPERIMENT, uri)
    found = find_job_run(MlflowClient(tracking_uri=uri), name, job_id, wait_s)
    tags = found.data.tags if found is not None else {}
    tag_namespace, job, run_id = (tags.get("openlineage.namespace"),
                                  tags.get("openlineage.job_name"), tags.get("openlineage.run_id"))
    if not (tag_namespace and job and run_id):
        return {}
    return {
        "OPENLINEAGE_PARENT_ID": f"{tag_namespace}/{job}/{run_id}",
        "OPENLINEAGE_PARENT_JOB_NAMESPACE": tag_namespace,
        "OPENLINEAGE_PARENT_JOB_NAME": job,
        "OPENLINEAGE_PARENT_RUN_ID": run_id,
    }
