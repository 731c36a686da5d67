"""Domino stdout: HTML to lines, and a cursor that hands out each new line exactly once.

Domino serves the whole log on every request, wrapped in ``<pre style=…>`` with ``<span>`` tags,
HTML-escaped, stderr lines marked ``text-danger`` (domino-api.md §2.2, §2.5). A log normally only
grows, so the cursor remembers how far into the text it has delivered and parses only what is
new: memory is bounded by one response, and CPU by the new bytes plus one checksum pass. A last
line without a newline is held back until the job is terminal, so a line is never delivered
half-written.

A log that is not append-only (rotated, truncated, a rolling window, an earlier part rewritten)
is detected by a checksum of everything delivered so far; the cursor then resynchronises on
content (the last lines it delivered) and says so once through ``on_notice``: never a silent
loss or repeat.
"""

from __future__ import annotations

import html
import logging
import re
import zlib
from collections.abc import Callable, Iterator

from .models import LogLine

__all__ = ["LogCursor", "LogPass", "clean_text", "parse_log", "strip_html"]

log = logging.getLogger("domino_orchestrate")

_TAG = re.compile(r"<[^>]*>")
_PRE_OPEN = re.compile(r"^\s*<pre\b[^>]*>", re.IGNORECASE)
#: What the start of a log may look like while its ``<pre …>`` tag has not fully arrived.
_PRE_PARTIAL = re.compile(r"\s*(?:<(?:p(?:r(?:e(?:\W[^>]*)?)?)?)?)?\Z", re.IGNORECASE)
#: Characters at the end of a streamed log kept back until its end is known (``_bounds`` looks
#: for the closing ``</pre>`` among the last 64).
_PRE_CLOSE_WINDOW = 64
#: Characters that crash an encoder (lone surrogates) or that other tools read as line breaks or
#: terminators (NUL, VT, FF, FS/GS/RS, NEL, LS, PS, other C0 controls, DEL). Tab, CR and ESC (ANSI
#: colours, which orchestrator UIs render) are kept; terminal safety is the CLI's job.
_ODD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f\x85\u2028\u2029\ud800-\udfff]")
REPLACEMENT = "\ufffd"
#: Lines of the delivered log kept to find our place again in a log that is not append-only.
ANCHOR_LINES = 8
#: Characters kept for that (the anchor is cut to its last characters when lines are huge).
ANCHOR_CHARS = 4096
#: Characters per step of the checksum pass (bounds the temporary bytes copy).
_CRC_CHUNK = 1 << 20


def clean_text(text: str) -> str:
    """``text`` with every odd character replaced by U+FFFD: the line is kept, never dropped."""
    return _ODD.sub(REPLACEMENT, text) if _ODD.search(text) else text


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
    odd = _ODD.search(text, start, end) is not None  # one scan, not one per line
    pos = start
    while pos < end:
        found = text.find("\n", pos, end)
        stop = end if found < 0 else found
        yield _line(text[pos:stop], stream, odd)
        pos = stop + 1


def strip_html(raw_line: str, odd: bool = True) -> str:
    """``<span>hello</span>`` → ``hello`` (python-domino's regex leaves ``hello</``), entities
    unescaped, odd characters replaced (see ``clean_text``; ``odd=False`` says the raw line has
    none, so only an entity can bring one in)."""
    text = html.unescape(_TAG.sub("", raw_line)).rstrip("\r")
    return clean_text(text) if odd or "&" in raw_line else text


def _line(raw_line: str, default: str, odd: bool = True) -> LogLine:
    stream = "stderr" if "text-danger" in raw_line else default
    return LogLine(strip_html(raw_line, odd), stream)  # type: ignore[arg-type]


def parse_log(text: str, stream: str = "stdout") -> list[LogLine]:
    """All lines of one Domino log, including a last line without a newline."""
    start, end = _bounds(text)
    return list(_lines(text, start, end, stream))


def _crc(text: str, start: int, end: int, value: int = 0) -> int:
    for pos in range(start, end, _CRC_CHUNK):
        chunk = text[pos : min(end, pos + _CRC_CHUNK)].encode("utf-8", "surrogatepass")
        value = zlib.crc32(chunk, value)
    return value


def _line_start(text: str, pos: int, start: int) -> bool:
    return pos == start or text[pos - 1] == "\n"


class LogCursor:
    """Delivers each line of a Domino log once, in order, even if the log is not append-only.

    ``on_notice(message)`` is told (once per kind) when the log had to be resynchronised; without
    it the message goes to the ``domino_orchestrate`` logger.

    Two ways to read a log: ``feed(text)`` takes the whole text at once; ``begin()`` returns a
    ``LogPass`` that takes it piece by piece as it arrives (nothing already delivered is kept, so
    memory is bounded by one piece and the newest lines). Both keep the same state.
    """

    def __init__(self, stream: str = "stdout", on_notice: Callable[[str], None] | None = None,
                 name: str = "The log") -> None:
        self._stream = stream
        self._name = name
        self._on_notice = on_notice
        self._offset = 0  # characters of the log text already delivered, always at a line start
        self._crc = 0  # checksum of those characters: any change to them is seen
        # The last delivered characters (at most ANCHOR_CHARS), and whether they begin at the
        # log's start: the anchor (its last lines) is cut from them when a resync needs it.
        self._tail = ""
        self._noticed: set[str] = set()
        self.delivered = 0
        #: How often the log was found not append-only (each time, not only the first).
        self.resyncs = 0
        self._finished = False

    @property
    def finished(self) -> bool:
        """Whether a final read was delivered (later reads deliver nothing)."""
        return self._finished

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
        if self._offset and (
            end - start < self._offset or _crc(text, start, start + self._offset) != self._crc
        ):
            self._offset = self._resync(text, start, end)
            self._crc = _crc(text, start, start + self._offset)
            self._tail = text[max(start, start + self._offset - ANCHOR_CHARS) : start + self._offset]
        if not final:
            end = text.rfind("\n", start + self._offset, end) + 1
        begin = start + self._offset
        if end <= begin:
            return
        self._offset = end - start
        self._crc = _crc(text, begin, end, self._crc)
        self._tail = text[max(start, end - ANCHOR_CHARS) : end]
        for line in _lines(text, begin, end, self._stream):
            self.delivered += 1
            yield line

    def begin(self, deliver: Callable[[LogLine], None], *, final: bool = False) -> LogPass:
        """Start reading the whole log again piece by piece: ``deliver`` gets each new line as
        soon as it is complete. See ``LogPass``."""
        return LogPass(self, deliver, final)

    def _anchor(self) -> tuple[str, bool]:
        """The last delivered lines (at most ``ANCHOR_LINES`` within ``ANCHOR_CHARS``) and whether
        the anchor begins at a line start."""
        tail = self._tail
        whole = self._offset <= ANCHOR_CHARS  # the tail is all of the delivered text
        cut, count = len(tail) - 1, 0  # from the newline ending the delivered text
        while count < ANCHOR_LINES:
            found = tail.rfind("\n", 0, cut)
            if found < 0:
                break
            cut, count = found, count + 1
        if count == ANCHOR_LINES or (count and not whole):
            return tail[cut + 1 :], True
        return tail, whole  # all of a short log, or the last characters of one huge line

    def _resync(self, text: str, start: int, end: int) -> int:
        """Where to resume in a log that changed under us: just after the longest run of the
        last delivered lines found in it, or its start when none is found."""
        self.resyncs += 1
        anchor, anchor_whole = self._anchor()
        cuts = [0] + [i + 1 for i, char in enumerate(anchor[:-1]) if char == "\n"]
        for cut in cuts:
            candidate = anchor[cut:]
            if not candidate.strip():
                continue
            needs_line_start = cut > 0 or anchor_whole
            pos = text.find(candidate, start, end)
            while pos >= 0 and needs_line_start and not _line_start(text, pos, start):
                pos = text.find(candidate, pos + 1, end)
            if pos >= 0:
                self._notice(
                    "resync",
                    f"{self._name} is not append-only (rotated, truncated or rewritten): "
                    "resumed after the last line already delivered; lines that changed before "
                    "it are not repeated.",
                )
                return pos + len(candidate) - start
        self._notice(
            "restart",
            f"{self._name} was replaced (rotated or truncated) and holds none of the lines "
            "already delivered: delivering it from its start; some lines may repeat, and lines "
            "written between two fetches may be missing.",
        )
        return 0

    def _notice(self, kind: str, message: str) -> None:
        if kind in self._noticed:
            return
        self._noticed.add(kind)
        if self._on_notice is None:
            log.warning("%s", message)
        else:
            self._on_notice(message)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


class LogPass:
    """One read of the whole log, fed piece by piece as it arrives (``feed``), then ``close``.

    It checks the part already delivered against the cursor's checksum as it streams past
    (without keeping it), then hands each new complete line to ``deliver`` at once, updating the
    cursor line by line: a read cut short (a dropped connection, an interrupt) leaves the cursor
    exactly after the last line delivered. If the delivered part changed (the log is not
    append-only), nothing is delivered and ``resync`` is set: the caller then feeds the whole
    text to ``LogCursor.feed``, which finds its place again by content.
    """

    def __init__(self, cursor: LogCursor, deliver: Callable[[LogLine], None], final: bool) -> None:
        self._cursor = cursor
        self._deliver = deliver
        self._final = final
        self._skip = cursor.finished
        self._known = cursor._offset  # what was delivered before this read, and its checksum
        self._known_crc = cursor._crc
        self._head: str | None = ""  # the start of the text until the <pre> tag is decided
        self._opened = False
        self._held = ""  # the last characters, kept back until the end is known
        self._seen = 0  # characters of the log's content handled so far
        self._crc = 0  # checksum of the known part seen so far
        self._carry = ""  # the start of a new line whose newline has not arrived yet
        #: Characters of the log text read (Domino's whole text, wrapper included).
        self.size = 0
        #: The delivered part changed: feed the whole text to ``LogCursor.feed`` instead.
        self.resync = False

    def feed(self, text: str) -> None:
        """Take the next piece of the log's text."""
        self.size += len(text)
        if self._skip or self.resync or not text:
            return
        if self._head is not None:
            head = self._head + text
            opened = _PRE_OPEN.match(head)
            if opened is None and _PRE_PARTIAL.match(head):
                self._head = head  # the <pre …> tag may still be arriving
                return
            self._head, self._opened = None, opened is not None
            text = head[opened.end() :] if opened else head
        if not self._opened:
            self._content(text)
            return
        held = self._held + text
        if len(held) <= _PRE_CLOSE_WINDOW:
            self._held = held
            return
        self._held = held[-_PRE_CLOSE_WINDOW:]
        self._content(held[:-_PRE_CLOSE_WINDOW])

    def close(self) -> None:
        """The whole text was read: deliver what was kept back (the last line, if ``final``)."""
        if self._skip or self.resync:
            return
        if self._head is not None:  # the text ended before the <pre> tag was complete
            head, self._head = self._head, None
            self._content(head)
        held = self._held
        tail = held.rfind("</pre>")
        if self._opened and tail >= 0 and not held[tail + 6 :].strip():
            held = held[:tail]
        self._content(held)
        if self.resync:
            return
        if self._seen < self._known:  # shorter than what was delivered: not append-only
            self.resync = True
            return
        if self._final:
            self._cursor._finished = True
            if self._carry:
                carry, self._carry = self._carry, ""
                self._commit(carry, [carry])

    def _content(self, text: str) -> None:
        """Handle the next characters of the log's content (wrapper removed), in order."""
        if self.resync or not text:
            return
        known = self._known
        if self._seen < known:
            take = min(len(text), known - self._seen)
            self._crc = zlib.crc32(_utf8(text[:take]), self._crc)
            self._seen += take
            if self._seen == known and self._crc != self._known_crc:
                self.resync = True
                return
            if take == len(text):
                return
            text = text[take:]
        self._seen += len(text)
        self._new(text)

    def _new(self, text: str) -> None:
        """New content: deliver every line it completes, and keep the unfinished last one."""
        carry = self._carry
        cut = text.rfind("\n") + 1
        if not cut:
            self._carry = carry + text
            return
        self._carry = text[cut:]
        block = carry + text[:cut] if carry else text[:cut]
        lines = block.split("\n")
        lines.pop()  # the empty string after the last newline
        self._commit(block, lines, complete=True)

    def _commit(self, block: str, lines: list[str], complete: bool = False) -> None:
        """Deliver ``lines`` (the lines of ``block``), advancing the cursor exactly as far as the
        lines handed out, even if a ``deliver`` call raises (an interrupt)."""
        cursor, stream, deliver = self._cursor, self._cursor._stream, self._deliver
        odd = _ODD.search(block) is not None
        done = 0
        try:
            for raw in lines:
                line = _line(raw, stream, odd)
                done += len(raw) + complete
                cursor.delivered += 1
                deliver(line)
        finally:
            if done:
                part = block[:done]
                cursor._offset += done
                cursor._crc = zlib.crc32(_utf8(part), cursor._crc)
                tail = cursor._tail + part if done < ANCHOR_CHARS else part
                cursor._tail = tail[-ANCHOR_CHARS:]
