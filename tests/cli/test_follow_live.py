"""``logs --follow`` is ``tail -f`` for a Domino job: a person following a log sees each line as
the job prints it, not within the request budget the library keeps by default (a first live
fetch 6 polls in), which would hold this job's first line until its end."""

from __future__ import annotations

import time

from domino_orchestrate.core import DominoClient
from domino_orchestrate.sandbox import SandboxServer

from .conftest import PROJECT, popen_cli


def test_logs_follow_shows_each_line_while_the_job_runs(
        sandbox: SandboxServer, env: dict[str, str]) -> None:
    with DominoClient(sandbox.url, PROJECT, api_key=sandbox.api_key) as client:
        handle = client.start_job("echo first; sleep 10; echo last", title="follow-live")
    proc = popen_cli(env, "logs", handle.job_id, "--follow", "--poll-freq", "2")
    try:
        assert proc.stdout is not None
        started = time.monotonic()
        first = proc.stdout.readline()
        first_seen = time.monotonic() - started
        rest, err = proc.communicate(timeout=90)
        ended = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert first.strip() == "first" and rest.split() == ["last"], (first, rest)
    # The job sleeps 10 s after its first line; followed live, that line shows seconds before
    # the end (within the budget it would come with the last one).
    assert ended - first_seen >= 4, (first_seen, ended)
