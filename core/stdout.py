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

from .models import LogLine

__all__ = ["LogCursor", "parse_log", "strip_html"]

_TAG = re.compile(r"<[^>]*>")
_PRE_OPEN = re.compile(r"^\s*<pre\b[^>]*>", re.IGNORECASE)
_PRE_CLOSE = re.compile(r"</pre>\s*$", re.IGNORECASE)


def _body(text: str) -> str:
    """The log text without Domino's ``<pre …>`` wrapper."""
    opened = _PRE_OPEN.match(text)
    if opened:
        text = text[opened.end() :]
        closed = _PRE_CLOSE.search(text)
        if closed:
            text = text[: closed.start()]
    return text


def strip_html(raw_line: str) -> str:
    """``<span>hello</span>`` → ``hello`` (python-domino's regex leaves ``hello</``), entities
    unescaped."""
    return html.unescape(_TAG.sub("", raw_line)).rstrip("\r")


def _line(raw_line: str, default: str) -> LogLine:
    stream = "stderr" if "text-danger" in raw_line else default
    return LogLine(strip_html(raw_line), stream)  # type: ignore[arg-type]


def parse_log(text: str, stream: str = "stdout") -> list[LogLine]:
    """All lines of one Domino log, including a last line without a newline."""
    body = _body(text)
    if not body:
        return []
    parts = body.split("\n")
    if parts[-1] == "":
        parts.pop()
    return [_line(part, stream) for part in parts]


class LogCursor:
    """Delivers each line of a growing Domino log once, in order."""

    def __init__(self, stream: str = "stdout") -> None:
        self._stream = stream
        self._offset = 0  # characters of the body already delivered, always at a line start
        self.delivered = 0
        self._finished = False

    def feed(self, text: str, *, final: bool = False) -> list[LogLine]:
        """Return the lines that are new since the last call.

        ``final`` means the job is terminal: the last line is delivered even without a newline.
        """
        if self._finished:
            return []
        body = _body(text)
        if len(body) < self._offset:
            # The log shrank: not append-only (a server restart). Skip what was delivered by count.
            self._offset = _offset_after_lines(body, self.delivered)
        end = len(body) if final else body.rfind("\n", self._offset) + 1
        if end <= self._offset:
            new: list[LogLine] = []
        else:
            chunk = body[self._offset : end]
            parts = chunk.split("\n")
            if parts[-1] == "":
                parts.pop()
            new = [_line(part, self._stream) for part in parts]
            self._offset = end
        self.delivered += len(new)
        if final:
            self._finished = True
        return new


def _offset_after_lines(body: str, count: int) -> int:
    offset = 0
    for _ in range(count):
        found = body.find("\n", offset)
        if found < 0:
            return len(body)
        offset = found + 1
    return offset
