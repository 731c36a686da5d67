"""What the lineage store answers with: component runs, their datasets, and traces.

A component is an OpenLineage job (namespace/name); a component run is an OpenLineage run (its
START and terminal events); inputs and outputs are OpenLineage datasets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class DatasetRef:
    namespace: str
    name: str
    version: str | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ComponentRun:
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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("start_time", "end_time"):
            value = getattr(self, name)
            data[name] = value.isoformat() if value else None
        return data


@dataclass(frozen=True)
class TraceNode:
    """One run in the tree that led to an output; ``via`` is the dataset it gave its child."""

    run: ComponentRun
    via: DatasetRef | None = None
    upstream: tuple[TraceNode, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run.to_dict(),
            "via": asdict(self.via) if self.via else None,
            "upstream": [node.to_dict() for node in self.upstream],
        }
