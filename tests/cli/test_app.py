"""The CLI as a toolkit-built command (issue 17): --version, --json on run/stop/status, a status
table for people, shell completion that really completes in bash, help that documents every
option and the exit codes without reStructuredText, and output that respects NO_COLOR and pipes.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from domino_orchestrate import __version__
from domino_orchestrate.cli import app
from domino_orchestrate.sandbox import SandboxServer

from .conftest import CLI, cli_env, executions_titled, on_a_terminal, run_cli

SGR = re.compile(r"\x1b\[([0-9;]*)m")


def _coloured(text: str) -> bool:
    """Whether ``text`` sets a foreground or background colour (NO_COLOR forbids those; bold is
    not a colour)."""
    for match in SGR.finditer(text):
        codes = [int(c) for c in match.group(1).split(";") if c]
        if any(30 <= c <= 49 or 90 <= c <= 107 for c in codes):
            return True
    return False


def test_version_prints_the_package_version() -> None:
    done = run_cli(cli_env("http://127.0.0.1:9", "k"), "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"domino-orchestrate {__version__}\n"


def test_run_json_is_one_document_on_stdout_and_the_output_goes_to_stderr(
    sandbox: SandboxServer, env: dict[str, str]
) -> None:
    done = run_cli(env, "run", "--json", "--poll-freq", "0.2", "--title", "json-run",
                   "echo from-the-job")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)  # nothing else on stdout
    [job] = executions_titled(sandbox, "json-run")
    assert document["handle"]["job_id"] == job.id
    assert document["final"]["job_id"] == job.id and document["final"]["status"] == "Succeeded"
    assert "from-the-job" in done.stderr

    failed = run_cli(env, "run", "--json", "--poll-freq", "0.2", "--title", "json-fail", "exit 2")
    assert failed.returncode == 1, failed.stderr
    assert json.loads(failed.stdout)["final"]["status"] == "Failed"


def test_no_wait_then_stop_and_status_in_json(
    sandbox: SandboxServer, env: dict[str, str]
) -> None:
    started = run_cli(env, "run", "--json", "--no-wait", "--title", "json-stop", "sleep 60")
    assert started.returncode == 0, started.stderr
    document = json.loads(started.stdout)
    assert document["final"] is None
    job_id = document["handle"]["job_id"]

    stopped = run_cli(env, "stop", job_id, "--json", "--stop-timeout", "20")
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(stopped.stdout) == {"job_id": job_id,
                                          "final": json.loads(stopped.stdout)["final"]}
    assert json.loads(stopped.stdout)["final"]["status"] == "Stopped"
    [job] = executions_titled(sandbox, "json-stop")
    assert job.status == "Stopped"

    status = run_cli(env, "status", job_id, "--json")
    assert status.returncode == 1, status.stderr  # a stopped job counts as failed
    assert json.loads(status.stdout)["status"] == "Stopped"

    table = run_cli(env, "status", job_id)  # for people: aligned fields, no JSON
    assert table.returncode == 1
    rows = dict(line.split(None, 1) for line in table.stdout.splitlines() if " " in line)
    assert rows["job_id"] == job_id and rows["status"] == "Stopped"
    assert "\x1b" not in table.stdout  # a pipe gets no escapes


def _bash_completions(home: Path, words: list[str]) -> list[str]:
    """What bash offers after ``words`` once the user's ~/.bashrc is read (where
    ``--install-completion`` hooked the script in); the script calls ``domino-orchestrate`` on
    PATH, as in a user's shell."""
    bin_dir = home / "bin"
    bin_dir.mkdir(exist_ok=True)
    launcher = bin_dir / "domino-orchestrate"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m domino_orchestrate "$@"\n')
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    program = (f"source ~/.bashrc\nCOMP_WORDS=({' '.join(words)}); COMP_CWORD={len(words) - 1}\n"
               "_domino_orchestrate_completion domino-orchestrate\n"
               'printf "%s\\n" "${COMPREPLY[@]}"\n')
    env = cli_env("http://127.0.0.1:9", "k", HOME=str(home),
                  PATH=f"{bin_dir}:{os.environ['PATH']}")
    done = subprocess.run(["bash", "--norc", "-c", program], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def _from_bash(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI run from bash (the ``exit $?`` after it keeps bash from exec-ing it away)."""
    line = " ".join(shlex.quote(word) for word in (*CLI, *args))
    return subprocess.run(["bash", "--norc", "-c", f"{line}; exit $?"], capture_output=True,
                          text=True, env=env, timeout=60)


def test_installed_bash_completion_completes_commands_and_options(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = cli_env("http://127.0.0.1:9", "k", HOME=str(home))
    # As a user types them in bash: typer finds the shell among the CLI's parent processes (under
    # make or CI, pytest's own ancestors are sh, which typer does not support).
    shown = _from_bash(env, "--show-completion")
    assert shown.returncode == 0 and "_DOMINO_ORCHESTRATE_COMPLETE" in shown.stdout
    installed = _from_bash(env, "--install-completion")
    assert installed.returncode == 0, installed.stderr
    script = (home / ".bash_completions" / "domino-orchestrate.sh").read_text()
    assert script.strip() == shown.stdout.strip()
    assert _bash_completions(home, ["domino-orchestrate", "ru"]) == ["run"]
    assert "--title" in _bash_completions(home, ["domino-orchestrate", "run", "--ti"])
    assert "flush" in _bash_completions(home, ["domino-orchestrate", "lineage", "fl"])


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, group)]
    for name, command in sorted(getattr(group, "commands", {}).items()):
        found.extend(_commands(command, (*path, name)))
    return found


def _help_texts(command: Any) -> list[str]:
    texts = [command.help or "", command.short_help or "", command.epilog or ""]
    return texts + [getattr(param, "help", None) or "" for param in command.params]


def test_every_command_option_and_argument_has_help_without_restructuredtext() -> None:
    # The strings typer renders, for every command of the tree (the lineage store's included).
    missing, backticks = [], []
    for path, command in _commands(typer.main.get_command(app)):
        where = " ".join(path) or "(top)"
        if not (command.help or "").strip():
            missing.append(where)
        missing += [f"{where} {p.name}" for p in command.params
                    if not (getattr(p, "help", None) or "").strip()]
        backticks += [f"{where}: {text}" for text in _help_texts(command) if "`" in text]
    assert missing == []
    assert backticks == []


CONNECTION_FLAGS = ("--host", "--api-key", "--auth-token", "--token-file", "--api-proxy",
                    "--project", "--timeout", "--ca-bundle", "--verbose")
POLLING_FLAGS = ("--poll-freq", "--max-poll-time", "--retry-count", "--include-setup-log")


@pytest.mark.parametrize(("command", "flags"), [
    ("run", (*CONNECTION_FLAGS, *POLLING_FLAGS, "--stop-timeout")),
    ("status", CONNECTION_FLAGS),
    ("stop", (*CONNECTION_FLAGS, "--stop-timeout")),
    ("logs", (*CONNECTION_FLAGS, *POLLING_FLAGS)),
])
def test_each_command_lists_the_shared_options_in_its_own_help(
    command: str, flags: tuple[str, ...]
) -> None:
    # The options are declared once (cli.Connection, cli.Polling) yet belong to each command.
    shown = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert shown.exit_code == 0, shown.output
    listed = re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", shown.output)
    assert [flag for flag in flags if flag not in listed] == []
    assert re.search(r"--timeout .*\[default: 30\.0\]", shown.output), shown.output


# (run and logs: test_exit_codes)
@pytest.mark.parametrize("path", [(), ("status",), ("stop",), ("lineage",)],
                         ids=lambda p: " ".join(p) or "top")
def test_help_as_shown_lists_exit_codes_and_writes_no_escapes_into_a_pipe(
    path: tuple[str, ...]
) -> None:
    shown = run_cli(cli_env("http://127.0.0.1:9", "k"), *path, "--help")
    assert shown.returncode == 0, shown.stderr
    assert "`" not in shown.stdout and "\x1b" not in shown.stdout
    if path != ("lineage",):
        assert "exit codes:" in shown.stdout and "143 SIGTERM" in shown.stdout


@pytest.mark.parametrize("no_color", [False, True], ids=["colour", "NO_COLOR"])
def test_no_color_keeps_the_status_line_and_drops_the_colours(
    sandbox: SandboxServer, env: dict[str, str], no_color: bool
) -> None:
    title = f"tty-{'plain' if no_color else 'colour'}"
    terminal = {**env, "TERM": "xterm-256color", **({"NO_COLOR": "1"} if no_color else {})}
    shown = on_a_terminal(terminal, "run", "--poll-freq", "0.2", "--title", title, "sleep 0.8")
    [job] = executions_titled(sandbox, title)
    assert re.search(rf"\r\x1b\[2K\[(\x1b\[[0-9;]*m)?Running(\x1b\[[0-9;]*m)?\] {job.id} 00:0\d",
                     shown), shown  # the live status line is drawn either way
    assert _coloured(shown) is not no_color, shown

    table = on_a_terminal(terminal, "status", job.id)
    assert "Succeeded" in table
    assert _coloured(table) is not no_color, table


def test_lineage_flush_is_mounted_under_the_lineage_store_commands(tmp_path: Path) -> None:
    env = cli_env("http://127.0.0.1:9", "k", DOMINO_ORCHESTRATE_LINEAGE_SPOOL=str(tmp_path))
    done = run_cli(env, "lineage", "flush")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "delivered 0 spooled lineage event(s); 0 remaining\n"
    listed = run_cli(env, "lineage", "--help")
    assert all(name in listed.stdout for name in ("flush", "recent", "trace", "serve"))


def test_after_a_double_dash_the_command_keeps_its_own_options(hostile: Any) -> None:
    env = cli_env(hostile.url, "hostile-key-0123456789", project="alice/churn",
                  DOMINO_MAX_RETRIES="0")
    done = run_cli(env, "run", "--no-wait", "--title", "dashes", "--", "python", "train.py",
                   "--lr", "0.1", "--title", "inner")
    assert done.returncode == 0, done.stderr
    [started] = hostile.domino.started
    assert started["commandToRun"] == "python train.py --lr 0.1 --title inner"
    assert started["title"].startswith("dashes")
