"""The OpenLineage observer: turns a Domino job's life (core observer calls) into RunEvents.

START on ``on_submitted``, RUNNING the first time Domino reports ``Running``, and exactly one of
COMPLETE / FAIL / ABORT on ``on_finished`` (see ``final_state``). Keeps the last stdout lines for
the ``errorMessage`` facet. Building is delegated to ``events.py`` and sending to an emitter
(``transports.Emitter``); this module decides only *which* event and *when*.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from openlineage.client.event_v2 import RunEvent, RunState

from ..errors import PollTimeoutError, StopNotConfirmedError
from ..status import JobStatus
from .events import STATE_BY_STATUS, DominoFacts, LineageRun, build_event
from .reported import Reported

__all__ = ["OpenLineageObserver", "final_state"]

log = logging.getLogger("domino_orchestrate.lineage")

TAIL_LINES = 20


def final_state(
    snapshot: Any, error: BaseException | None, tail: list[str] | None = None
) -> tuple[RunState, tuple[str, str | None] | None]:
    """The terminal OpenLineage state and optional (message, stack) for how a wait ended.

    Succeeded -> COMPLETE; Failed/Error -> FAIL; Stopped -> ABORT. Without a terminal snapshot:
    a timeout, an unconfirmed stop or an interrupt (any BaseException that is not an Exception)
    -> ABORT; any other error (lost contact with Domino) -> FAIL.
    """
    stack = "\n".join(tail) if tail else None
    status = getattr(snapshot, "status", None)
    if isinstance(status, JobStatus) and status.is_terminal:
        state = STATE_BY_STATUS[status]
        if state is RunState.COMPLETE:
            return state, None
        job_id = getattr(snapshot, "job_id", "?")
        message = f"Domino job {job_id} ended with status {snapshot.raw_status}"
        reason = getattr(snapshot, "failure_message", None)
        if reason:
            message += f": {reason}"
        elif state is RunState.ABORT and error is not None:
            message += f" ({type(error).__name__})"
        return state, (message, stack)
    if error is None:
        return RunState.ABORT, ("The wait ended without a final Domino status", stack)
    if isinstance(error, (PollTimeoutError, StopNotConfirmedError)) or not isinstance(
        error, Exception
    ):
        return RunState.ABORT, (f"{type(error).__name__}: {error}".rstrip(": "), stack)
    return RunState.FAIL, (f"{type(error).__name__}: {error}".rstrip(": "), stack)


class OpenLineageObserver:
    """Core observer for one Domino job run. Never raises (the emitter swallows failures)."""

    def __init__(self, run: LineageRun, emit: Callable[[RunEvent], None],
                 flush: Callable[[], None] | None = None, tail_lines: int = TAIL_LINES,
                 settle: Callable[[], Any] | None = None,
                 journal_dir: Path | None = None) -> None:
        self.run = run
        #: Where the job journal and parent markers live (``journal.py``); None: neither.
        self.journal_dir = journal_dir
        self._emit = emit
        self._flush = flush
        self._settle = settle
        self.tail: deque[str] = deque(maxlen=tail_lines)
        self.facts = DominoFacts()
        self.emitted: list[RunState] = []
        #: Datasets the job reported about itself (``reported.py``), added to later events.
        self.reported = Reported()
        self._running_sent = False
        self._finished = False

    def _send(self, state: RunState, *, when: datetime | None = None,
              error: tuple[str, str | None] | None = None,
              log_tail: list[str] | None = None) -> None:
        run = self.run
        if self.reported.inputs or self.reported.outputs:
            info = run.info
            info = replace(info, inputs=_union(info.inputs, self.reported.inputs),
                           outputs=_union(info.outputs, self.reported.outputs))
            run = replace(run, info=info)
        event = build_event(run, state, self.facts, event_time=when, error=error,
                            log_tail=log_tail)
        self.emitted.append(state)
        self._emit(event)

    # --- core observer protocol ---
    def on_submitted(self, handle: Any, spec: Any) -> None:
        """Emit START with the submission's facts (not again on a reattach)."""
        self.facts = DominoFacts.from_submission(handle, spec)
        info = self.run.info
        if self.journal_dir is not None:
            from .journal import record_job

            # A wait in another process ends this same run, with these facts.
            record_job(self.journal_dir, str(handle.job_id), info, self.run.namespace, self.facts)
            if info.parent is not None and info.orchestrator != "airflow":
                from .parents import start_parent_run

                # Once per parent run, before its first job's START (Airflow's provider sends
                # its own DAG-run and task events).
                start_parent_run(info.parent, orchestrator=info.orchestrator,
                                 with_root=info.orchestrator == "prefect")
        if getattr(handle, "attached", False):
            # A retry (or a resumed deferral) reattached to the job an earlier try started:
            # that try sent START for this same lineage run.
            return
        self._send(RunState.START)

    def on_status(self, snapshot: Any) -> None:
        """Emit RUNNING the first time a poll sees the job running."""
        self.facts = DominoFacts.from_snapshot(snapshot, self.facts)
        if snapshot.status is JobStatus.RUNNING and not self._running_sent and not self._finished:
            self._running_sent = True
            self._send(RunState.RUNNING, when=snapshot.started_at)

    def on_line(self, line: Any) -> None:
        """Keep the output's tail for the final event's ``log`` facet."""
        if getattr(line, "stream", "stdout") != "setup":
            self.tail.append(str(getattr(line, "text", line)))

    def on_message(self, message: Any) -> None:
        """A job's own report: its datasets join the run's inputs/outputs from now on."""
        self.reported.add(message)

    def on_finished(self, snapshot: Any, error: BaseException | None) -> None:
        """Emit COMPLETE, FAIL or ABORT with the final facts and the output's tail."""
        if self._finished:
            return
        self._finished = True
        stopped = getattr(error, "snapshot", None)  # a timed-out job that was stopped
        self.facts = DominoFacts.from_snapshot(stopped or snapshot, self.facts)
        tail = list(self.tail) or list(getattr(error, "stdout_tail", None) or [])
        state, detail = final_state(snapshot, error, tail)
        self._send(state, when=self.facts.completed_at, error=detail, log_tail=tail)
        try:
            if self._flush is not None:
                self._flush()
            if self._settle is not None:
                self._settle()  # bounded: spooled events go out before the task returns
        except Exception as exc:  # pragma: no cover - both already isolate failures
            log.warning("Lineage flush failed: %s", exc)


def _union(first: Iterable[Any], more: Iterable[Any]) -> tuple[Any, ...]:
    out = list(first)
    out.extend(d for d in more if d not in out)
    return tuple(out)
