"""Domino stdout: HTML to lines, and a cursor that hands out each new line exactly once.

Domino serves the whole log on every request, wrapped in ``<pre style=…>`` with ``<span>`` tags,
HTML-escaped, stderr lines marked ``text-danger`` (domino-api.md §2.2, §2.5). The log only grows,
so the cursor remembers how far into the text it has delivered and parses only what is new: memory
is bounded by one response, and CPU by the new bytes. A last line without a newline is held back
until the job is terminal, so a line is never delivered half-written.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

from .models import LogLine

__all__ = ["LogCursor", "parse_log", "strip_html"]

_TAG = re.compile(r"<[^>]*>")
_PRE_OPEN = re.compile(r"^\s*<pre\b[^>]*>", re.IGNORECASE)


def _bounds(text: str) -> tuple[int, int]:
    """Where the log text starts and ends inside Domino's ``<pre …>`` wrapper.

    Offsets, not a slice: a slice would copy a log that may be hundreds of megabytes.
    """
    opened = _PRE_OPEN.match(text)
    if not opened:
        return 0, len(text)
    end = len(text)
    tail = text.rfind("</pre>", max(opened.end(), end - 64))
    if tail >= 0 and not text[tail + 6 :].strip():
        end = tail
    return opened.end(), end


def _lines(text: str, start: int, end: int, stream: str) -> Iterator[LogLine]:
    """The lines of ``text[start:end]``, one small slice at a time; a trailing newline ends the
    last line rather than starting an empty one."""
    pos = start
    while pos < end:
        found = text.find("\n", pos, end)
        stop = end if found < 0 else found
        yield _line(text[pos:stop], stream)
        pos = stop + 1


def strip_html(raw_line: str) -> str:
    """``<span>hello</span>`` → ``hello`` (python-domino's regex leaves ``hello</``), entities
    unescaped."""
    return html.unescape(_TAG.sub("", raw_line)).rstrip("\r")


def _line(raw_line: str, default: str) -> LogLine:
    stream = "stderr" if "text-danger" in raw_line else default
    return LogLine(strip_html(raw_line), stream)  # type: ignore[arg-type]


def parse_log(text: str, stream: str = "stdout") -> list[LogLine]:
    """All lines of one Domino log, including a last line without a newline."""
    start, end = _bounds(text)
    return list(_lines(text, start, end, stream))


class LogCursor:
    """Delivers each line of a growing Domino log once, in order."""

    def __init__(self, stream: str = "stdout") -> None:
        self._stream = stream
        self._offset = 0  # characters of the log text already delivered, always at a line start
        self.delivered = 0
        self._finished = False

    def feed(self, text: str, *, final: bool = False) -> Iterator[LogLine]:
        """Yield the lines that are new since the last call, one at a time (so a large log is
        never held twice).

        ``final`` means the job is terminal: the last line is delivered even without a newline.
        """
        if self._finished:
            return
        if final:
            self._finished = True
        start, end = _bounds(text)
        if end - start < self._offset:
            # The log shrank: not append-only (a server restart). Skip what was delivered by count.
            self._offset = _offset_after_lines(text, start, end, self.delivered) - start
        if not final:
            end = text.rfind("\n", start + self._offset, end) + 1
        begin = start + self._offset
        if end <= begin:
            return
        self._offset = end - start
        for line in _lines(text, begin, end, self._stream):
            self.delivered += 1
            yield line


def _offset_after_lines(text: str, start: int, end: int, count: int) -> int:
    offset = start
    for _ in range(count):
        found = text.find("\n", offset, end)
        if found < 0:
            return end
        offset = found + 1
    return offset
