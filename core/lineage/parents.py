"""Events for the orchestrator's own run (a Prefect flow run, a Dagster run, a CLI session), so
the ``parent`` facet of every Domino job's events points at a run that exists, not an orphan.

When they go out:

* **START** when the first Domino job of that parent is submitted (the job's
  ``OpenLineageObserver`` calls ``start_parent_run``): once per parent run, also when many jobs run in it and from several
  processes (a marker per parent run in the spool directory, created with ``O_EXCL``).
* **COMPLETE / FAIL / ABORT** from the orchestrator's own end: ``finish_parent_run`` — Prefect's
  flow-run state hooks, the Dagster run's own end event (in process) or else the Dagster
  run-status sensor, the CLI when its command returns. It sends
  only for a parent whose START went out (a flow run without Domino jobs stays silent), once.

Airflow needs none: its OpenLineage provider emits the DAG-run and task-instance events the
Domino job's ``parent`` facet names. Like every lineage call, these never raise and do nothing
unless OpenLineage is configured.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from .config import LineageSettings

if TYPE_CHECKING:
    from . import ParentRun

__all__ = [
    "JOB_TYPES",
    "cli_session_parent",
    "emit_parent_event",
    "finish_parent_run",
    "parent_event",
    "start_parent_run",
]

log = logging.getLogger("domino_orchestrate.lineage")

#: OpenLineage ``jobType`` of each orchestrator's own run.
JOB_TYPES = {"prefect": "FLOW", "dagster": "JOB", "cli": "COMMAND", "airflow": "DAG"}


def parent_event(parent: ParentRun, state: str, *, orchestrator: str,
                 error: str | None = None, event_time: datetime | None = None) -> Any:
    """The RunEvent of the orchestrator's run ``parent`` in ``state`` (pure)."""
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import error_message_run, job_type_job

    from .events import PRODUCER, _iso, parent_facet
    from .ids import as_uuid

    run_facets: dict[str, Any] = {}
    if parent.root_run_id and as_uuid(parent.root_run_id) != as_uuid(parent.run_id):
        from . import ParentRun as _ParentRun

        root = _ParentRun(parent.root_namespace or parent.namespace,
                          parent.root_name or parent.name, parent.root_run_id)
        run_facets["parent"] = parent_facet(root)
    if error:
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=error, programmingLanguage="python", producer=PRODUCER)
    return RunEvent(
        eventType=RunState[state],
        eventTime=_iso(event_time or datetime.now(timezone.utc)),
        run=Run(runId=as_uuid(parent.run_id), facets=run_facets),
        job=Job(namespace=parent.namespace, name=parent.name, facets={
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH", integration=orchestrator.upper(),
                jobType=JOB_TYPES.get(orchestrator, "JOB"), producer=PRODUCER),
        }),
        producer=PRODUCER,
    )


def emit_parent_event(parent: ParentRun, state: str, *, orchestrator: str,
                      error: str | None = None, event_time: datetime | None = None) -> bool:
    """Send ``parent_event(...)`` through the configured destinations (spooled when they are
    down). Returns whether lineage is on; never raises."""
    try:
        settings = LineageSettings.from_env()
        if not settings.openlineage:
            return False
        from .transports import get_emitter

        emitter = get_emitter(settings)
        if emitter is None:
            return False
        emitter.emit(parent_event(parent, state, orchestrator=orchestrator, error=error,
                                  event_time=event_time))
        emitter.flush()
        return True
    except Exception as exc:
        log.warning("Lineage event for %s run %s not sent: %s: %s", orchestrator, parent.name,
                    type(exc).__name__, exc)
        return False


def _marker(parent: ParentRun, phase: str) -> str:
    from .ids import as_uuid

    return f"{as_uuid(parent.run_id)}.{phase}"


def _once(parent: ParentRun, phase: Literal["start", "end"], *, event: str,
          orchestrator: str) -> bool:
    """Whether this call is the one to send the parent's ``phase`` event: lineage is on, the
    phase's marker was not taken before (by this or another process sharing the spool), and for
    ``"end"`` the START went out. Never raises: a spool that cannot be written sends nothing."""
    try:
        settings = LineageSettings.from_env()
        if not settings.openlineage:
            return False
        from .journal import mark_once, marked

        # An end without a START would close a run no consumer ever saw open.
        if phase == "end" and not marked(settings.spool_dir, _marker(parent, "start")):
            return False
        return mark_once(settings.spool_dir, _marker(parent, phase))
    except Exception as exc:
        log.warning("Lineage %s of %s run %s not sent: %s", event, orchestrator, parent.name, exc)
        return False


def start_parent_run(parent: ParentRun, *, orchestrator: str, with_root: bool = False) -> bool:
    """Emit the parent run's START unless it already went out (from this or another process
    sharing the spool directory). ``with_root`` first starts the parent's root the same way (a
    Prefect subflow's root flow run is live too; a Dagster re-execution's root run is not).
    Returns whether this call sent the parent's START; never raises."""
    if with_root and parent.root_run_id and parent.root_name:
        from . import ParentRun as _ParentRun
        from .ids import as_uuid

        if as_uuid(parent.root_run_id) != as_uuid(parent.run_id):
            start_parent_run(_ParentRun(parent.root_namespace or parent.namespace,
                                        parent.root_name, parent.root_run_id),
                             orchestrator=orchestrator)
    if not _once(parent, "start", event="START", orchestrator=orchestrator):
        return False
    return emit_parent_event(parent, "START", orchestrator=orchestrator)


def finish_parent_run(parent: ParentRun, state: str, *, orchestrator: str,
                      error: str | None = None, event_time: datetime | None = None) -> bool:
    """Emit the parent run's terminal event (COMPLETE, FAIL or ABORT), once, and only when its
    START went out (a run without Domino jobs emits nothing). Never raises."""
    if not _once(parent, "end", event=state, orchestrator=orchestrator):
        return False
    return emit_parent_event(parent, state, orchestrator=orchestrator, error=error,
                             event_time=event_time)


def cli_session_parent(config: Any = None, name: str = "domino-orchestrate") -> ParentRun:
    """A new parent run for one CLI invocation (its own run id), in the Domino jobs' namespace:
    put it in ``LineageInfo.parent`` (START goes out with the first job) and call
    ``finish_parent_run(parent, "COMPLETE"|"FAIL"|"ABORT", orchestrator="cli")`` at the end."""
    import uuid

    from . import ParentRun as _ParentRun
    from .config import job_namespace

    return _ParentRun(namespace=job_namespace(config), name=name, run_id=str(uuid.uuid4()))
