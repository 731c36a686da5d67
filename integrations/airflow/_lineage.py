"""Lineage plumbing for the Airflow provider: Airflow's OpenLineage ids, LineageInfo <-> plain dicts.

What lives here: ``build_lineage_info`` (the ``LineageInfo`` of one task run, whose parent is the
run Airflow's own OpenLineage integration reports for the task, and whose root is the DAG run),
``lineage_to_dict``/``lineage_from_dict`` (so the info can cross the trigger boundary as
primitives) and ``parse_datasets``. Nothing here imports Airflow or the core lineage package at
module import time (operators import this module while DAG files are parsed).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from domino_orchestrate.core.lineage import Dataset, LineageInfo

__all__ = [
    "build_lineage_info",
    "lineage_from_dict",
    "lineage_namespace",
    "lineage_to_dict",
    "parse_datasets",
    "task_run_ids",
]

DatasetLike: TypeAlias = "str | Dataset | Mapping[str, str]"


def parse_datasets(items: Iterable[DatasetLike] | None) -> tuple[Dataset, ...]:
    """``"namespace:name"`` strings, ``Dataset`` or ``{"namespace", "name"}`` dicts → Datasets.

    A string splits at its last ``:`` that is not part of ``://`` (so ``s3://bucket:key`` keeps
    ``s3://bucket`` as namespace); a string without one gets the namespace ``"default"``.
    """
    from domino_orchestrate.core.lineage import Dataset

    out: list[Dataset] = []
    for item in items or ():
        if isinstance(item, Dataset):
            out.append(item)
        elif isinstance(item, Mapping):
            out.append(Dataset(str(item["namespace"]), str(item["name"])))
        elif isinstance(item, str):
            head, sep, tail = item.rpartition(":")
            if not sep or tail.startswith("//") or not head:
                out.append(Dataset("default", item))
            else:
                out.append(Dataset(head, tail))
        else:
            raise TypeError(f"Unsupported dataset {item!r}: use 'namespace:name' or Dataset")
    return tuple(out)


def lineage_namespace() -> str:
    """The namespace Airflow's OpenLineage provider uses (``[openlineage] namespace``)."""
    try:
        from airflow.sdk import conf  # type: ignore[attr-defined]

        value = conf.get("openlineage", "namespace", fallback=None)
    except Exception:  # pragma: no cover - Airflow config unavailable
        value = None
    return str(value or os.getenv("OPENLINEAGE_NAMESPACE") or "default")


def _static_uuid(instant: datetime, data: bytes) -> str:
    try:
        from openlineage.client.uuid import generate_static_uuid

        return str(generate_static_uuid(instant=instant, data=data))
    except ImportError:  # pragma: no cover - openlineage-python not installed
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{instant.isoformat()}|{data.decode()}"))


def task_run_ids(
    dag_id: str, task_id: str, try_number: int, logical_date: datetime, map_index: int,
    clear_number: int,
) -> tuple[str, str]:
    """(task-instance run id, DAG run id) exactly as Airflow's OpenLineage provider builds them.

    Uses ``OpenLineageAdapter.build_task_instance_run_id(dag_id, task_id, try_number,
    logical_date, map_index)`` and ``build_dag_run_id(dag_id, logical_date, clear_number)`` when
    the provider is installed; otherwise the same formula (namespace-salted static UUIDv7).
    """
    try:
        from airflow.providers.openlineage.plugins.adapter import (  # type: ignore[import-not-found]
            OpenLineageAdapter,
        )

        return (
            OpenLineageAdapter.build_task_instance_run_id(
                dag_id=dag_id, task_id=task_id, try_number=try_number,
                logical_date=logical_date, map_index=map_index,
            ),
            OpenLineageAdapter.build_dag_run_id(
                dag_id=dag_id, logical_date=logical_date, clear_number=clear_number
            ),
        )
    except (ImportError, TypeError):
        ns = lineage_namespace()
        task_run = _static_uuid(
            logical_date, f"{ns}.{dag_id}.{task_id}.{try_number}.{map_index}".encode()
        )
        dag_run = _static_uuid(logical_date, f"{ns}.{dag_id}.{clear_number}".encode())
        return task_run, dag_run


def build_lineage_info(
    context: Mapping[str, Any], inputs: Iterable[DatasetLike] | None = None,
    outputs: Iterable[DatasetLike] | None = None, generation: int = 0,
) -> LineageInfo:
    """The ``LineageInfo`` of the task run described by an Airflow ``context``.

    ``generation`` is the task instance's clear generation (``operators.clear_generation``): a
    cleared task's fresh Domino job is a new lineage run, while retries of one generation share
    one (the run key carries no try number).
    """
    from domino_orchestrate.core.lineage import LineageInfo, ParentRun

    ti = context["ti"]
    dag_run = context.get("dag_run")
    dag_id, task_id, run_id = str(ti.dag_id), str(ti.task_id), str(ti.run_id)
    map_index = int(getattr(ti, "map_index", -1) if getattr(ti, "map_index", None) is not None else -1)
    logical = getattr(dag_run, "logical_date", None) or context.get("logical_date")
    when: datetime = logical or getattr(dag_run, "run_after", None) or datetime.now().astimezone()
    clear_number = int(getattr(dag_run, "clear_number", 0) or 0)
    task_run_id, dag_run_id = task_run_ids(
        dag_id, task_id, int(getattr(ti, "try_number", 1) or 1), when, map_index, clear_number
    )
    ns = lineage_namespace()
    return LineageInfo(
        orchestrator="airflow",
        job_name=f"{dag_id}.{task_id}",
        run_key=(dag_id, task_id, run_id, str(map_index),
                 *((f"gen={generation}",) if generation else ())),
        parent=ParentRun(
            namespace=ns, name=f"{dag_id}.{task_id}", run_id=task_run_id,
            root_namespace=ns, root_name=dag_id, root_run_id=dag_run_id,
        ),
        inputs=parse_datasets(inputs),
        outputs=parse_datasets(outputs),
        nominal_time=logical,
        tags={"airflow.run_id": run_id},
    )


def lineage_to_dict(info: LineageInfo) -> dict[str, Any]:
    """Primitives only (JSON-safe), for trigger kwargs."""
    parent = info.parent
    return {
        "orchestrator": info.orchestrator,
        "job_name": info.job_name,
        "run_key": list(info.run_key),
        "parent": None if parent is None else {
            "namespace": parent.namespace, "name": parent.name, "run_id": parent.run_id,
            "root_namespace": parent.root_namespace, "root_name": parent.root_name,
            "root_run_id": parent.root_run_id,
        },
        "inputs": [[d.namespace, d.name] for d in info.inputs],
        "outputs": [[d.namespace, d.name] for d in info.outputs],
        "nominal_time": info.nominal_time.isoformat() if info.nominal_time else None,
        "tags": dict(info.tags),
    }


def lineage_from_dict(data: Mapping[str, Any]) -> LineageInfo:
    from domino_orchestrate.core.lineage import Dataset, LineageInfo, ParentRun

    parent = data.get("parent")
    nominal = data.get("nominal_time")
    return LineageInfo(
        orchestrator=str(data["orchestrator"]),
        job_name=str(data["job_name"]),
        run_key=tuple(str(p) for p in data["run_key"]),
        parent=None if not parent else ParentRun(**parent),
        inputs=tuple(Dataset(ns, name) for ns, name in data.get("inputs") or ()),
        outputs=tuple(Dataset(ns, name) for ns, name in data.get("outputs") or ()),
        nominal_time=datetime.fromisoformat(nominal) if nominal else None,
        tags=dict(data.get("tags") or {}),
    )

