"""Interrupts Python drops, raised again.

An orchestrator ends a task with a signal whose Python handler raises (Dagster's
``DagsterExecutionInterruptedError``, a CLI's ``Interrupted``, ``KeyboardInterrupt``). If the
signal lands while a finalizer runs (a spent HTTP response's ``closed`` check, say), Python discards
what the handler raised, silently: the wait would follow its job to the end and never stop it.

``KeptInterrupts`` wraps the main thread's Python handlers of SIGINT, SIGTERM and SIGHUP while the
sync client drives a flow, remembers what they raise, and ``check`` raises it again unless it is
propagating or being handled (``in_flight``). Standard library only: the CLI imports it too.
"""

from __future__ import annotations

import functools
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["KeptInterrupts", "in_flight"]

_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                 if hasattr(signal, name))


def in_flight(exc: BaseException) -> bool:
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


class KeptInterrupts:
    """Within ``with`` (in the main thread; elsewhere no signal handler runs), what the Python
    handlers of SIGINT, SIGTERM and SIGHUP raise is kept until ``check`` finds it lost."""

    def __init__(self) -> None:
        self.raised: BaseException | None = None
        self._wrapped: dict[int, tuple[Any, Callable[..., None]]] = {}

    def _call(self, handler: Callable[[int, FrameType | None], Any], signum: int,
              frame: FrameType | None) -> None:
        try:
            handler(signum, frame)
        except BaseException as exc:
            self.raised = exc
            raise

    def check(self) -> None:
        """Raise the interrupt a handler raised if it was lost on the way."""
        if self.raised is not None and not in_flight(self.raised):
            raise self.raised

    def __enter__(self) -> KeptInterrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                handler = signal.getsignal(sig)
                if callable(handler):
                    wrapper = functools.partial(self._call, handler)
                    signal.signal(sig, wrapper)
                    self._wrapped[sig] = (handler, wrapper)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, (handler, wrapper) in self._wrapped.items():
            if signal.getsignal(sig) is wrapper:  # not replaced meanwhile by whoever runs us
                signal.signal(sig, handler)
        self._wrapped.clear()
