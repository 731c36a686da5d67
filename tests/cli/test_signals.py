"""Signals, as CI cancellation, ``timeout``, Kubernetes and a user's Ctrl-C send them.

``run`` owns its job: SIGINT, SIGTERM and SIGHUP stop it, the stop is confirmed and printed, and
the exit code is 128 + the signal. ``logs --follow`` only watches: the same signals end the
watching and never stop the job. Each test asserts on the sandbox's own record of the job.
"""

from __future__ import annotations

import io
import signal
import time

import pytest

from domino_orchestrate._signals import RECHECK_S, Interrupted, SignalGuard, handled_exit_code
from domino_orchestrate.core import DominoClient
from domino_orchestrate.sandbox import SandboxServer

from .conftest import PROJECT, executions_titled, popen_cli, signal_after_first_line, wait_for

pytestmark = pytest.mark.xdist_group("cli-signals")

SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]



@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_run_stops_its_job_on_signal_and_exits_128_plus_signal(
    sandbox: SandboxServer, env: dict[str, str], signum: int
) -> None:
    title = f"sig-run-{signal.Signals(signum).name}"
    proc = popen_cli(env, "run", "--poll-freq", "0.3", "--title", title,
                     "echo started; sleep 60")
    err = signal_after_first_line(proc, "started", signum)
    assert proc.returncode == 128 + signum, err
    [job] = executions_titled(sandbox, title)
    # The CLI said the stop was confirmed before it exited: the sandbox must agree right away.
    assert job.status == "Stopped", (job.status, err)
    assert job.stop_requested
    name = signal.Signals(signum).name
    assert name in err
    assert f"Domino job {job.id} stopped (Stopped)" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM],
                         ids=lambda s: signal.Signals(s).name)
def test_logs_follow_never_stops_the_job_it_watches(
    sandbox: SandboxServer, env: dict[str, str], signum: int
) -> None:
    title = f"sig-follow-{signal.Signals(signum).name}"
    client = DominoClient(sandbox.url, PROJECT, api_key=sandbox.api_key)
    handle = client.start_job("echo watched; sleep 60", title=title)
    try:
        proc = popen_cli(env, "logs", handle.job_id, "--follow", "--poll-freq", "0.3")
        err = signal_after_first_line(proc, "watched", signum)
        assert proc.returncode == 128 + signum, err
        assert "keeps running" in err and "Traceback" not in err
        # A stop request, had one been sent, was sent before the CLI exited.
        [job] = executions_titled(sandbox, title)
        assert job.status == "Running" and not job.stop_requested
    finally:
        client.stop_job(handle.job_id, wait=False)
        wait_for(lambda: executions_titled(sandbox, title)[0].is_completed, what="cleanup stop")


def test_a_second_signal_does_not_cut_the_stop_short(
    sandbox: SandboxServer, env: dict[str, str]
) -> None:
    # The job ignores SIGTERM, so the sandbox needs its kill grace (1 s) to stop it: the second
    # signal lands while the stop is still unconfirmed.
    proc = popen_cli(env, "run", "--poll-freq", "0.3", "--title", "sig-twice",
                     "trap '' TERM; echo started; sleep 60")
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().strip() == "started"
        proc.send_signal(signal.SIGINT)
        while "stopping Domino job" not in (line := proc.stderr.readline()):
            assert line, "the CLI ended without saying it is stopping the job"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "already ending" in err
    [job] = executions_titled(sandbox, "sig-twice")
    assert job.status == "Stopped"
    assert f"Domino job {job.id} stopped (Stopped)" in err


def test_a_closed_terminal_and_its_sighup_stop_the_job(
    sandbox: SandboxServer, env: dict[str, str]
) -> None:
    # The SSH session drops: the terminal is gone (every write fails) and SIGHUP follows.
    import os
    import pty
    import subprocess

    from .conftest import CLI

    master, slave = pty.openpty()
    proc = subprocess.Popen([*CLI, "run", "--poll-freq", "0.3", "--title", "sig-hangup",
                             "echo started; sleep 60"],
                            stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    try:
        seen = b""
        while b"started" not in seen:
            chunk = os.read(master, 4096)
            assert chunk, "the terminal closed before the job's first line"
            seen += chunk
        os.close(master)
        master = -1
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(timeout=30) == 128 + signal.SIGHUP
    finally:
        if master >= 0:
            os.close(master)
        if proc.poll() is None:
            proc.kill()
    [job] = executions_titled(sandbox, "sig-hangup")
    assert job.status == "Stopped" and job.stop_requested


class _LosesTheInterrupt(io.IOBase):
    """Its finalizer evaluates ``closed``, where a signal arrives: Python drops what the handler
    raises there, silently, as it does for a garbage urllib3 response in the CLI's follow loop."""

    @property
    def closed(self) -> bool:
        signal.raise_signal(signal.SIGTERM)
        return True


def _sleep_until_interrupted(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.02)


def test_an_interrupt_lost_in_a_finalizer_is_raised_again() -> None:
    with pytest.raises(Interrupted) as raised, SignalGuard(str) as guard:
        _LosesTheInterrupt()
        assert guard.received == signal.SIGTERM  # the handler ran, and what it raised is gone
        _sleep_until_interrupted(5 * RECHECK_S)
    assert handled_exit_code(raised.value) == 128 + signal.SIGTERM


def test_an_interrupt_being_handled_or_handled_is_not_raised_again() -> None:
    with SignalGuard(str):
        try:
            signal.raise_signal(signal.SIGTERM)
        except Interrupted as exc:
            try:  # a stop under way, failing and retrying: the interrupt is still being handled
                raise ConnectionError("the stop's first request")
            except ConnectionError:
                _sleep_until_interrupted(3 * RECHECK_S)
            assert handled_exit_code(exc) == 128 + signal.SIGTERM
        _sleep_until_interrupted(3 * RECHECK_S)  # handled: left alone
