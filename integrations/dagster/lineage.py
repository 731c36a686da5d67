"""The Dagster run's own lineage end: its COMPLETE / FAIL / ABORT.

A Dagster run's START goes out with its first Domino job (core ``start_parent_run``); its end is
known only to Dagster, after the last step. Two places send it, whichever sees the end first
(the spool's once-only marker lets only one of them send):

* **in process, no daemon needed**: on the in-process executor (``materialize()``,
  ``execute_in_process``, a ``dagster dev`` run with ``in_process_executor``) ``DominoResource``
  is set up in the process that also records the run's end; it listens there for Dagster's own
  RUN_SUCCESS / RUN_FAILURE / RUN_CANCELED and sends COMPLETE / FAIL / ABORT with it
  (``end_with_the_run``). A step process of another executor never sees those events.
* **any executor**: ``domino_lineage_sensors()`` returns three run-status sensors (success,
  failure, canceled) that send it from the Dagster daemon. Add them to your ``Definitions``::

      defs = Definitions(assets=[...], resources={...}, sensors=domino_lineage_sensors())

  The sensor sends only where the START's marker is visible, i.e. when the daemon shares the
  lineage spool directory (``DOMINO_ORCHESTRATE_LINEAGE_SPOOL``) with the run workers.

A run that started no Domino job (or ran where lineage is off) emits nothing; each run ends once.
"""

from __future__ import annotations

import logging
from typing import Any

from dagster import (
    DagsterEventType,
    DagsterRunStatus,
    RunStatusSensorContext,
    SkipReason,
    run_status_sensor,
)

from domino_orchestrate.core.lineage import ParentRun, finish_parent_run

__all__ = ["domino_lineage_sensors", "end_with_the_run", "finish_dagster_run"]

log = logging.getLogger("domino_orchestrate.dagster")

#: The run's own end events and the lineage state each sends.
RUN_END_STATES = {
    DagsterEventType.RUN_SUCCESS: "COMPLETE",
    DagsterEventType.RUN_FAILURE: "FAIL",
    DagsterEventType.RUN_CANCELED: "ABORT",
}


def _parent(run: Any) -> ParentRun:
    # The parent run id its Domino jobs name (DominoResource.lineage_info).
    return ParentRun(namespace="dagster", name=str(run.job_name), run_id=str(run.run_id),
                     root_namespace="dagster", root_name=str(run.job_name),
                     root_run_id=str(run.root_run_id or run.run_id))


def finish_dagster_run(run: Any, state: str, error: str | None = None) -> bool:
    """Send the terminal event of Dagster ``run`` (a ``DagsterRun``), under the parent run id
    its Domino jobs name (``DominoResource.lineage_info``). Returns whether it was sent."""
    return finish_parent_run(_parent(run), state, orchestrator="dagster", error=error)


def end_with_the_run(instance: Any, run: Any) -> bool:
    """Send the run's lineage end when this process records the run's own end event (Dagster's
    RUN_SUCCESS / RUN_FAILURE / RUN_CANCELED, with its message), as the in-process executor does
    in the process that set up the run's resources (``DominoResource.setup_for_execution``).
    A step process of the multiprocess or a container executor never records them: the sensors
    end those runs. Returns whether the listener was added; never raises."""
    add_listener = getattr(instance, "add_event_listener", None)
    if add_listener is None or run is None:
        return False

    def on_event(entry: Any) -> None:
        event = entry.dagster_event
        state = RUN_END_STATES.get(event.event_type) if event is not None else None
        if state is not None:
            finish_dagster_run(run, state, None if state == "COMPLETE" else event.message)

    try:
        add_listener(run.run_id, on_event)
    except Exception as exc:
        log.warning("Lineage end of Dagster run %s left to the sensors: %s: %s",
                    run.run_id, type(exc).__name__, exc)
        return False
    return True


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
            return SkipReason(f"run {run.run_id}: no Domino job lineage to end, or it ended "
                              "already (in process)")
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
