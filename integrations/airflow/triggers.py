"""``DominoJobTrigger``: follow a Domino job from the triggerer, streaming its stdout.

It runs the core ``AsyncDominoClient`` wait (status polling, stdout streaming, retries) and yields
exactly one ``TriggerEvent``::

    {"status": "success" | "failed" | "timeout" | "error",
     "snapshot": JobSnapshot.summary() or None, "message": str, "tail": [last stdout lines]}

Cancellation policy (documented choice): when the trigger is *cancelled* — the triggerer
restarts, shuts down or hands the trigger to another triggerer — the Domino job is left running;
the trigger resumes following it wherever it is re-created, without repeating a line already in
the task log (it records how many lines it logged in the XCom ``domino_log_lines`` right after
each batch of lines, and skips that many when re-created, saying so; only a triggerer killed
between a batch and its record repeats that batch). The job is
stopped only when a user kills the task (``on_kill`` below, called by Airflow >= 3.3 on
mark-failed/clear/mark-success), when the operator's execution timeout expires (``max_poll_time``
inside the trigger, and the operator's ``resume_execution`` for the deferral timeout), or by the
operator's ``on_kill``. A sensor's trigger (``owns_job=False``) never stops the job it watches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

__all__ = ["DominoJobTrigger"]

#: XCom (of the deferred task instance) holding how many log lines the trigger has logged.
LOG_LINES_KEY = "domino_log_lines"
#: Airflow gives ``on_kill`` ``[triggerer] on_kill_timeout`` (30 s) before abandoning it.
ON_KILL_BUDGET = 25.0


class DominoJobTrigger(BaseTrigger):
    """Wait for a Domino job (v4 job or v1 run) to end.

    :param conn_id: the ``domino`` connection id.
    :param handle: ``JobHandle.to_dict()`` of the job to follow.
    :param poll_options: ``PollOptions.to_dict()``.
    :param lineage: ``lineage_to_dict(LineageInfo)`` or None; drives lineage observers.
    :param project: ``owner/name`` overriding the connection's project.
    :param owns_job: False for a watcher (the sensor): a kill never stops the job.

    The timeout is ``poll_options["max_poll_time"]``; ``poll_options["timeout_name"]`` names the
    setting it came from (``execution_timeout``, ``max_poll_time``, a sensor's ``timeout``) in the
    message and in the event's ``knob``.
    """

    def __init__(
        self,
        conn_id: str,
        handle: dict[str, Any],
        poll_options: dict[str, Any] | None = None,
        lineage: dict[str, Any] | None = None,
        project: str | None = None,
        owns_job: bool = True,
    ) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.handle = dict(handle)
        self.poll_options = dict(poll_options or {})
        self.lineage = dict(lineage) if lineage else None
        self.project = project
        self.owns_job = owns_job

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The trigger's class path and its keyword arguments, primitives only (Airflow stores them)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "handle": dict(self.handle),
                "poll_options": dict(self.poll_options),
                "lineage": dict(self.lineage) if self.lineage else None,
                "project": self.project,
                "owns_job": self.owns_job,
            },
        )

    async def _client(self) -> Any:
        """The triggerer process's shared client for this connection and configuration
        (``shared_async_client``): hundreds of triggers share its connections, and the first
        one's setup (imports, CA certificates) runs in a thread, not in the triggerer's loop.
        Never closed by a trigger."""
        from domino_orchestrate.core.client import shared_async_client

        from .hooks import DominoHook

        hook = DominoHook(self.conn_id, project=self.project or self.handle.get("project"))
        config = await _single_flight(("config", hook.domino_conn_id, hook.project),
                                      hook.aget_config)
        return (shared_async_client(config, create=False)
                or await _single_flight(("client", config),
                                        lambda: asyncio.to_thread(shared_async_client, config)))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Follow the job in the triggerer, streaming its output to the task log; yield one event.

        The event's ``status`` is ``success``, ``failed``, ``timeout`` or ``error``. A timeout stops the
        job when the trigger owns it (an operator's), never for a sensor.
        """
        await _load_off_the_loop()
        from domino_orchestrate.core import (
            DominoError,
            JobFailedError,
            JobHandle,
            PollOptions,
            PollTimeoutError,
        )
        from domino_orchestrate.core.lineage import lineage_observers
        from domino_orchestrate.core.messages import MessageCollector, MessageLedger

        from ._lineage import lineage_from_dict

        handle = JobHandle.from_dict(self.handle)
        options = PollOptions.from_dict(self.poll_options)
        if not self.owns_job:
            options = replace(options, stop_on_timeout=False)
        event: dict[str, Any]
        logged = _LineLog(self, await self._lines_logged_before())
        client = await self._client()
        recorder = asyncio.create_task(logged.record_periodically())
        # Every message of the job, for the event (the task pushes it as XComs), even after a
        # triggerer restart; its line in the task log only once (the line record above).
        messages = MessageCollector(MessageLedger())
        try:
            observers = [
                messages,
                logged,
                # Same facets as a synchronous wait: the submission facts came along.
                *(lineage_observers(lineage_from_dict(self.lineage), client.config,
                                    job_id=handle.job_id, facts=self.lineage.get("facts"))
                  if self.lineage else []),
                _TaskLogNotices(self.log),
            ]
            try:
                # A cancelled trigger (a triggerer restart) must leave the job running; a user's
                # kill reaches ``on_kill`` instead. See the module docstring.
                snap = await client.wait(
                    handle, replace(options, stop_on_interrupt=False), observers=observers,
                )
            except JobFailedError as exc:
                event = {"status": "failed", "snapshot": exc.snapshot.summary(),
                         "message": str(exc), "tail": list(exc.stdout_tail)}
            except PollTimeoutError as exc:  # the message names the knob (timeout_name)
                event = {"status": "timeout", "snapshot": None, "message": str(exc),
                         "knob": getattr(exc, "knob", "max_poll_time"),
                         "tail": list(exc.stdout_tail)}
            except DominoError as exc:
                event = {"status": "error", "snapshot": None,
                         "message": f"{type(exc).__name__}: {exc}", "tail": []}
            else:
                event = {"status": "success", "snapshot": snap.summary(),
                         "message": f"Domino {handle.kind} {handle.job_id} succeeded", "tail": []}
        finally:
            recorder.cancel()
            await logged.record_now()  # also when cancelled: the next trigger resumes after it
        event["messages"] = messages.report()
        yield TriggerEvent(event)

    async def on_kill(self) -> None:
        """A user killed the deferred task: stop the Domino job (bounded wait), unless this
        trigger only watches it (a sensor)."""
        from domino_orchestrate.core import JobHandle, PollOptions

        handle = JobHandle.from_dict(self.handle)
        if not self.owns_job:
            self.log.info("Sensor killed: Domino %s %s is left running (a sensor only watches)",
                          handle.kind, handle.job_id)
            return
        options = PollOptions.from_dict(self.poll_options)
        budget = min(options.stop_timeout, ON_KILL_BUDGET)
        client = await self._client()
        try:
            self.log.warning("Task killed: stopping Domino %s %s", handle.kind, handle.job_id)
            final = await asyncio.wait_for(
                client.stop_job(handle, wait=True, timeout=budget), timeout=budget + 2,
            )
            self.log.warning("Domino %s %s stopped (%s)", handle.kind, handle.job_id,
                             final.raw_status if final else "?")
        except Exception as exc:
            self.log.error("Could not confirm the stop of Domino %s %s: %s", handle.kind,
                           handle.job_id, exc)

    # --- the log-line record (see the module docstring) ----------------------------------------
    def _xcom_scope(self) -> dict[str, Any] | None:
        ti = getattr(self, "task_instance", None)
        if ti is None:
            return None
        map_index = getattr(ti, "map_index", -1)
        return {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id,
                "map_index": -1 if map_index is None else map_index}

    async def _lines_logged_before(self) -> int:
        scope = self._xcom_scope()
        if scope is None:
            return 0
        try:
            from airflow.sdk.execution_time.xcom import XCom

            value = await asyncio.to_thread(lambda: XCom.get_one(key=LOG_LINES_KEY, **scope))
            return int(value or 0)
        except Exception as exc:  # no record: at worst a restart repeats lines
            self.log.warning("Could not read the log-line record (a triggerer restart may repeat "
                             "lines): %s", exc)
            return 0

    async def _record_lines_logged(self, count: int) -> None:
        scope = self._xcom_scope()
        if scope is None:
            return
        try:
            from airflow.sdk.execution_time.xcom import XCom

            await asyncio.to_thread(lambda: XCom.set(key=LOG_LINES_KEY, value=count, **scope))
        except Exception as exc:
            self.log.warning("Could not record the log-line count (a triggerer restart may "
                             "repeat lines): %s", exc)


_PENDING: dict[tuple[Any, ...], asyncio.Future[Any]] = {}


async def _single_flight(key: tuple[Any, ...], work: Callable[[], Awaitable[Any]]) -> Any:
    """``work()``'s result; triggers asking while the same work is in flight share it.

    A triggerer resuming 1,000 deferred tasks starts their triggers one loop pass apart, so the
    first one's connection lookup, client set-up or imports (in a thread) are still running
    when the others ask: 1,000 lookups or thread hand-offs made the loop late (Airflow warns
    "async thread was blocked"). A trigger starting later does the work afresh (a changed
    connection is seen)."""
    flight = (id(asyncio.get_running_loop()), *key)
    pending = _PENDING.get(flight)
    if pending is None:
        # A task of its own: a caller cancelled meanwhile does not cancel the others' work.
        pending = _PENDING[flight] = asyncio.ensure_future(work())
        pending.add_done_callback(lambda _: _PENDING.pop(flight, None))
    return await asyncio.shield(pending)


_LOADED = False


async def _load_off_the_loop() -> None:
    """Import what a trigger uses, once per process, in a thread: a first import inside the
    triggerer's event loop stalls every other trigger (Airflow warns "async thread was
    blocked")."""
    global _LOADED
    if not _LOADED:
        await _single_flight(("imports",), lambda: asyncio.to_thread(_load))
        _LOADED = True


def _load() -> None:
    import importlib

    for name in ("domino_orchestrate.core.lineage", "domino_orchestrate.core.messages",
                 "domino_orchestrate.core.client", "domino_orchestrate.airflow._lineage",
                 "domino_orchestrate.airflow.hooks"):
        importlib.import_module(name)


class _LineLog:
    """Logs the job's lines into the task log, skipping those a previous trigger already logged;
    one log call per fetch when it brings many lines (the core's ``LineBatcher``), and a line
    for each message the job reported."""

    def __init__(self, trigger: DominoJobTrigger, already: int) -> None:
        from domino_orchestrate.core.observe import LineBatcher

        self.trigger = trigger
        self.already = already
        self.seen = 0
        self.recorded = already
        self.pending = asyncio.Event()
        self.batch = LineBatcher(self._emit)
        if already:
            trigger.log.info("Log resynchronised: the triggerer was restarted, the first %d lines "
                             "of output are already above and are not repeated", already)

    def _emit(self, stream: str, text: str) -> None:
        (self.trigger.log.warning if stream == "stderr" else self.trigger.log.info)("%s", text)

    def on_line(self, line: Any) -> None:
        self.seen += 1
        if self.seen <= self.already:
            return
        self.batch.on_line(line)

    def on_message(self, message: Any) -> None:
        from domino_orchestrate.core.messages import describe

        line = describe(message)
        if line and self.seen > self.already:  # its line is new: so is the message
            self.batch.on_fetched()  # keep the order: the lines before it, then it
            self.trigger.log.info("%s", line)

    def on_fetched(self) -> None:
        self.batch.on_fetched()
        self.pending.set()  # a batch's lines arrive in one go: one record follows it

    def on_finished(self, snapshot: Any, error: Any) -> None:
        self.on_fetched()

    async def record_periodically(self) -> None:
        while True:
            await self.pending.wait()
            self.pending.clear()
            await self.record_now()

    async def record_now(self) -> None:
        if self.seen > self.recorded:
            count = self.seen
            await self.trigger._record_lines_logged(count)
            self.recorded = count


class _TaskLogNotices:
    """Core notices (log resynchronised, stdout unavailable...) into the task's trigger log."""

    def __init__(self, log: Any) -> None:
        self.log = log

    def on_notice(self, level: int, message: str) -> None:
        self.log.log(level if isinstance(level, int) else logging.INFO, "%s", message)
