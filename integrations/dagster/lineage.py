"""The Dagster run's own lineage end: sensors that send its COMPLETE / FAIL / ABORT.

A Dagster run's START goes out with its first Domino job (core ``start_parent_run``); its end is
known only to Dagster, after the last step. ``domino_lineage_sensors()`` returns three run-status
sensors (success, failure, canceled) that send the run's terminal OpenLineage event, so the
``parent`` facet of every Domino job's events names a run that begins *and* ends. Add them to
your ``Definitions`` (they run in the Dagster daemon, as all sensors do)::

    defs = Definitions(assets=[...], resources={...}, sensors=domino_lineage_sensors())

A run that started no Domino job (or ran where lineage is off) emits nothing; each run ends once,
however often a sensor fires. ``in-process`` runs without a daemon (``materialize()`` in a
script) have START only, as Dagster gives them no end hook.
"""

from __future__ import annotations

from typing import Any

from dagster import DagsterRunStatus, RunStatusSensorContext, SkipReason, run_status_sensor

from domino_orchestrate.core.lineage import ParentRun, finish_parent_run

__all__ = ["domino_lineage_sensors", "finish_dagster_run"]


def finish_dagster_run(run: Any, state: str, error: str | None = None) -> bool:
    """Send the terminal event of Dagster ``run`` (a ``DagsterRun``), under the parent run id
    its Domino jobs name (``DominoResource.lineage_info``). Returns whether it was sent."""
    parent = ParentRun(namespace="dagster", name=str(run.job_name), run_id=str(run.run_id),
                       root_namespace="dagster", root_name=str(run.job_name),
                       root_run_id=str(run.root_run_id or run.run_id))
    return finish_parent_run(parent, state, orchestrator="dagster", error=error)


def _sensor(status: Any, state: str, minimum_interval_seconds: int) -> Any:
    @run_status_sensor(run_status=status, name=f"domino_lineage_run_{status.value.lower()}",
                       minimum_interval_seconds=minimum_interval_seconds,
                       description=f"OpenLineage {state} of Dagster runs that ran Domino jobs.")
    def lineage_end(context: RunStatusSensorContext) -> SkipReason | None:
        run = context.dagster_run
        message = None
        if state != "COMPLETE" and context.dagster_event is not None:
            message = getattr(context.dagster_event, "message", None)
        if not finish_dagster_run(run, state, message):
            return SkipReason(f"run {run.run_id}: no Domino job lineage to end")
        return None

    return lineage_end


def domino_lineage_sensors(minimum_interval_seconds: int = 30) -> list[Any]:
    """Run-status sensors (success → COMPLETE, failure → FAIL, canceled → ABORT) that end the
    Dagster run's lineage run; see the module docstring."""
    return [
        _sensor(DagsterRunStatus.SUCCESS, "COMPLETE", minimum_interval_seconds),
        _sensor(DagsterRunStatus.FAILURE, "FAIL", minimum_interval_seconds),
        _sensor(DagsterRunStatus.CANCELED, "ABORT", minimum_interval_seconds),
    ]
