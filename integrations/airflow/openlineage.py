"""Airflow OpenLineage support for the Domino operator: ``DominoOpenLineageMixin``.

The Airflow OpenLineage provider calls ``get_openlineage_facets_on_start/complete/failure`` on
operators that define them and merges the returned ``OperatorLineage`` into its own task events.
The mixin reads the operator's attributes (all optional, read with ``getattr``):
``input_datasets``/``output_datasets`` (``"namespace:name"`` or URI strings, or ``Dataset``s) and
the Assets in ``inlets``/``outlets``,
``job_id``/``domino_job_id``, ``job_url``/``domino_job_url``, ``project``, ``hardware_tier``
(or ``hardware_tier_name``/``_id``, ``tier``), ``_final_snapshot``/``_domino_snapshot`` and
``_domino_lineage`` (the task's ``LineageInfo``, for its tags).

Import-cheap on purpose (DAG files import the operator): only ``typing`` at the top; the provider,
openlineage and our event builders are imported inside the methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

__all__ = ["DominoOpenLineageMixin"]


def _first(obj: Any, *names: str) -> Any:
    """The first attribute of ``obj`` among ``names`` that is set (not None/empty)."""
    for name in names:
        try:
            value = getattr(obj, name, None)
        except Exception:  # a property that fails before execute
            value = None
        if value:
            return value
    return None


class DominoOpenLineageMixin:
    """Adds OpenLineage facets (Domino job id/URL tags, jobType, processing engine, datasets)."""

    def _domino_operator_lineage(self, final: bool) -> OperatorLineage:
        from airflow.providers.openlineage.extractors import OperatorLineage

        from domino_orchestrate.core.lineage import LineageInfo
        from domino_orchestrate.core.lineage.events import (
            DominoFacts,
            LineageRun,
            job_facets,
            run_facets,
        )
        from domino_orchestrate.core.lineage.observer import final_state

        from ._lineage import declared_datasets

        inputs, outputs = declared_datasets(self)
        snapshot = _first(self, "_final_snapshot", "_domino_snapshot") if final else None
        facts = DominoFacts(
            job_id=_first(self, "job_id", "domino_job_id"),
            url=_first(self, "job_url", "domino_job_url"),
            hardware_tier=_first(self, "hardware_tier", "hardware_tier_name", "hardware_tier_id",
                                 "tier"),
        )
        facts = DominoFacts.from_snapshot(snapshot, facts)
        known = getattr(self, "_domino_lineage", None)
        info = LineageInfo(
            orchestrator="airflow",
            job_name=str(getattr(known, "job_name", None) or getattr(self, "task_id", None)
                         or type(self).__name__),
            run_key=(),
            inputs=inputs,
            outputs=outputs,
            tags=dict(getattr(known, "tags", None) or {}),
        )
        # The provider owns the run id, parent and nominal time; we add the Domino facts.
        project = _first(self, "project")
        if project is None:
            project = getattr(getattr(self, "_domino_handle", None), "project", None)
        run = LineageRun(info=info, namespace="", run_id="", project=project)
        error = None
        status = getattr(snapshot, "status", None)
        if final and snapshot is not None and status is not None and not status.is_success:
            _, error = final_state(snapshot, None)
        return OperatorLineage(
            inputs=_ol_datasets(inputs, input=True),
            outputs=_ol_datasets(outputs, input=False),
            run_facets=run_facets(run, facts, error),
            job_facets=job_facets(),
        )

    def get_openlineage_facets_on_start(self) -> OperatorLineage:
        """Lineage Airflow's OpenLineage listener reports when the task starts."""
        return self._domino_operator_lineage(final=False)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """Lineage reported when the task succeeds, with the Domino job's final facts."""
        return self._domino_operator_lineage(final=True)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage:
        """Lineage reported when the task fails, with the Domino job's final facts."""
        return self._domino_operator_lineage(final=True)


def _ol_datasets(datasets: Any, *, input: bool) -> list[Any]:
    from openlineage.client.event_v2 import InputDataset, OutputDataset

    cls = InputDataset if input else OutputDataset
    return [cls(namespace=d.namespace, name=d.name) for d in datasets]
