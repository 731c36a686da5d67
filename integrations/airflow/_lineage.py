"""Lineage plumbing for the Airflow provider: Airflow's OpenLineage ids, LineageInfo <-> plain dicts.

What lives here: ``build_lineage_info`` (the ``LineageInfo`` of one task run, whose parent is the
run Airflow's own OpenLineage integration reports for the task, and whose root is the DAG run),
``lineage_to_dict``/``lineage_from_dict`` (so the info can cross the trigger boundary as
primitives), ``parse_datasets``, and ``airflow_openlineage_config`` (registered with the core at
import: Domino-job events are on whenever Airflow's ``[openlineage]`` section configures a
transport). Nothing here imports Airflow or a third-party package at module import time
(operators import this module while DAG files are parsed).
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
    "airflow_openlineage_config",
    "asset_datasets",
    "build_lineage_info",
    "declared_datasets",
    "lineage_from_dict",
    "lineage_namespace",
    "lineage_to_dict",
    "parse_datasets",
    "submission_facts",
    "task_run_ids",
]

DatasetLike: TypeAlias = "str | Dataset | Mapping[str, str]"


def parse_datasets(items: Iterable[DatasetLike] | None) -> tuple[Dataset, ...]:
    """``"namespace:name"`` or URI strings, ``Dataset`` or ``{"namespace", "name"}`` dicts →
    Datasets (core ``parse_datasets``: one rule for every integration and the CLI)."""
    from domino_orchestrate.core.lineage import parse_datasets as _parse

    return _parse(items)


def asset_datasets(items: Iterable[Any] | None) -> tuple[Dataset, ...]:
    """Airflow ``Asset``s among an operator's ``inlets``/``outlets`` → Datasets: a URI asset by
    the one naming rule (``s3://bucket/key`` → ``s3://bucket``, ``key``); an asset named without a
    URI (``Asset("features")``) → namespace ``airflow``, name its name, so producer and consumer
    DAGs meet on it. Other lineage entries (``AssetAlias``, references) are left to Airflow."""
    from domino_orchestrate.core.lineage import Dataset, DatasetNameError, parse_dataset

    found: list[Dataset] = []
    for item in items or ():
        uri, name = getattr(item, "uri", None), getattr(item, "name", None)
        if not isinstance(uri, str) or not uri:
            continue
        try:
            found.append(parse_dataset(uri))
        except DatasetNameError:
            found.append(Dataset("airflow", str(name or uri)))
    return tuple(found)


def declared_datasets(operator: Any) -> tuple[tuple[Dataset, ...], tuple[Dataset, ...]]:
    """What a task declares it reads and writes: ``input_datasets``/``output_datasets`` and the
    Assets in its ``inlets``/``outlets``, in that order, without repeats."""
    inputs = (*parse_datasets(getattr(operator, "input_datasets", None) or ()),
              *asset_datasets(getattr(operator, "inlets", None)))
    outputs = (*parse_datasets(getattr(operator, "output_datasets", None) or ()),
               *asset_datasets(getattr(operator, "outlets", None)))
    return tuple(dict.fromkeys(inputs)), tuple(dict.fromkeys(outputs))


def airflow_openlineage_config() -> dict[str, Any] | None:
    """The openlineage-python client configuration Airflow's OpenLineage provider uses
    (``[openlineage] config_conn_id``, ``config_path`` or ``transport``), or None when Airflow
    configures none or ``[openlineage] disabled`` is set. Registered with the core, so Domino-job
    events go where Airflow's own task events go without ``OPENLINEAGE__TRANSPORT__*`` env."""
    try:
        from airflow.providers.openlineage.plugins.adapter import (  # type: ignore[import-not-found]
            OpenLineageAdapter,
        )
        from airflow.sdk import conf  # type: ignore[attr-defined]

        if conf.getboolean("openlineage", "disabled", fallback=False):
            return None
        config = OpenLineageAdapter().get_openlineage_config()
    except Exception:  # provider missing or its config unreadable: env/file config still apply
        return None
    return dict(config) if isinstance(config, Mapping) and config.get("transport") else None


def _register() -> None:
    from domino_orchestrate.core.lineage.config import register_client_config

    register_client_config(airflow_openlineage_config)


_register()


def submission_facts(observers: Iterable[Any]) -> dict[str, Any] | None:
    """What the OpenLineage observer learnt at submission (``DominoFacts.to_dict()``), so the
    deferred wait's events carry the same facets as a synchronous one; None without one."""
    for observer in observers:
        facts = getattr(observer, "facts", None)
        if facts is not None and callable(getattr(facts, "to_dict", None)):
            return dict(facts.to_dict())
    return None


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


def lineage_to_dict(info: LineageInfo, facts: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Primitives only (JSON-safe), for trigger kwargs; ``facts`` = ``submission_facts()``."""
    from domino_orchestrate.core.lineage.journal import info_to_dict

    data = info_to_dict(info)
    if facts:
        data["facts"] = dict(facts)
    return data


def lineage_from_dict(data: Mapping[str, Any]) -> LineageInfo:
    """The ``LineageInfo`` ``lineage_to_dict`` wrote (``facts`` is read by the trigger)."""
    from domino_orchestrate.core.lineage.journal import info_from_dict

    return info_from_dict(data)
