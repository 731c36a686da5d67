"""The ``domino-orchestrate`` CLI as a user runs it: a real subprocess against the sandbox.

Signals, terminal safety, exit codes and connection options: ``tests/cli/``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from domino_orchestrate.sandbox import SandboxServer

PROJECT = "cli/demo"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(projects={PROJECT: None}) as srv:
        yield srv


def cli(sandbox: SandboxServer, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOMINO_API_HOST": sandbox.url, "DOMINO_USER_API_KEY": sandbox.api_key,
           "DOMINO_PROJECT": PROJECT}
    return subprocess.run(
        [sys.executable, "-m", "domino_orchestrate", *args], capture_output=True, text=True,
        env=env, timeout=60, **kwargs,  # type: ignore[call-overload]
    )


def test_run_streams_stdout_and_exits_zero_on_success(sandbox: SandboxServer) -> None:
    done = cli(sandbox, "run", "--poll-freq", "0.5", "--title", "cli-ok", "echo one; echo two >&2; echo three")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["one", "three"]
    assert "two" in done.stderr and "Succeeded" in done.stderr
    assert sandbox.api_key not in done.stdout + done.stderr


@pytest.mark.parametrize(("command", "code"), [("exit 4", 1), ("/no/such/binary", 1)])
def test_run_exit_code_is_nonzero_unless_succeeded(sandbox: SandboxServer, command: str, code: int) -> None:
    done = cli(sandbox, "run", "--poll-freq", "0.5", command)
    assert done.returncode == code
    assert "ended" in done.stderr


def test_v1_run_and_status_and_logs(sandbox: SandboxServer) -> None:
    done = cli(sandbox, "run", "--run", "--direct", "--poll-freq", "0.5", "echo via-v1")
    assert done.returncode == 0 and done.stdout.strip() == "via-v1"
    job_id = next(w for w in done.stderr.split() if len(w) == 24)
    status = cli(sandbox, "status", job_id, "--json")
    assert '"status": "Succeeded"' in status.stdout
    logs = cli(sandbox, "logs", job_id)
    assert logs.stdout.strip() == "via-v1"


def test_bad_configuration_is_exit_2_with_a_clear_message(sandbox: SandboxServer) -> None:
    done = cli(sandbox, "run", "--project", "not-a-project", "echo x")
    assert done.returncode == 2 and "owner/name" in done.stderr


def test_stop_stops_the_job_and_prints_its_final_status(sandbox: SandboxServer) -> None:
    from domino_orchestrate.core import DominoClient

    client = DominoClient(sandbox.url, PROJECT, api_key=sandbox.api_key)
    handle = client.start_job("sleep 60", title="cli-stop")
    done = cli(sandbox, "stop", handle.job_id, "--stop-timeout", "20")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{handle.job_id} Stopped"
    assert client.get_job(handle.job_id).status.value == "Stopped"


def test_the_command_reaches_the_job_as_written(sandbox: SandboxServer) -> None:
    # One argument is a command line; several are the words of one command, each kept whole.
    line = cli(sandbox, "run", "--poll-freq", "0.3", "printf '%s|' 'a b' 'c;d'; echo")
    words = cli(sandbox, "run", "--poll-freq", "0.3", "printf", "%s|", "a b", "c;d", "it's")
    assert line.returncode == 0 and words.returncode == 0, line.stderr + words.stderr
    assert line.stdout == "a b|c;d|\n"
    assert words.stdout == "a b|c;d|it's|\n"
