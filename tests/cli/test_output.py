"""Job output printed by the CLI can never drive the user's terminal, and no character Domino can
send crashes a command or costs a line.

Escape sequences come from a real job in the sandbox (a process printing them); lone surrogates,
which no process can print but a JSON body can carry, come from the hostile server.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from domino_orchestrate.sandbox import SandboxServer

from .conftest import (
    cli_env,
    executions_titled,
    hostile_server,
    on_a_terminal,
    popen_cli,
    run_cli,
)

# An OSC window title, SGR colours, a tab, a C1 CSI (U+009B), a bidi override, a carriage return.
HOSTILE_LINE = (
    r"printf 'title\033]0;pwned\033\\ \033[31mred\033[0m\tcol2 csi\302\2332J "
    r"bidi\342\200\256x cr\rhidden\n'"
)
NEUTRALISED = r"title red" "\t" r"col2 csi\x9b2J bidi\u202ex cr\x0dhidden"
# Anything a terminal acts on: C0 controls but tab and newline, DEL, C1, bidi controls.
TERMINAL_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def test_escape_sequences_in_job_output_are_neutralised(
    sandbox: SandboxServer, env: dict[str, str]
) -> None:
    done = run_cli(env, "run", "--poll-freq", "0.3", "--title", "escapes", HOSTILE_LINE)
    assert done.returncode == 0, done.stderr
    [job] = executions_titled(sandbox, "escapes")
    assert b"\x1b]0;pwned\x1b\\" in sandbox.output(job.id)[0]  # the job really printed them
    assert done.stdout.split("\n")[:-1] == [NEUTRALISED]
    for command in (["logs", job.id], ["logs", job.id, "--follow", "--poll-freq", "0.3"]):
        shown = run_cli(env, *command)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.split("\n")[:-1] == [NEUTRALISED], command
    for text in (done.stdout, done.stderr):
        assert not TERMINAL_CONTROL.search(text.replace("\r\x1b[K", ""))


def test_stderr_lines_and_status_are_neutralised_too(
    sandbox: SandboxServer, env: dict[str, str]
) -> None:
    done = run_cli(env, "run", "--poll-freq", "0.3", "--title", "esc-err",
                   r"printf 'to stderr \033[2J\033[H cleared\n' >&2")
    assert done.returncode == 0
    assert "to stderr  cleared" in done.stderr
    assert not TERMINAL_CONTROL.search(done.stderr)


def _start_on_hostile(hostile: Any, stdout: str) -> tuple[dict[str, str], str]:
    """A finished job on the hostile server whose log is ``stdout``."""
    hostile.domino.stdout = stdout
    job_id = "aabbccddeeff001122334455"
    hostile.domino.jobs[job_id] = hostile_server.job_body(job_id, "Succeeded",
                                                          hostile.domino.project_id)
    env = cli_env(hostile.url, "hostile-key-0123456789", project="alice/churn",
                  DOMINO_MAX_RETRIES="0")
    return env, job_id


SURROGATE_LOG = "before\nlone \ud800 surrogate\nlow \udfff end\nafter\n"
SURROGATE_LINES = ["before", "lone \ufffd surrogate", "low \ufffd end", "after"]


def test_a_lone_surrogate_never_drops_a_line_from_run(hostile: Any) -> None:
    hostile.domino.stdout = SURROGATE_LOG
    env = cli_env(hostile.url, "hostile-key-0123456789", project="alice/churn",
                  DOMINO_MAX_RETRIES="0")
    done = run_cli(env, "run", "--poll-freq", "0.2", "python train.py")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:-1] == SURROGATE_LINES
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("follow", [False, True], ids=["logs", "logs-follow"])
def test_a_lone_surrogate_never_crashes_logs(hostile: Any, follow: bool) -> None:
    env, job_id = _start_on_hostile(hostile, SURROGATE_LOG)
    args = ["logs", job_id, *(["--follow", "--poll-freq", "0.2"] if follow else [])]
    shown = run_cli(env, *args)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split("\n")[:-1] == SURROGATE_LINES
    assert "Traceback" not in shown.stderr


def test_a_terminal_that_cannot_encode_a_character_still_gets_every_line(hostile: Any) -> None:
    env, job_id = _start_on_hostile(hostile, "caf\u00e9\n\u65e5\u672c\nplain\n")
    shown = run_cli({**env, "PYTHONIOENCODING": "ascii"}, "logs", job_id)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split("\n")[:-1] == ["caf\\xe9", "\\u65e5\\u672c", "plain"]


def test_logs_into_a_pipe_that_closes_ends_quietly(hostile: Any) -> None:
    env, job_id = _start_on_hostile(hostile, "".join(f"line {n}\n" for n in range(50_000)))
    proc = popen_cli(env, "logs", job_id)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == "line 0\n"
    proc.stdout.close()  # like `| head -1`
    err = proc.stderr.read()
    assert proc.wait(timeout=30) == 141, err
    assert err == ""


def test_an_invalid_utf8_byte_in_the_log_costs_no_line(hostile: Any) -> None:
    env, job_id = _start_on_hostile(hostile, "")
    body = b'{"setup": "", "stdout": "before\\nbad \xff byte\\nafter\\n"}'
    hostile.on("GET", "/v1/projects/", hostile_server.Reply(200, body))
    for args in (["logs", job_id], ["logs", job_id, "--follow", "--poll-freq", "0.2"]):
        shown = run_cli(env, *args)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.split("\n")[:-1] == ["before", "bad \ufffd byte", "after"], args


def test_status_strings_from_domino_are_neutralised(hostile: Any) -> None:
    # An unknown status is also quoted in a core warning: both reach the terminal made safe.
    hostile.domino.statuses = ["Running\x1b]0;pwned\x07\x1b[2J", "Succeeded"]
    env = cli_env(hostile.url, "hostile-key-0123456789", project="alice/churn",
                  DOMINO_MAX_RETRIES="0")
    done = run_cli(env, "run", "--poll-freq", "0.2", "python train.py")
    assert done.returncode == 0, done.stderr
    assert "status: Running" in done.stderr
    assert not TERMINAL_CONTROL.search(done.stdout + done.stderr), done.stderr


def test_on_a_terminal_only_the_status_line_writes_escapes(
    sandbox: SandboxServer, env: dict[str, str]
) -> None:
    shown = on_a_terminal(
        env, "run", "--poll-freq", "0.3", "--title", "on-a-tty",
        r"sleep 1; printf 'err \033]0;pwned\033\\ \033[2J cleared\n' >&2", stdout_too=False)
    assert "err   cleared" in shown
    # The live status line, drawn by rich: "\r\x1b[2K[Running] <job id> 00:01" with the status
    # coloured (SGR) and redrawn; its SGR codes are the only other escapes.
    assert re.search(r"\[(\x1b\[[0-9;]*m)?Running(\x1b\[[0-9;]*m)?\] [0-9a-f]{24} 00:0\d", shown), shown
    ours = re.compile(r"\r\x1b\[2K|\x1b\[[0-9;]*m")
    assert "\x1b" not in ours.sub("", shown).replace("\r\n", "\n"), shown
