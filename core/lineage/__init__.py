"""Lineage for Domino jobs (OpenLineage events, MLflow runs), emitted through core observers.

Integration-facing API (stable; the implementation lives in the modules beside this one):

    info = LineageInfo(orchestrator="airflow", job_name="dag.task", run_key=(dag, task, run_id, idx),
                       parent=ParentRun(namespace, name, run_id), inputs=[...], outputs=[...])
    observers = lineage_observers(info, client.config)   # [] when nothing is configured
    env = lineage_env(info, client.config)                # {} unless DOMINO_ORCHESTRATE_LINEAGE_ENV
    command = with_env_prefix(command, env)               # the command, untouched by default
    emit_parent_event(parent, "START", orchestrator="prefect")   # the orchestrator's own run

Modules: ``config`` (env switches, namespace; no third-party imports), ``ids`` (deterministic run
ids, scrubbing), ``events`` (pure RunEvent builders), ``observer`` (the OpenLineage observer),
``spool`` and ``transports`` (Databand transport, spool-and-retry delivery, ``flush_spool``),
``mlflow_sink`` (MLflow runs), ``parents`` (the orchestrator run's own events), ``injob`` (inside
the Domino job: its MLflow run and OpenLineage parent from ``DOMINO_RUN_ID``). This module
imports no third-party package at import time, so DAG files may import it cheaply;
``openlineage`` and ``mlflow`` load only when configured.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..command import with_env_prefix
from ..extras import requires_extra
from .config import LineageSettings, job_namespace
from .ids import as_uuid, lineage_run_id
from .naming import Dataset, DatasetNameError, parse_dataset, parse_datasets

__all__ = [
    "Dataset",
    "DatasetNameError",
    "LineageInfo",
    "ParentRun",
    "cli_session_parent",
    "emit_parent_event",
    "finish_parent_run",
    "flush_spool",
    "lineage_env",
    "lineage_observers",
    "lineage_observers_for_job",
    "lineage_run_id",
    "parent_variables",
    "parse_dataset",
    "parse_datasets",
    "start_parent_run",
    "with_env_prefix",
]

log = logging.getLogger("domino_orchestrate.lineage")


@dataclass(frozen=True)
class ParentRun:
    """The OpenLineage run a job's run belongs to (the DAG run, flow run, Dagster run or CLI
    session), and the root of that run's tree when it has one.
    """
    namespace: str
    name: str
    run_id: str
    root_namespace: str | None = None
    root_name: str | None = None
    root_run_id: str | None = None


@dataclass(frozen=True)
class LineageInfo:
    """What an integration knows about one task run, for its lineage events and MLflow run.

    ``orchestrator`` is ``airflow``, ``prefect``, ``dagster`` or ``cli``; ``job_name`` names the
    OpenLineage job; ``run_key`` identifies the task run without its try number (a retry keeps the
    lineage run id); ``inputs``/``outputs`` are the datasets it reads and writes.
    """
    orchestrator: str  # "airflow" | "prefect" | "dagster" | "cli"
    job_name: str
    #: The orchestrator's identity of this task run, without the try number: a retry keeps the
    #: same lineage run id.
    run_key: tuple[str, ...]
    parent: ParentRun | None = None
    inputs: tuple[Dataset, ...] = ()
    outputs: tuple[Dataset, ...] = ()
    nominal_time: datetime | None = None
    tags: dict[str, str] = field(default_factory=dict)


def _secrets(config: Any, settings: LineageSettings) -> tuple[str, ...]:
    values: list[str] = []
    credentials = getattr(config, "credentials", None)
    if credentials is not None and callable(getattr(credentials, "secrets", None)):
        values.extend(credentials.secrets())
    if settings.databand_token:
        values.append(settings.databand_token)
    import os

    for name in ("OPENLINEAGE_API_KEY", "DOMINO_USER_API_KEY", "DOMINO_ORCHESTRATE_DATABAND_TOKEN"):
        if os.environ.get(name):
            values.append(os.environ[name])
    return tuple(sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True))


def lineage_observers(info: LineageInfo, config: Any, *, job_id: str | None = None,
                      facts: Mapping[str, Any] | None = None) -> list[Any]:
    """Observers that emit lineage for one job; empty when no lineage is configured.

    Pass them to both ``start_job`` and ``wait`` (or to ``run_job``). A wait that did not see
    the start (another process: the Airflow triggerer, a second Prefect task) passes the Domino
    ``job_id`` (its submission facts are read from the job journal) or the ``facts`` the
    starting side handed over (``DominoFacts.to_dict()``), so its events carry the same facets.
    Never raises: a broken lineage configuration is logged and lineage is skipped.
    """
    observers: list[Any] = []
    try:
        settings = LineageSettings.from_env()
    except Exception as exc:
        log.warning("Lineage settings unreadable, lineage off: %s", exc)
        return observers
    project = getattr(config, "project", None)
    secrets = _secrets(config, settings)
    if settings.openlineage:
        try:
            with requires_extra("lineage", "OpenLineage events"):  # the warning names the extra
                from .events import DominoFacts, LineageRun
                from .observer import OpenLineageObserver
                from .transports import get_emitter

            emitter = get_emitter(settings)
            if emitter is not None:
                namespace = job_namespace(config)
                run = LineageRun.create(info, namespace, project, secrets)
                observer = OpenLineageObserver(run, emitter.emit, emitter.flush,
                                               settle=emitter.settle,
                                               journal_dir=settings.spool_dir)
                if facts is not None:
                    observer.facts = DominoFacts.from_dict(facts)
                elif job_id is not None:
                    from .journal import lookup_job

                    found = lookup_job(settings.spool_dir, job_id)
                    if found is not None:
                        observer.facts = found[2]
                observers.append(observer)
        except Exception as exc:
            log.warning("OpenLineage set-up failed, no lineage events for %s: %s: %s",
                        info.job_name, type(exc).__name__, exc)
    if settings.mlflow_tracking_uri:
        from .mlflow_sink import MlflowObserver

        observers.append(MlflowObserver(
            info, settings.mlflow_tracking_uri, settings.mlflow_experiment,
            project=project, secrets=secrets, namespace=job_namespace(config),
            spool_dir=settings.spool_dir / "mlflow",
        ))
    return observers


def lineage_observers_for_job(job_id: str, config: Any) -> list[Any]:
    """Observers for a wait on ``job_id`` that has no ``LineageInfo`` (another process started
    the job): the lineage run recorded in the job journal; else, with MLflow configured, an
    MLflow observer that finds the job's run by its ``domino.job_id`` tag and closes it.
    Empty when neither knows the job. Never raises."""
    try:
        settings = LineageSettings.from_env()
        from .journal import lookup_job

        found = lookup_job(settings.spool_dir, job_id) if settings.openlineage else None
        if found is not None:
            info, _, facts = found
            return lineage_observers(info, config, facts=facts.to_dict())
        if settings.mlflow_tracking_uri:
            from .mlflow_sink import MlflowObserver

            info = LineageInfo("unknown", f"domino-job-{job_id}", ("job", job_id))
            return [MlflowObserver(
                info, settings.mlflow_tracking_uri, settings.mlflow_experiment,
                project=getattr(config, "project", None), secrets=_secrets(config, settings),
                namespace=job_namespace(config), spool_dir=settings.spool_dir / "mlflow",
                find_only=True,
            )]
    except Exception as exc:
        log.warning("Lineage for Domino job %s not resumed: %s: %s", job_id,
                    type(exc).__name__, exc)
    return []


def lineage_env(info: LineageInfo, config: Any = None) -> dict[str, str]:
    """Environment variables that let lineage emitted inside the Domino job link to this run.

    Empty by default, so integrations send the user's command unchanged: only when the user opts
    in with ``DOMINO_ORCHESTRATE_LINEAGE_ENV=true`` do they prefix ``export …;`` to it (which needs
    a shell in the job: a v1 run without ``isDirect`` would take ``export`` for a file). Without
    it, the job finds its links from ``DOMINO_RUN_ID`` (``domino_orchestrate.injob``).

    The Domino job's run is the parent; the root is ``info.parent``'s root, else ``info.parent``,
    else the Domino job's run itself. Empty unless OpenLineage is configured. Pass the same
    ``config`` as to ``lineage_observers`` (it names the job namespace, see ``job_namespace``).
    Sets ``OPENLINEAGE_PARENT_ID``/``OPENLINEAGE_ROOT_PARENT_ID`` (``namespace/name/run_id``) and
    the split ``OPENLINEAGE_[ROOT_]PARENT_JOB_NAMESPACE``/``_JOB_NAME``/``_RUN_ID`` variables.
    """
    try:
        settings = LineageSettings.from_env()
    except Exception:
        return {}
    if not settings.openlineage or not settings.inject_env:
        return {}
    global _warned_no_config
    if config is None and not _warned_no_config:
        import os

        if not os.environ.get("OPENLINEAGE_NAMESPACE"):
            _warned_no_config = True
            log.warning("lineage_env() called without the Domino config: the parent namespace "
                        "may not match the lineage events; pass lineage_env(info, client.config)")
    return parent_variables(info, job_namespace(config))


def parent_variables(info: LineageInfo, namespace: str) -> dict[str, str]:
    """The ``OPENLINEAGE_[ROOT_]PARENT_*`` variables naming the lineage run of ``info``'s Domino
    job in job namespace ``namespace`` (pure; ``lineage_env`` and ``injob.openlineage_parent``)."""
    name, run_id = info.job_name, lineage_run_id(info)
    parent = info.parent
    if parent is not None and parent.root_namespace and parent.root_name and parent.root_run_id:
        root = (parent.root_namespace, parent.root_name, as_uuid(parent.root_run_id))
    elif parent is not None:
        root = (parent.namespace, parent.name, as_uuid(parent.run_id))
    else:
        root = (namespace, name, run_id)
    return {
        "OPENLINEAGE_PARENT_ID": f"{namespace}/{name}/{run_id}",
        "OPENLINEAGE_PARENT_JOB_NAMESPACE": namespace,
        "OPENLINEAGE_PARENT_JOB_NAME": name,
        "OPENLINEAGE_PARENT_RUN_ID": run_id,
        "OPENLINEAGE_ROOT_PARENT_ID": "/".join(root),
        "OPENLINEAGE_ROOT_PARENT_JOB_NAMESPACE": root[0],
        "OPENLINEAGE_ROOT_PARENT_JOB_NAME": root[1],
        "OPENLINEAGE_ROOT_PARENT_RUN_ID": root[2],
    }


_warned_no_config = False
#: Spool sub-directories that hold no OpenLineage events.
_NOT_EVENTS = {"mlflow", "jobs", "parents"}


def emit_parent_event(parent: ParentRun, state: str, *, orchestrator: str,
                      error: str | None = None, event_time: datetime | None = None) -> bool:
    """START/COMPLETE/FAIL/ABORT of the orchestrator's own run (flow run, Dagster run, CLI
    session), so a Domino job's ``parent`` facet never points at an orphan (``parents.py``)."""
    from .parents import emit_parent_event as _emit

    return _emit(parent, state, orchestrator=orchestrator, error=error, event_time=event_time)


def start_parent_run(parent: ParentRun, *, orchestrator: str) -> bool:
    """The orchestrator run's START, once per parent run (``parents.py``)."""
    from .parents import start_parent_run as _start

    return _start(parent, orchestrator=orchestrator)


def finish_parent_run(parent: ParentRun, state: str, *, orchestrator: str,
                      error: str | None = None) -> bool:
    """The orchestrator run's COMPLETE/FAIL/ABORT, once, if its START went out (``parents.py``)."""
    from .parents import finish_parent_run as _finish

    return _finish(parent, state, orchestrator=orchestrator, error=error)


def cli_session_parent(config: Any = None, name: str = "domino-orchestrate") -> ParentRun:
    """A fresh parent run for one CLI invocation (``parents.py``)."""
    from .parents import cli_session_parent as _session

    return _session(config, name)


def flush_spool(spool_dir: str | Path | None = None) -> tuple[int, int]:
    """Deliver spooled lineage events now (``domino-orchestrate lineage flush``).

    Returns ``(delivered, remaining)``. With nothing configured, nothing is delivered.
    """
    settings = LineageSettings.from_env()
    if spool_dir is not None:
        from dataclasses import replace

        settings = replace(settings, spool_dir=Path(spool_dir))
    closes = (0, 0)
    mlflow_dir = settings.spool_dir / "mlflow"
    if mlflow_dir.is_dir() and any(mlflow_dir.glob("*.json")):
        from .mlflow_sink import flush_mlflow_spool

        closes = flush_mlflow_spool(mlflow_dir)
    if not settings.openlineage:
        from .spool import Spool

        remaining = 0
        if settings.spool_dir.is_dir():
            remaining = sum(Spool(d).count() for d in settings.spool_dir.iterdir()
                            if d.is_dir() and d.name not in _NOT_EVENTS)
        return closes[0], remaining + closes[1]
    from .transports import flush_spool as _flush

    delivered, remaining = _flush(settings=settings)
    return delivered + closes[0], remaining + closes[1]
