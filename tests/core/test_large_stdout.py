"""A job printing 50 MB: every line delivered once, in order, identical to what it wrote."""

from __future__ import annotations

import hashlib

import pytest

from domino_orchestrate.core import DominoClient, LogLine, PollOptions
from domino_orchestrate.sandbox import SandboxServer


@pytest.mark.slow
def test_fifty_megabytes_streamed_exactly() -> None:
    digest = hashlib.sha256()
    count = 0

    def on_line(line: LogLine) -> None:
        nonlocal count
        count += 1
        digest.update(line.text.encode() + b"\n")

    # ~50 MB over about 3 s, so several polls see a growing log.
    command = (
        "python3 -c \"import sys,time\n"
        "for b in range(10):\n"
        "    sys.stdout.write(''.join('block %d line %06d <&> padding-padding-padding-padding-padding-padding\\n' % (b, i) for i in range(70000)))\n"
        "    sys.stdout.flush(); time.sleep(0.3)\""
    )
    with SandboxServer(projects={"big/p": None}) as srv:
        client = DominoClient(srv.url, "big/p", api_key=srv.api_key, timeout=120)
        final = client.run_job(command, PollOptions(poll_freq=1.0, initial_interval=0.5), on_line=on_line)
        out, _ = srv.output(final.job_id)
    assert len(out) > 50_000_000
    assert count == out.count(b"\n")
    assert digest.hexdigest() == hashlib.sha256(out).hexdigest()
