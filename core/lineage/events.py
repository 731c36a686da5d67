"""Pure OpenLineage event builders: (lineage identity, Domino job facts) -> ``RunEvent``.

What lives here: deterministic run ids, the Domino-state -> OpenLineage-state mapping, the facets
(parent, nominalTime, jobType, processing_engine, tags, errorMessage) and the secret scrubber.
Everything is built with openlineage-python's classes (``openlineage.client.event_v2`` and
``facet_v2``), never as hand-written JSON.

What must not live here: I/O of any kind. Sending belongs to ``transports.py``; deciding *when*
to build which event belongs to ``observer.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    error_message_run,
    job_type_job,
    nominal_time_run,
    parent_run,
    processing_engine_run,
    tags_run,
)

from ..status import JobStatus
from .ids import RUN_ID_NAMESPACE, as_uuid, lineage_run_id, scrub

if TYPE_CHECKING:
    from . import Dataset, LineageInfo, ParentRun

__all__ = [
    "PRODUCER",
    "RUN_ID_NAMESPACE",
    "STATE_BY_STATUS",
    "DominoFacts",
    "LineageRun",
    "as_uuid",
    "build_event",
    "job_facets",
    "lineage_run_id",
    "parent_facet",
    "run_facets",
    "scrub",
]


def _version() -> str:
    try:
        from domino_orchestrate import __version__

        return str(__version__)
    except Exception:  # pragma: no cover - only when run from a bare checkout
        return "0.0.0"


ADAPTER_VERSION = _version()
PRODUCER = f"https://github.com/domino-orchestrate/domino-orchestrate/tree/{ADAPTER_VERSION}"
TAG_SOURCE = "DOMINO_ORCHESTRATE"

#: Terminal Domino status -> OpenLineage run state. Non-terminal statuses map to RUNNING (only
#: ``Running`` is emitted) or nothing; UNKNOWN never ends a lineage run.
STATE_BY_STATUS: dict[JobStatus, RunState] = {
    JobStatus.RUNNING: RunState.RUNNING,
    JobStatus.SUCCEEDED: RunState.COMPLETE,
    JobStatus.FAILED: RunState.FAIL,
    JobStatus.ERROR: RunState.FAIL,
    JobStatus.STOPPED: RunState.ABORT,
}


@dataclass(frozen=True)
class LineageRun:
    """The lineage identity of one Domino job run: fixed from submission to the end."""

    info: LineageInfo
    namespace: str
    run_id: str
    project: str | None = None
    secrets: tuple[str, ...] = ()

    @classmethod
    def create(cls, info: LineageInfo, namespace: str, project: str | None = None,
               secrets: Sequence[str] = ()) -> LineageRun:
        return cls(info, namespace, lineage_run_id(info), project, tuple(secrets))

    def clean(self, text: str) -> str:
        return scrub(text, self.secrets)


@dataclass(frozen=True)
class DominoFacts:
    """What Domino told us about the job (from a handle or a snapshot); all optional."""

    job_id: str | None = None
    url: str | None = None
    hardware_tier: str | None = None
    status: str | None = None

    @classmethod
    def from_snapshot(cls, snapshot: Any, fallback: DominoFacts | None = None) -> DominoFacts:
        base = fallback or cls()
        if snapshot is None:
            return base
        return cls(
            job_id=getattr(snapshot, "job_id", None) or base.job_id,
            url=getattr(snapshot, "url", None) or base.url,
            hardware_tier=getattr(snapshot, "hardware_tier", None) or base.hardware_tier,
            status=getattr(snapshot, "raw_status", None) or base.status,
        )


def parent_facet(parent: ParentRun) -> parent_run.ParentRunFacet:
    """The ``parent`` facet; the parent is its own root unless a root is given."""
    if parent.root_namespace and parent.root_name and parent.root_run_id:
        root_ns, root_name, root_id = parent.root_namespace, parent.root_name, parent.root_run_id
    else:
        root_ns, root_name, root_id = parent.namespace, parent.name, parent.run_id
    return parent_run.ParentRunFacet(
        run=parent_run.Run(runId=as_uuid(parent.run_id)),
        job=parent_run.Job(namespace=parent.namespace, name=parent.name),
        root=parent_run.Root(
            run=parent_run.RootRun(runId=as_uuid(root_id)),
            job=parent_run.RootJob(namespace=root_ns, name=root_name),
        ),
        producer=PRODUCER,
    )


def _tags(run: LineageRun, facts: DominoFacts) -> tags_run.TagsRunFacet:
    values: dict[str, str | None] = {
        "orchestrator": run.info.orchestrator,
        "domino.project": run.project,
        "domino.job_id": facts.job_id,
        "domino.job_url": facts.url,
        "domino.hardware_tier": facts.hardware_tier,
        "domino.status": facts.status,
    }
    for key, value in run.info.tags.items():
        values.setdefault(str(key), None if value is None else str(value))
    return tags_run.TagsRunFacet(
        tags=[
            tags_run.TagsRunFacetFields(key=key, value=run.clean(value), source=TAG_SOURCE)
            for key, value in values.items()
            if value
        ],
        producer=PRODUCER,
    )


def _iso(when: datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.isoformat()


def run_facets(run: LineageRun, facts: DominoFacts,
               error: tuple[str, str | None] | None = None) -> dict[str, Any]:
    """Run facets of every event; ``error`` = (message, stack) adds ``errorMessage``."""
    facets: dict[str, Any] = {
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version="unknown", name="Domino", openlineageAdapterVersion=ADAPTER_VERSION,
            producer=PRODUCER,
        ),
        "tags": _tags(run, facts),
    }
    if run.info.parent is not None:
        facets["parent"] = parent_facet(run.info.parent)
    if run.info.nominal_time is not None:
        facets["nominalTime"] = nominal_time_run.NominalTimeRunFacet(
            nominalStartTime=_iso(run.info.nominal_time), producer=PRODUCER
        )
    if error is not None:
        message, stack = error
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=run.clean(message),
            programmingLanguage="shell",
            stackTrace=run.clean(stack) if stack else None,
            producer=PRODUCER,
        )
    return facets


def job_facets() -> dict[str, Any]:
    return {
        "jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="DOMINO", jobType="JOB", producer=PRODUCER
        )
    }


def _inputs(datasets: Iterable[Dataset]) -> list[InputDataset]:
    return [InputDataset(namespace=d.namespace, name=d.name) for d in datasets]


def _outputs(datasets: Iterable[Dataset]) -> list[OutputDataset]:
    return [OutputDataset(namespace=d.namespace, name=d.name) for d in datasets]


def build_event(
    run: LineageRun,
    state: RunState,
    facts: DominoFacts,
    *,
    event_time: datetime | None = None,
    error: tuple[str, str | None] | None = None,
) -> RunEvent:
    """One RunEvent for ``run`` in ``state``. Pure: same inputs, same event."""
    return RunEvent(
        eventType=state,
        eventTime=_iso(event_time or datetime.now(timezone.utc)),
        run=Run(runId=run.run_id, facets=run_facets(run, facts, error)),
        job=Job(namespace=run.namespace, name=run.info.job_name, facets=job_facets()),
        inputs=_inputs(run.info.inputs),
        outputs=_outputs(run.info.outputs),
        producer=PRODUCER,
    )
