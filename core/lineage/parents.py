"""Events for the orchestrator's own run (a Prefect flow run, a Dagster run, a CLI session), so
the ``parent`` facet of every Domino job's events points at a run that exists, not an orphan.

Integrations call ``emit_parent_event(parent, "START", orchestrator=…)`` when their run begins
and ``"COMPLETE"``/``"FAIL"``/``"ABORT"`` when it ends, with the same ``ParentRun`` they put in
``LineageInfo.parent``. Airflow needs none: its OpenLineage provider emits DAG-run events. Like
every lineage call, this never raises and does nothing unless OpenLineage is configured.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .config import LineageSettings

if TYPE_CHECKING:
    from . import ParentRun

__all__ = ["JOB_TYPES", "emit_parent_event", "parent_event"]

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
