"""Observers: how logging, lineage and orchestrator UIs follow a job without owning the loop.

An observer implements any of ``on_submitted``, ``on_status``, ``on_poll``, ``on_line``,
``on_message``, ``on_fetched``, ``on_notice`` and ``on_finished``. ``on_status`` hears of each new
status, ``on_poll`` of every poll (to check something of its own as the wait goes on).
``on_fetched()`` follows the lines of each stdout fetch, so an observer can batch them into one log
call per poll. ``on_message(message)`` gets each message the job reported from
inside (a Dagster Pipes message on a stdout line, parsed once in ``core/messages.py``; the line
itself also reaches ``on_line``), once per job even across reattaches: an observer with a
``message_ledger`` attribute (a ``MessageLedger``) decides what counts as handled already, else
the process-wide ledger does. ``on_notice(level, message)`` carries what the user must see where
they look (the task log, the flow-run logs, the Dagster event log): a stop and its confirmation,
a log that had to be resynchronised, stdout that could not be fetched. Every notice is also logged
on the ``domino_orchestrate`` logger.
``Observers`` fans a call out to all of them and swallows their errors (logged once each): a
lineage backend or a log handler must never fail or stop the job it watches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from .messages import PROCESS_LEDGER, JobMessage, MessageLedger
from .models import JobHandle, JobSnapshot, LogLine

__all__ = ["LINES_PER_CALL", "JobObserver", "LineBatcher", "LineCallback", "Observers"]

log = logging.getLogger("domino_orchestrate")

LineCallback = Callable[[LogLine], None]


class JobObserver(Protocol):
    """What the clients tell an observer about one job (pass observers to ``run_job``/``wait``).

    Every method is optional: the clients call only those an observer has, and an observer that
    raises is logged and ignored (the job is unaffected). Lineage and the integrations' log
    streaming are observers.
    """

    def on_submitted(self, handle: JobHandle, spec: Any) -> None:
        """The job was started (or reattached: ``handle.attached``) with ``spec``."""

    def on_status(self, snapshot: JobSnapshot) -> None:
        """A poll saw the job in a new status, ``snapshot.status``."""

    def on_poll(self, snapshot: JobSnapshot) -> None:
        """A poll saw the job, changed or not; what this raises that is not an ``Exception``
        (an orchestrator's interrupt) ends the wait as an interrupt does."""

    def on_line(self, line: LogLine) -> None:
        """One new line of output, delivered once, in order."""

    def on_message(self, message: JobMessage) -> None:
        """A structured message the job printed (the in-job Pipes protocol)."""

    def on_fetched(self) -> None:
        """One stdout fetch was delivered (its lines came before)."""

    def on_notice(self, level: int, message: str) -> None:
        """Something the user should read in the orchestrator's log (e.g. a rotated log)."""

    def on_finished(self, snapshot: JobSnapshot | None, error: BaseException | None) -> None:
        """The wait ended: the final snapshot, and the error it raises (``None`` on success)."""


#: A stdout fetch with at most this many lines is logged line by line; a bigger one goes out as
#: one log call per stream, so logging costs grow with polls, not with lines.
LINES_PER_CALL = 20


class LineBatcher:
    """Observer logging a job's lines with few calls: ``emit(stream, text)`` once per line for a
    small fetch, once per stream (``stdout``/``stderr``/``setup``) for a big one, its text a
    header and the lines (the last ``quote`` of them when set: use it where every line is kept
    elsewhere, e.g. Dagster's captured stdout).

    Lines are flushed after each fetch (``on_fetched``) and when the wait ends."""

    def __init__(self, emit: Callable[[str, str], None], per_line: int = LINES_PER_CALL,
                 quote: int | None = None, where: str = "") -> None:
        self.emit, self.per_line, self.quote, self.where = emit, per_line, quote, where
        self._pending: list[LogLine] = []

    def on_line(self, line: LogLine) -> None:
        """Hold the line until its fetch is delivered."""
        self._pending.append(line)

    def on_fetched(self) -> None:
        """Emit the fetch's lines: one by one if few, else one call per stream."""
        pending, self._pending = self._pending, []
        if len(pending) <= self.per_line:
            for line in pending:
                self.emit(line.stream, line.text)
            return
        for stream in ("setup", "stdout", "stderr"):
            texts = [line.text for line in pending if line.stream == stream]
            if not texts:
                continue
            quoted = texts if self.quote is None else texts[-self.quote:]
            head = (f"{len(texts):,} line{'' if len(texts) == 1 else 's'} of Domino "
                    f"{stream}{self.where}")
            head += f"; the last {len(quoted)}:" if len(quoted) < len(texts) else ":"
            self.emit(stream, "\n".join([head, *quoted]))

    def on_finished(self, snapshot: JobSnapshot | None, error: BaseException | None) -> None:
        """Emit whatever is still held."""
        self.on_fetched()


class _LineObserver:
    def __init__(self, callback: LineCallback) -> None:
        self.on_line = callback


class Observers:
    """A set of observers notified together; one failing observer never stops the others."""

    def __init__(self, observers: Iterable[Any] = (), on_line: LineCallback | None = None) -> None:
        self._items = list(observers)
        if on_line is not None:
            self._items.append(_LineObserver(on_line))

    def _call(self, name: str, *args: Any) -> None:
        for item in self._items:
            method = getattr(item, name, None)
            if method is None:
                continue
            try:
                method(*args)
            except Exception:
                log.exception("Observer %s.%s failed; the job is unaffected", type(item).__name__, name)

    def submitted(self, handle: JobHandle, spec: Any) -> None:
        """Tell every observer the job started (``on_submitted``)."""
        self._call("on_submitted", handle, spec)

    def status(self, snapshot: JobSnapshot) -> None:
        """Tell every observer a poll's snapshot with a new status (``on_status``)."""
        self._call("on_status", snapshot)

    def poll(self, snapshot: JobSnapshot) -> None:
        """Tell every observer a poll's snapshot (``on_poll``)."""
        self._call("on_poll", snapshot)

    def line(self, line: LogLine) -> None:
        """Tell every observer one line of output (``on_line``)."""
        self._call("on_line", line)

    @property
    def ledger(self) -> MessageLedger:
        """The ledger of handled messages: the first observer's ``message_ledger``, else the
        process-wide one."""
        for item in self._items:
            found = getattr(item, "message_ledger", None)
            if isinstance(found, MessageLedger):
                return found
        return PROCESS_LEDGER

    def message(self, message: JobMessage) -> None:
        """Hand a message the job reported to every observer's ``on_message``."""
        self._call("on_message", message)

    def fetched(self) -> None:
        """The lines of one stdout fetch were all delivered: observers that batch lines (one log
        call per poll, not per line) flush them in ``on_fetched``."""
        self._call("on_fetched")

    def notice(self, level: int, message: str, *args: Any) -> None:
        """Log ``message % args`` and hand it to every observer's ``on_notice``."""
        text = message % args if args else message
        log.log(level, "%s", text)
        self._call("on_notice", level, text)

    def finished(self, snapshot: JobSnapshot | None, error: BaseException | None) -> None:
        """Tell every observer the wait ended (``on_finished``)."""
        self._call("on_finished", snapshot, error)
