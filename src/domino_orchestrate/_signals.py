"""SIGINT, SIGTERM and SIGHUP as one exception, so every way a shell, CI, ``timeout`` or Kubernetes
ends the CLI takes the same path as Ctrl-C: the core sees an interrupt (any ``BaseException`` that
is not an ``Exception``), a ``run`` stops its job and confirms the stop, a follower just lets go.

The first signal raises ``Interrupted`` (a subclass named after the signal, so the core's notice
reads "Interrupted (SIGTERM): stopping Domino job …"); later ones only say that the stop is under
way: breaking off the stop half-way would leave the job running unconfirmed. The exit code is
128 + the signal number, the shell convention (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).

A signal handler's exception can be lost: raised while a finalizer runs (a garbage response's
``closed`` check, say), Python drops it silently and the command would follow its job forever. So
until the command says it handled the interrupt (``handled_exit_code``), the guard looks again
every ``RECHECK_S`` and raises it anew if it is neither propagating nor being handled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["HANDLED", "Interrupted", "SignalGuard", "handled_exit_code"]

HANDLED: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


RECHECK_S = 0.5  # how often a lost interrupt is looked for


class Interrupted(BaseException):
    """A signal asked the command to end."""

    signum: int = signal.SIGINT
    handled = False


_BY_SIGNAL: dict[int, type[Interrupted]] = {
    int(sig): type(sig.name, (Interrupted,), {"signum": int(sig), "__module__": __name__})
    for sig in HANDLED
}


def interrupted(signum: int) -> Interrupted:
    return _BY_SIGNAL.get(signum, Interrupted)()


def handled_exit_code(exc: BaseException) -> int:
    """Mark the interrupt handled (the guard stops raising it again); 128 + the signal number,
    KeyboardInterrupt counting as SIGINT."""
    if isinstance(exc, Interrupted):
        exc.handled = True
        return 128 + exc.signum
    return 128 + int(signal.SIGINT)


def _in_flight(exc: BaseException) -> bool:
    """Whether ``exc`` is propagating or being handled here: it, or an exception raised while
    handling it, is the one ``sys.exc_info`` reports (also inside ``finally`` and ``__exit__``)."""
    seen: set[int] = set()
    current = sys.exc_info()[1]
    while current is not None and id(current) not in seen:
        if current is exc:
            return True
        seen.add(id(current))
        current = current.__context__
    return False


class SignalGuard:
    """Within ``with``, the handled signals raise ``Interrupted`` once in the main thread, and
    again while it is lost (see the module's docstring).

    ``repeat_message`` gives the line written (with ``os.write``: safe inside a signal handler)
    when another signal arrives after the first.
    """

    def __init__(self, repeat_message: Callable[[int], str]) -> None:
        self.repeat_message = repeat_message
        self._pending: Interrupted | None = None
        self._previous: dict[int, Any] = {}
        self._previous_timer: tuple[float, float] | None = None

    @property
    def received(self) -> int | None:
        """The first signal's number, once one arrived."""
        return None if self._pending is None else self._pending.signum

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._pending is None:
            self._pending = interrupted(signum)
            self._recheck_every(RECHECK_S)
            raise self._pending
        with contextlib.suppress(OSError):  # stderr gone: nothing to tell
            os.write(2, (self.repeat_message(signum) + "\n").encode("utf-8", "replace"))

    def _recheck(self, signum: int, frame: FrameType | None) -> None:
        pending = self._pending
        if pending is not None and not pending.handled and not _in_flight(pending):
            raise pending

    def _recheck_every(self, seconds: float) -> None:
        if not hasattr(signal, "setitimer"):  # Windows: no interval timer, no second chance
            return
        self._previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, self._recheck)
        self._previous_timer = signal.setitimer(signal.ITIMER_REAL, seconds, seconds)

    def __enter__(self) -> SignalGuard:
        for sig in HANDLED:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        timer, self._previous_timer = self._previous_timer, None
        if timer is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)  # ours off before SIGALRM's default is back
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
        if timer is not None and timer[0] > 0:  # whoever's timer was running (pytest-timeout's)
            signal.setitimer(signal.ITIMER_REAL, *timer)
