"""Pure OpenLineage event builders: (lineage identity, Domino job facts) -> ``RunEvent``.

What lives here: deterministic run ids, the Domino-state -> OpenLineage-state mapping, the facets
(parent, nominalTime, jobType, processing_engine, tags, errorMessage; our own ``dominoJob``, and
Databand's ``log`` and ``startTime``, whose JSON schemas ship in ``schemas/``) and the scrubber.
Everything is built with openlineage-python's classes (``openlineage.client.event_v2`` and
``facet_v2``), never as hand-written JSON.

What must not live here: I/O of any kind. Sending belongs to ``transports.py``; deciding *when*
to build which event belongs to ``observer.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attr
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    error_message_run,
    job_type_job,
    nominal_time_run,
    parent_run,
    processing_engine_run,
    tags_run,
)
from openlineage.client.generated.base import RunFacet

from ..status import JobStatus
from .ids import RUN_ID_NAMESPACE, as_uuid, lineage_run_id, scrub

if TYPE_CHECKING:
    from . import Dataset, LineageInfo, ParentRun

__all__ = [
    "PRODUCER",
    "RUN_ID_NAMESPACE",
    "STATE_BY_STATUS",
    "DominoFacts",
    "DominoJobRunFacet",
    "LineageRun",
    "LogRunFacet",
    "StartTimeRunFacet",
    "as_uuid",
    "build_event",
    "domino_job_facet",
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
        """The lineage run of ``info``: its run id is derived from the task run (a retry keeps it)."""
        return cls(info, namespace, lineage_run_id(info), project, tuple(secrets))

    def clean(self, text: str) -> str:
        """``text`` with every known secret replaced."""
        return scrub(text, self.secrets)


@dataclass(frozen=True)
class DominoFacts:
    """What Domino told us about the job (from a handle, the spec or a snapshot); all optional."""

    job_id: str | None = None
    url: str | None = None
    hardware_tier: str | None = None
    status: str | None = None
    kind: str | None = None
    title: str | None = None
    environment_id: str | None = None
    commit_id: str | None = None
    output_commit_id: str | None = None
    is_direct: bool | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None

    @classmethod
    def from_submission(cls, handle: Any, spec: Any) -> DominoFacts:
        """What is known once Domino accepted the job: its id and what the user asked for."""
        is_direct = getattr(spec, "is_direct", None)
        return cls(
            job_id=getattr(handle, "job_id", None), url=getattr(handle, "url", None),
            hardware_tier=getattr(spec, "hardware_tier_name", None)
            or getattr(spec, "hardware_tier_id", None) or getattr(spec, "tier", None),
            kind=getattr(handle, "kind", None),
            title=getattr(spec, "title", None),
            environment_id=getattr(spec, "environment_id", None),
            commit_id=getattr(spec, "commit_id", None),
            is_direct=is_direct if isinstance(is_direct, bool) else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (for the job journal and trigger kwargs); ``from_dict`` reads it back."""
        return {k: (v.isoformat() if isinstance(v, datetime) else v)
                for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> DominoFacts:
        """Facts from ``to_dict``'s output (a job journal); empty facts for ``None``."""
        values: dict[str, Any] = {}
        for key, value in (data or {}).items():
            if key not in cls.__dataclass_fields__ or value is None:
                continue
            if key in ("started_at", "completed_at") and isinstance(value, str):
                value = datetime.fromisoformat(value)
            values[key] = value
        return cls(**values)

    @classmethod
    def from_snapshot(cls, snapshot: Any, fallback: DominoFacts | None = None) -> DominoFacts:
        """Facts from a ``JobSnapshot``, keeping ``fallback``'s for what the snapshot lacks."""
        base = fallback or cls()
        if snapshot is None:
            return base

        def pick(name: str, attr: str | None = None) -> Any:
            return getattr(snapshot, attr or name, None) or getattr(base, name)

        return replace(
            base,
            job_id=pick("job_id"), url=pick("url"), hardware_tier=pick("hardware_tier"),
            status=pick("status", "raw_status"), kind=pick("kind"), title=pick("title"),
            commit_id=pick("commit_id"), output_commit_id=pick("output_commit_id"),
            started_at=pick("started_at"),
            completed_at=pick("completed_at"),
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
        "domino.commit_id": facts.commit_id,
        "domino.output_commit_id": facts.output_commit_id,
    }
    for key, value in run.info.tags.items():
        values.setdefault(str(key), None if value is None else str(value))
    facet = tags_run.TagsRunFacet(
        tags=[
            tags_run.TagsRunFacetFields(key=key, value=run.clean(value), source=TAG_SOURCE)
            for key, value in values.items()
            if value
        ],
        producer=PRODUCER,
    )
    # Databand reads its project and run names from the ``tags`` facet (seed 004); OpenLineage's
    # schema allows the extra fields beside ``tags``.
    return facet.with_additional_properties(  # type: ignore[return-value]
        projectName=run.clean(run.project or run.namespace), runName=run.info.job_name)


SCHEMA_BASE = ("https://raw.githubusercontent.com/domino-orchestrate/domino-orchestrate/main/"
               "core/lineage/schemas/")
#: The JSON schemas of our own facets ship in the package (``schemas/``) and are published at
#: ``SCHEMA_BASE``; every event names them in ``_schemaURL``.
SCHEMA_DIR = Path(__file__).with_name("schemas")


@attr.define
class DominoJobRunFacet(RunFacet):
    """The Domino job behind a run (``schemas/DominoJobRunFacet.json``)."""

    jobId: str  # OpenLineage facets name fields in camelCase
    kind: str | None = None
    url: str | None = None
    project: str | None = None
    title: str | None = None
    hardwareTier: str | None = None
    environmentId: str | None = None
    commitId: str | None = None
    outputCommitId: str | None = None
    status: str | None = None
    isDirect: bool | None = None

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA_BASE + "DominoJobRunFacet.json#/$defs/DominoJobRunFacet"


@attr.define
class LogRunFacet(RunFacet):
    """The job's stdout tail and where its full log is (Databand's ``log`` facet)."""

    logBody: str
    logUrl: str | None = None

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA_BASE + "LogRunFacet.json#/$defs/LogRunFacet"


@attr.define
class StartTimeRunFacet(RunFacet):
    """When the job started running by Domino's clock (Databand's ``startTime`` facet)."""

    startTime: str

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA_BASE + "StartTimeRunFacet.json#/$defs/StartTimeRunFacet"


def domino_job_facet(run: LineageRun, facts: DominoFacts) -> DominoJobRunFacet | None:
    """The ``dominoJob`` run facet of ``facts`` (``None`` before the job has an id)."""
    if not facts.job_id:
        return None
    return DominoJobRunFacet(
        jobId=facts.job_id, kind=facts.kind, url=facts.url, project=run.project,
        title=run.clean(facts.title) if facts.title else None, hardwareTier=facts.hardware_tier,
        environmentId=facts.environment_id, commitId=facts.commit_id,
        outputCommitId=facts.output_commit_id, status=facts.status, isDirect=facts.is_direct,
        producer=PRODUCER,
    )


def _iso(when: datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.isoformat()


def run_facets(run: LineageRun, facts: DominoFacts,
               error: tuple[str, str | None] | None = None,
               log_tail: Sequence[str] | None = None) -> dict[str, Any]:
    """Run facets of every event; ``error`` = (message, stack) adds ``errorMessage``;
    ``log_tail`` (the last stdout lines, on the final event) adds ``log``."""
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
    job = domino_job_facet(run, facts)
    if job is not None:
        facets["dominoJob"] = job
    if facts.started_at is not None:
        facets["startTime"] = StartTimeRunFacet(startTime=_iso(facts.started_at),
                                                producer=PRODUCER)
    if log_tail is not None:
        facets["log"] = LogRunFacet(logBody=run.clean("\n".join(log_tail)), logUrl=facts.url,
                                    producer=PRODUCER)
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
    """The job facets every Domino job's events carry (``jobType``: a Domino job, batch)."""
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
    log_tail: Sequence[str] | None = None,
) -> RunEvent:
    """One RunEvent for ``run`` in ``state``. Pure: same inputs, same event."""
    return RunEvent(
        eventType=state,
        eventTime=_iso(event_time or datetime.now(timezone.utc)),
        run=Run(runId=run.run_id, facets=run_facets(run, facts, error, log_tail)),
        job=Job(namespace=run.namespace, name=run.info.job_name, facets=job_facets()),
        inputs=_inputs(run.info.inputs),
        outputs=_outputs(run.info.outputs),
        producer=PRODUCER,
    )
