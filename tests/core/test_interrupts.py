"""Interrupts Python drops: a signal handler's exception raised inside a finalizer is discarded
silently, so a sync wait whose orchestrator killed it kept following its job to the end (the CLI's
``logs --follow`` hung on SIGINT about once in 45 tries, in a spent urllib3 response's finalizer).
The sync driver keeps what the handlers raise and raises it again at its next step."""

from __future__ import annotations

import io
import signal
import threading
from types import FrameType
from typing import Any

import pytest

from domino_orchestrate.core import DominoClient, JobStatus, LogLine, PollOptions
from domino_orchestrate.core.interrupts import KeptInterrupts
from domino_orchestrate.sandbox import SandboxServer

from .conftest import PROJECT


class OrchestratorKill(BaseException):
    """What an orchestrator's SIGTERM handler raises (Dagster's, the CLI's, a worker's)."""


def _kill(signum: int, frame: FrameType | None) -> None:
    raise OrchestratorKill


class _LosesTheInterrupt(io.IOBase):
    """Its finalizer evaluates ``closed``, where the signal arrives: what the handler raises there
    is gone, as in a spent urllib3 response."""

    @property
    def closed(self) -> bool:
        signal.raise_signal(signal.SIGTERM)
        return True


def test_a_kill_lost_in_a_finalizer_still_ends_the_wait_and_stops_the_job(
    sandbox: SandboxServer,
) -> None:
    client = DominoClient(sandbox.url, PROJECT, api_key=sandbox.api_key)
    handle = client.start_job("echo first; sleep 60", title="kill-lost")
    seen: list[str] = []

    def on_line(line: LogLine) -> None:
        seen.append(line.text)
        if line.text == "first":
            _LosesTheInterrupt()  # dropped at once: the kill is raised, and lost, right here

    signal.signal(signal.SIGTERM, _kill)  # the root conftest gives the worker its own back
    with pytest.raises(OrchestratorKill):
        client.wait(handle, PollOptions(poll_freq=0.2, max_poll_time=15), on_line=on_line)
    assert "first" in seen
    assert client.get_job(handle).status is JobStatus.STOPPED


def test_handlers_are_given_back_and_a_kill_that_propagates_is_not_raised_twice() -> None:
    signal.signal(signal.SIGTERM, _kill)
    with KeptInterrupts() as interrupts:
        assert signal.getsignal(signal.SIGTERM) is not _kill  # wrapped while the flow runs
        try:
            signal.raise_signal(signal.SIGTERM)
        except OrchestratorKill:
            interrupts.check()  # being handled: left alone
        else:
            pytest.fail("the handler's exception did not propagate")
        assert interrupts.raised is not None
    assert signal.getsignal(signal.SIGTERM) is _kill


def test_outside_the_main_thread_nothing_is_wrapped() -> None:
    signal.signal(signal.SIGTERM, _kill)
    seen: list[Any] = []

    def worker() -> None:
        with KeptInterrupts():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [_kill]
