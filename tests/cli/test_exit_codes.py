"""Exit codes: documented in ``--help`` and distinct for each way a command can end; a Domino that
answers nonsense, or nothing, gives one line on stderr and the documented code, never a traceback.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Any

import pytest

from domino_orchestrate.sandbox import SandboxServer

from .conftest import cli_env, executions_titled, hostile_server, one_error_line, run_cli

KEY = "hostile-key-0123456789abcdef"
CATEGORIES = {
    "succeeded": "succeeded",
    "job failed": "Failed, Error or Stopped",
    "bad input": "bad input",
    "timed out": "timed out",
    "domino unreachable": "could not talk to Domino",
    "internal": "internal error",
}


@pytest.fixture(scope="module")
def codes() -> dict[str, int]:
    """The exit-code table as ``--help`` documents it, by category."""
    shown = run_cli(dict(os.environ), "--help")
    assert shown.returncode == 0
    table = shown.stdout.split("exit codes:", 1)[1]
    rows = dict(re.findall(r"^\s*(\d+)\s+(.+)$", table, re.MULTILINE))
    found = {name: int(code) for name, words in CATEGORIES.items()
             for code, text in rows.items() if words in text}
    assert set(found) == set(CATEGORIES), rows
    return found


def test_help_documents_distinct_exit_codes(codes: dict[str, int]) -> None:
    assert len(set(codes.values())) == len(codes)
    assert codes["succeeded"] == 0
    assert all(code < 128 for code in codes.values())  # 128+N is for signals
    for command in ("run", "logs"):
        shown = run_cli(dict(os.environ), command, "--help")
        assert "exit codes:" in shown.stdout and "128+N" in shown.stdout
        assert "143 SIGTERM" in shown.stdout


def _hostile_env(hostile: Any, **extra: str) -> dict[str, str]:
    return cli_env(hostile.url, KEY, project="alice/churn", DOMINO_MAX_RETRIES="0", **extra)


WRONG_SHAPES = {
    "a list": [1, 2],
    "null": None,
    "no id": {"statuses": {"executionStatus": "Running", "isCompleted": False}},
    "statuses a string": {"id": "x", "statuses": "Running"},
}


@pytest.mark.parametrize("body", list(WRONG_SHAPES.values()), ids=list(WRONG_SHAPES))
def test_wrong_shaped_json_is_one_line_and_the_unreachable_code(
    hostile: Any, codes: dict[str, int], body: Any
) -> None:
    hostile.on("GET", "/v4/jobs/", hostile_server.json_reply(body))
    done = run_cli(_hostile_env(hostile), "status", "aabbccddeeff001122334455")
    assert done.returncode == codes["domino unreachable"], done.stderr
    assert "/v4/jobs/" in one_error_line(done.stderr)


def test_an_html_page_instead_of_json_is_the_unreachable_code(
    hostile: Any, codes: dict[str, int]
) -> None:
    hostile.on("GET", "/v4/jobs/", hostile_server.html(200, "<html><body>Sign in</body></html>"))
    done = run_cli(_hostile_env(hostile), "status", "aabbccddeeff001122334455")
    assert done.returncode == codes["domino unreachable"], done.stderr
    one_error_line(done.stderr)


def test_nobody_listening_is_the_unreachable_code(codes: dict[str, int]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        env = cli_env(f"http://127.0.0.1:{port}", KEY, project="alice/churn",
                      DOMINO_MAX_RETRIES="0")
        done = run_cli(env, "status", "aabbccddeeff001122334455")
    assert done.returncode == codes["domino unreachable"], done.stderr
    assert "no answer from Domino" in one_error_line(done.stderr)


@pytest.mark.parametrize(("args", "env_extra", "says"), [
    (["--ca-bundle", "/no/such/ca.pem"], {}, "no such file"),
    ([], {"DOMINO_LOG_LEVEL": "LOUD"}, "DOMINO_LOG_LEVEL"),
    ([], {"DOMINO_API_HOST": ""}, "DOMINO_API_HOST"),
    (["--poll-freq", "0"], {}, "poll_freq"),
], ids=["ca-bundle", "log-level", "no-host", "poll-freq"])
def test_bad_input_is_the_bad_input_code_with_what_to_fix(
    hostile: Any, codes: dict[str, int], args: list[str], env_extra: dict[str, str], says: str
) -> None:
    env = _hostile_env(hostile, **env_extra)
    done = run_cli(env, "logs", "aabbccddeeff001122334455", "--follow", *args)
    assert done.returncode == codes["bad input"], done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr
    assert not hostile.requests_to("GET", "/v4/jobs/")


def test_timeouts_are_the_timed_out_code_and_only_run_stops_the_job(
    sandbox: SandboxServer, env: dict[str, str], codes: dict[str, int]
) -> None:
    done = run_cli(env, "run", "--poll-freq", "0.2", "--max-poll-time", "1", "--title", "to-run",
                   "sleep 30")
    assert done.returncode == codes["timed out"], done.stderr
    assert "--max-poll-time" in one_error_line(done.stderr)  # the knob the user can raise
    [job] = executions_titled(sandbox, "to-run")
    assert job.status == "Stopped"

    from domino_orchestrate.core import DominoClient

    client = DominoClient(sandbox.url, "cli/demo", api_key=sandbox.api_key)
    handle = client.start_job("sleep 30", title="to-follow")
    try:
        done = run_cli(env, "logs", handle.job_id, "--follow", "--poll-freq", "0.2",
                       "--max-poll-time", "1")
        assert done.returncode == codes["timed out"], done.stderr
        [job] = executions_titled(sandbox, "to-follow")
        assert job.status == "Running" and not job.stop_requested
    finally:
        client.stop_job(handle.job_id)
