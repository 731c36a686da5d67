"""What the lineage store answers with: component runs, their datasets, traces, staleness
findings, the review ranking and import counts. Every answer has ``to_dict()`` (JSON-ready).

A component is an OpenLineage job (namespace/name); a component run is an OpenLineage run (its
START and terminal events); inputs and outputs are OpenLineage datasets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class DatasetRef:
    """An OpenLineage dataset (namespace/name), with its version when the producer knew it."""

    namespace: str
    name: str
    version: str | None = None

    @property
    def key(self) -> str:
        """``namespace/name``: what ``trace``, ``flag`` and ``stale`` accept besides the name."""
        return f"{self.namespace}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus ``key``."""
        return {"namespace": self.namespace, "name": self.name, "version": self.version,
                "key": self.key}


@dataclass(frozen=True)
class ComponentRun:
    """One run of a component: what its OpenLineage events said, merged (see ``events.fold``)."""

    run_id: str  # the OpenLineage runId
    namespace: str  # the OpenLineage job namespace
    component: str  # the OpenLineage job name
    status: str  # RUNNING | COMPLETE | FAIL | ABORT (OpenLineage event types)
    start_time: datetime | None = None
    end_time: datetime | None = None
    code_version: str | None = None
    domino_job_id: str | None = None
    domino_job_url: str | None = None
    parent_run_id: str | None = None  # the orchestrator's run (OpenLineage parent facet)
    parent_name: str | None = None
    inputs: tuple[DatasetRef, ...] = ()
    outputs: tuple[DatasetRef, ...] = ()
    tags: tuple[str, ...] = ()
    domino_status: str | None = None  # Domino's own word: Succeeded, Failed, Error, Stopped...
    error_message: str | None = None  # the errorMessage facet of a FAIL/ABORT
    orchestrator: str | None = None  # airflow | prefect | dagster | cli (our events' tag)
    event_count: int = 0  # how many distinct events the store holds for this run

    @property
    def key(self) -> str:
        """``namespace/name`` of the component."""
        return f"{self.namespace}/{self.component}"

    @property
    def failed(self) -> bool:
        """True when the run ended FAIL or ABORT (Domino Failed, Error or Stopped)."""
        return self.status in ("FAIL", "ABORT")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times in ISO-8601, datasets as dicts with their ``key``."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}  # shallow: asdict is slow
        for name in ("start_time", "end_time"):
            value = getattr(self, name)
            data[name] = value.isoformat() if value else None
        data["inputs"] = [ref.to_dict() for ref in self.inputs]
        data["outputs"] = [ref.to_dict() for ref in self.outputs]
        data["tags"] = list(self.tags)
        return data


@dataclass(frozen=True)
class TraceNode:
    """One run in the tree that led to an output; ``via`` is the dataset it gave its child.

    A run that fed several runs of the tree appears under each, but its own upstream is shown
    once: the later appearances are ``repeated`` leaves (edges are all there; no blow-up).
    """

    run: ComponentRun
    via: DatasetRef | None = None
    upstream: tuple[TraceNode, ...] = field(default_factory=tuple)
    repeated: bool = False  # shown (with its upstream) elsewhere in this tree

    def to_dict(self) -> dict[str, Any]:
        """The tree as nested dicts."""
        return {
            "run": self.run.to_dict(),
            "via": self.via.to_dict() if self.via else None,
            "upstream": [node.to_dict() for node in self.upstream],
            "repeated": self.repeated,
        }

    def walk(self) -> Iterator[TraceNode]:
        """This node and every node upstream of it, depth first."""
        yield self
        for node in self.upstream:
            yield from node.walk()

    def runs(self) -> list[ComponentRun]:
        """Each run in the tree once, nearest first."""
        seen: dict[str, ComponentRun] = {}
        for node in self.walk():
            seen.setdefault(node.run.run_id, node.run)
        return list(seen.values())


#: Staleness rules: mltrace's two, and ours.
RULE_OLD = "old"  # the dependency ran more than the threshold before the run that used it
RULE_FRESHER = "fresher"  # the dependency's component has completed fresher runs since
RULE_FAILED = "failed"  # the dependency run ended FAIL or ABORT


@dataclass(frozen=True)
class StaleFinding:
    """``run`` may need a rerun because of its dependency ``dependency`` (by ``rule``)."""

    run: ComponentRun
    dependency: ComponentRun
    via: DatasetRef  # the input of ``run`` that ``dependency`` produced
    rule: str  # RULE_OLD | RULE_FRESHER | RULE_FAILED
    reason: str  # one sentence for people

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with both runs in full."""
        return {"run": self.run.to_dict(), "dependency": self.dependency.to_dict(),
                "via": self.via.to_dict(), "rule": self.rule, "reason": self.reason}


@dataclass(frozen=True)
class ReviewEntry:
    """A component run found in ``count`` of the ``total`` flagged outputs' traces."""

    run: ComponentRun
    count: int
    total: int
    outputs: tuple[str, ...] = ()  # the flagged outputs (dataset keys) whose trace holds it

    @property
    def coverage(self) -> float:
        """The fraction of flagged outputs this run helped produce (mltrace's coverage)."""
        return self.count / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with ``coverage``."""
        return {"run": self.run.to_dict(), "count": self.count, "total": self.total,
                "coverage": self.coverage, "outputs": list(self.outputs)}


@dataclass(frozen=True)
class FlaggedOutput:
    """An output flagged for review (``LineageStore.flag``)."""

    dataset: DatasetRef
    flagged_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {**self.dataset.to_dict(), "flagged_at": self.flagged_at.isoformat()}


@dataclass(frozen=True)
class IngestResult:
    """What an ingest or import did: ``new`` events stored, ``duplicates`` already there,
    ``ignored`` job/dataset events (no run), ``invalid`` lines skipped (``file:line: why``)."""

    new: int = 0
    duplicates: int = 0
    ignored: int = 0
    runs: int = 0  # distinct runs the new events touched
    invalid: tuple[str, ...] = ()

    def __add__(self, other: IngestResult) -> IngestResult:
        return IngestResult(self.new + other.new, self.duplicates + other.duplicates,
                            self.ignored + other.ignored, self.runs + other.runs,
                            self.invalid + other.invalid)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        data = asdict(self)
        data["invalid"] = list(self.invalid)
        return data
