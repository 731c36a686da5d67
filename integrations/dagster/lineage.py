"""The Dagster run's own lineage end: its COMPLETE / FAIL / ABORT.

A Dagster run's START goes out with its first Domino job (core ``start_parent_run``); its end is
known only to Dagster, after the last step. Two places send it, whichever sees the end first
(the spool's once-only marker lets only one of them send):

* **in process, no daemon needed**: a run on the in-process executor (``materialize()``,
  ``execute_in_process``, a ``dagster dev`` run with ``in_process_executor``) initializes
  ``DominoResource`` once for all its steps; its teardown after the last step reads how the steps
  ended from the instance and sends the run's end (``finish_in_process_run``).
* **any executor**: ``domino_lineage_sensors()`` returns three run-status sensors (success,
  failure, canceled) that send it from the Dagster daemon. Add them to your ``Definitions``::

      defs = Definitions(assets=[...], resources={...}, sensors=domino_lineage_sensors())

  The sensor sends only where the START's marker is visible, i.e. when the daemon shares the
  lineage spool directory (``DOMINO_ORCHESTRATE_LINEAGE_SPOOL``) with the run workers.

A run that started no Domino job (or ran where lineage is off) emits nothing; each run ends once.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from dagster import (
    DagsterEventType,
    DagsterRunStatus,
    RunStatusSensorContext,
    SkipReason,
    run_status_sensor,
)

from domino_orchestrate.core.lineage import ParentRun, finish_parent_run
from domino_orchestrate.core.lineage.parents import parent_started

__all__ = ["domino_lineage_sensors", "finish_dagster_run", "finish_in_process_run"]

log = logging.getLogger("domino_orchestrate.dagster")

#: How Dagster's in-process executor announces, from the process that then runs every step of the
#: run (with one set of resources), that it starts (``dagster/_core/executor/in_process.py``).
IN_PROCESS_ANNOUNCEMENT = "Executing steps in process"


def _parent(run: Any) -> ParentRun:
    # The parent run id its Domino jobs name (DominoResource.lineage_info).
    return ParentRun(namespace="dagster", name=str(run.job_name), run_id=str(run.run_id),
                     root_namespace="dagster", root_name=str(run.job_name),
                     root_run_id=str(run.root_run_id or run.run_id))


def finish_dagster_run(run: Any, state: str, error: str | None = None) -> bool:
    """Send the terminal event of Dagster ``run`` (a ``DagsterRun``), under the parent run id
    its Domino jobs name (``DominoResource.lineage_info``). Returns whether it was sent."""
    return finish_parent_run(_parent(run), state, orchestrator="dagster", error=error)


def _every_step_runs_here(instance: Any, run_id: str) -> bool:
    """Whether this process runs every step of the run: the in-process executor announced itself
    from this pid. A step worker of the multiprocess (or a container) executor runs one step, and
    its resources' teardown is not the run's end."""
    pid = str(os.getpid())
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ENGINE_EVENT).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None or event.step_key or not (event.message or "").startswith(
                IN_PROCESS_ANNOUNCEMENT):
            continue
        data = event.engine_event_data
        announced = data.metadata.get("pid") if data is not None else None
        if announced is not None and str(announced.value) == pid:
            return True
    return False


def _how_steps_ended(instance: Any, run: Any) -> tuple[str, str | None] | None:
    """(state, error) of an in-process run whose last step is done, as Dagster will report it;
    None when the run is not ending (interrupted, and Dagster will resume it)."""
    current = instance.get_run_by_id(run.run_id) or run
    if current.status in (DagsterRunStatus.CANCELING, DagsterRunStatus.CANCELED):
        return "ABORT", f'Execution of run for "{run.job_name}" was canceled.'
    records = instance.get_records_for_run(run.run_id, of_type={
        DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS,
        DagsterEventType.STEP_FAILURE}).records
    started, succeeded, failed = set(), set(), set()
    interrupted = False
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            started.add(event.step_key)
        elif event.event_type == DagsterEventType.STEP_SUCCESS:
            succeeded.add(event.step_key)
        else:
            failed.add(event.step_key)
            data = event.step_failure_data
            interrupted |= bool(data and str(getattr(data.error_source, "value", "")) ==
                                "INTERRUPT")
    # A step that started and neither succeeded nor failed was cut off: the run fails.
    unfinished = started - succeeded
    if not (failed or unfinished):
        return "COMPLETE", None
    if interrupted and instance.run_will_resume(run.run_id):
        return None
    steps = sorted(str(key) for key in failed | unfinished)
    return "FAIL", f'Execution of run for "{run.job_name}" failed. Steps failed: {steps}.'


def finish_in_process_run(instance: Any, run: Any) -> bool:
    """Send the end of an in-process Dagster ``run`` from the resource's teardown after its last
    step (``DominoResource.teardown_after_execution``), without the daemon: COMPLETE when every
    step that started succeeded, FAIL naming the failed steps, ABORT when the run is being
    canceled. Does nothing for a run on another executor (one step per process: the sensors end
    those), a run without Domino lineage, or a run already ended. Never raises."""
    try:
        if instance is None or run is None or not parent_started(_parent(run)):
            return False
        if not _every_step_runs_here(instance, run.run_id):
            return False
        ended = _how_steps_ended(instance, run)
        if ended is None:
            return False
        state, error = ended
        return finish_dagster_run(run, state, error)
    except Exception as exc:
        log.warning("Lineage end of Dagster run %s not sent: %s: %s",
                    getattr(run, "run_id", "?"), type(exc).__name__, exc)
        return False


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
