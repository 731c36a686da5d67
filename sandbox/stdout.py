"""Execution output on disk and its Domino-style HTML rendering.

What lives here: the append-only frame format of `output.log` (written by the supervisor thread,
read by HTTP handlers) and the functions that turn it into the `{"setup", "stdout"}` HTML of
`GET P1/run/{id}/stdout` (domino-api.md §2.2, §2.5). No process handling and no HTTP here.

Frame format: 1 byte stream tag (``o`` stdout, ``e`` stderr), 4 bytes big-endian length, then the
bytes. A frame holds only complete lines, except the final frame of a stream, written when the
stream hits EOF, which may end without a newline. Partial lines therefore stay in the supervisor's
memory until their newline arrives, so the rendered content is append-only: every later response
starts with every earlier one (the client strips the HTML and diffs by prefix).
"""

from __future__ import annotations

import html
import struct
from pathlib import Path

# domino-api.md §2.5 step 3: the client removes exactly this literal, so it must match byte for byte.
PRE_OPEN = (
    "<pre style='white-space: pre-wrap; white-space: -moz-pre-wrap; white-space: -pre-wrap; "
    "white-space: -o-pre-wrap; word-wrap: break-word; word-wrap: break-all;'>"
)
PRE_CLOSE = "</pre>"
# domino-api.md §2.2: red lines carry the `text-danger` class; `process_log` logs them at WARNING.
DANGER_OPEN = '<span class="text-danger">'
DANGER_CLOSE = "</span>"

_HEADER = struct.Struct(">cI")
STDOUT_TAG = b"o"
STDERR_TAG = b"e"

# Fake setup log, revealed one phase at a time (Queued: 0 lines, Preparing: 2, Running: 4).
SETUP_LINES = (
    "Preparing environment...",
    "Pulling image quay.io/domino/sandbox-environment:latest...",
    "Copying project files...",
    "Starting run...",
)


def encode_frame(tag: bytes, data: bytes) -> bytes:
    """One frame of ``output.log``: the stream ``tag``, the length of ``data``, then ``data``."""
    return _HEADER.pack(tag, len(data)) + data


def read_frames(path: Path, size: int) -> list[tuple[bytes, bytes]]:
    """The frames in the first `size` bytes of `path` (the committed length, so a frame being
    appended concurrently is never half-read)."""
    if size <= 0:
        return []
    try:
        with path.open("rb") as fh:
            blob = fh.read(size)
    except FileNotFoundError:
        return []
    frames: list[tuple[bytes, bytes]] = []
    pos, end = 0, len(blob)
    while pos + _HEADER.size <= end:
        tag, length = _HEADER.unpack_from(blob, pos)
        start = pos + _HEADER.size
        if start + length > end:
            break
        frames.append((tag, blob[start : start + length]))
        pos = start + length
    return frames


def _escape(text: str) -> str:
    # quote=False: quotes need no escaping inside <pre>, and fewer entities means less noise for
    # clients that only strip tags.
    return html.escape(text, quote=False)


def render_frames(frames: list[tuple[bytes, bytes]]) -> str:
    """The inner HTML of the stdout block: stdout text escaped, each stderr line in a span."""
    parts: list[str] = []
    for tag, data in frames:
        text = data.decode("utf-8", errors="replace")
        if tag != STDERR_TAG:
            parts.append(_escape(text))
            continue
        lines = text.split("\n")
        # A trailing "" means the frame ended with a newline; a non-empty last item is the
        # unterminated final line of the stream.
        for line in lines[:-1]:
            parts.append(f"{DANGER_OPEN}{_escape(line)}{DANGER_CLOSE}\n")
        if lines[-1]:
            parts.append(f"{DANGER_OPEN}{_escape(lines[-1])}{DANGER_CLOSE}")
    return "".join(parts)


def render_stdout(path: Path, size: int) -> str:
    """The ``stdout`` HTML of the first ``size`` bytes of the log at ``path``, as Domino renders it
    (inside its literal ``<pre>``)."""
    return PRE_OPEN + render_frames(read_frames(path, size)) + PRE_CLOSE


def render_setup(visible_lines: int) -> str:
    """The ``setup`` HTML: the first ``visible_lines`` lines of the fake setup log."""
    body = "".join(_escape(line) + "\n" for line in SETUP_LINES[:visible_lines])
    return PRE_OPEN + body + PRE_CLOSE
