"""SIGINT, SIGTERM and SIGHUP as one exception, so every way a shell, CI, ``timeout`` or Kubernetes
ends the CLI takes the same path as Ctrl-C: the core sees an interrupt (any ``BaseException`` that
is not an ``Exception``), a ``run`` stops its job and confirms the stop, a follower just lets go.

The first signal raises ``Interrupted`` (a subclass named after the signal, so the core's notice
reads "Interrupted (SIGTERM): stopping Domino job …"); later ones only say that the stop is under
way: breaking off the stop half-way would leave the job running unconfirmed. The exit code is
128 + the signal number, the shell convention (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP). One that
Python drops (raised inside a finalizer) while the core follows a job is raised again there
(``core.interrupts``).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["HANDLED", "Interrupted", "SignalGuard", "exit_code"]

HANDLED: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Interrupted(BaseException):
    """A signal asked the command to end."""

    signum: int = signal.SIGINT


_BY_SIGNAL: dict[int, type[Interrupted]] = {
    int(sig): type(sig.name, (Interrupted,), {"signum": int(sig), "__module__": __name__})
    for sig in HANDLED
}


def interrupted(signum: int) -> Interrupted:
    return _BY_SIGNAL.get(signum, Interrupted)()


def exit_code(exc: BaseException) -> int:
    """128 + the signal number; KeyboardInterrupt counts as SIGINT."""
    return 128 + (exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT))


class SignalGuard:
    """Within ``with``, the handled signals raise ``Interrupted`` once in the main thread.

    ``repeat_message`` gives the line written (with ``os.write``: safe inside a signal handler)
    when another signal arrives after the first.
    """

    def __init__(self, repeat_message: Callable[[int], str]) -> None:
        self.repeat_message = repeat_message
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
            raise interrupted(signum)
        with contextlib.suppress(OSError):  # stderr gone: nothing to tell
            os.write(2, (self.repeat_message(signum) + "\n").encode("utf-8", "replace"))

    def __enter__(self) -> SignalGuard:
        for sig in HANDLED:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
