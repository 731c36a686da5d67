"""Lineage for Domino jobs (OpenLineage events, MLflow runs), emitted through core observers.

Integration-facing API (stable; the implementation lives in the modules beside this one):

    info = LineageInfo(orchestrator="airflow", job_name="dag.task", run_key=(dag, task, run_id, idx),
                       parent=ParentRun(namespace, name, run_id), inputs=[...], outputs=[...])
    observers = lineage_observers(info, client.config)   # [] when nothing is configured
    env = lineage_env(info)                               # env vars to pass into the Domino job
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["Dataset", "LineageInfo", "ParentRun", "lineage_env", "lineage_observers"]


@dataclass(frozen=True)
class Dataset:
    namespace: str
    name: str


@dataclass(frozen=True)
class ParentRun:
    namespace: str
    name: str
    run_id: str
    root_namespace: str | None = None
    root_name: str | None = None
    root_run_id: str | None = None


@dataclass(frozen=True)
class LineageInfo:
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


def lineage_observers(info: LineageInfo, config: Any) -> list[Any]:
    """Observers that emit lineage for one job; empty when no lineage is configured."""
    return []


def lineage_env(info: LineageInfo) -> dict[str, str]:
    """Environment variables that let lineage emitted inside the Domino job link to this run."""
    return {}
