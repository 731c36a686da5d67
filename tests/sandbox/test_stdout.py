"""Stdout HTML (domino-api.md §2.2, §2.5): escaping, text-danger, newline rule, append-only."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path
from typing import Any

from domino_orchestrate.sandbox import SandboxServer
from domino_orchestrate.sandbox.stdout import (
    PRE_CLOSE,
    PRE_OPEN,
    STDERR_TAG,
    STDOUT_TAG,
    encode_frame,
    read_frames,
    render_frames,
)

EXACT_PRE = (
    "<pre style='white-space: pre-wrap; white-space: -moz-pre-wrap; white-space: -pre-wrap; "
    "white-space: -o-pre-wrap; word-wrap: break-word; word-wrap: break-all;'>"
)


def _strip(block: str) -> str:
    assert block.startswith(EXACT_PRE) and block.endswith(PRE_CLOSE)
    inner = block[len(EXACT_PRE) : -len(PRE_CLOSE)]
    return html.unescape(re.sub(r"<[^>]+>", "", inner))


def test_render_rules_unit() -> None:
    frames = [(STDOUT_TAG, b"a <b>&\n"), (STDERR_TAG, b"e1\ne2\n"), (STDERR_TAG, b"tail")]
    assert render_frames(frames) == (
        "a &lt;b&gt;&amp;\n"
        '<span class="text-danger">e1</span>\n<span class="text-danger">e2</span>\n'
        '<span class="text-danger">tail</span>'
    )
    assert PRE_OPEN == EXACT_PRE


def test_frames_ignore_uncommitted_tail(tmp_path: Path) -> None:
    path = tmp_path / "log"
    first = encode_frame(STDOUT_TAG, b"one\n")
    path.write_bytes(first + encode_frame(STDOUT_TAG, b"two\n"))
    assert read_frames(path, len(first)) == [(STDOUT_TAG, b"one\n")]
    assert read_frames(path, len(first) + 3) == [(STDOUT_TAG, b"one\n")]  # half a frame
    assert len(read_frames(path, path.stat().st_size)) == 2


def test_stdout_html_escaping_danger_and_final_line(api: Any, sandbox: SandboxServer) -> None:
    # Two pipes have no order between them: the pause lets the sandbox read stderr's line before
    # the last stdout write (a loaded CI machine read both at once and rendered them swapped).
    job = api.start_job("echo '<b>&'; echo oops >&2; sleep 0.5; printf 'no newline'")
    api.wait_status(job["id"])
    body = api.stdout(job["id"])
    assert set(body) == {"setup", "stdout"}
    out = body["stdout"]
    assert out.startswith(EXACT_PRE) and out.endswith("</pre>")
    assert "&lt;b&gt;&amp;\n" in out
    assert '<span class="text-danger">oops</span>\n' in out
    assert out.endswith("no newline</pre>")  # final line without newline keeps none
    assert _strip(out) == "<b>&\noops\nno newline"
    assert body["setup"].startswith(EXACT_PRE) and "Preparing environment" in body["setup"]
    info = sandbox.execution_info(job["id"])
    assert info["stdoutUnterminated"] is True and info["stderrUnterminated"] is False


def test_raw_output_matches_process_bytes(api: Any, sandbox: SandboxServer) -> None:
    job = api.start_job("printf 'x\\ny'; printf 'err\\n' >&2; printf '\\303\\251\\n'")
    api.wait_status(job["id"])
    out, err = sandbox.output(job["id"])
    assert out == b"x\ny\xc3\xa9\n"
    assert err == b"err\n"
    raw = api.session.get(
        f"{api.url}/__sandbox__/executions/{job['id']}/output", params={"stream": "stderr"}
    )
    assert raw.status_code == 200 and raw.content == b"err\n"


def test_content_is_append_only_and_partial_lines_withheld(api: Any) -> None:
    script = (
        "for i in 1 2 3 4 5 6; do echo line-$i; printf 'part-'; sleep 0.15; echo $i; done; "
        "printf 'end'"
    )
    job = api.start_job(script)
    snapshots: list[str] = []
    while True:
        state = api.job(job["id"])
        snapshots.append(_strip(api.stdout(job["id"])["stdout"]))
        if state["statuses"]["isCompleted"]:
            break
        time.sleep(0.03)
    final = _strip(api.stdout(job["id"])["stdout"])
    for earlier in snapshots:
        assert final.startswith(earlier)
        # a still-running job never shows a half line
        assert earlier == "" or earlier.endswith("\n") or earlier == final
    assert len(set(snapshots)) > 2  # really observed while running
    expected = "".join(f"line-{i}\npart-{i}\n" for i in range(1, 7)) + "end"
    assert final == expected


def test_big_output_lands_on_disk(api: Any, sandbox: SandboxServer) -> None:
    job = api.start_job("python -c \"import sys; [print('x' * 99) for _ in range(20000)]\"")
    api.wait_status(job["id"])
    out, _ = sandbox.output(job["id"])
    assert len(out) == 20000 * 100
    assert _strip(api.stdout(job["id"])["stdout"]).count("\n") == 20000
