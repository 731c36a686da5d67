"""What the CLI prints, made safe for a terminal: job output, Domino's words, and the log.

Everything that reaches the user's terminal from Domino (job lines, status strings, error
excerpts, log messages quoting a response) goes through ``safe_text`` first, so a job can never
drive the terminal: escape sequences (colours, OSC window titles and hyperlinks, cursor moves,
screen clears, device queries) are removed whole, so the text stays readable; any other control
character, 8-bit C1 control or bidirectional override is shown as a visible escape (``\\x0d``,
``\\u202e``); a lone surrogate becomes U+FFFD. Tabs are kept. The CLI's own status line (drawn by
rich: colours, width, ``NO_COLOR``) is the only escape sequence written, and only to a terminal.

Also here: the ``domino_orchestrate`` logger on stderr (``--verbose``, ``DOMINO_LOG_LEVEL``),
``Console``, the observer that prints a followed job, and ``rich_console`` for the commands' own
tables and coloured words. Text from Domino reaches rich only as ``rich.text.Text`` (never as
markup), after ``safe_text``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import threading
import time
from typing import Any, TextIO

__all__ = [
    "Console",
    "apply_log_level",
    "log_to_stderr",
    "one_line",
    "release_streams",
    "render",
    "rich_console",
    "robust_streams",
    "safe_text",
    "status_style",
]

log = logging.getLogger("domino_orchestrate")

# Whole escape sequences (ECMA-48): CSI, OSC / DCS / SOS / PM / APC strings ended by ST or BEL,
# and two-character escapes. An unterminated CSI or string is not matched: its ESC alone is shown.
_SEQUENCE = (
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1b[PX^_][^\x1b]*\x1b\\"
    r"|\x1b[ -/]*[0-OQ-WYZ\\`-~]"  # not [ ] P X ^ _: those open a CSI or a string
)
# Single characters a terminal acts on or that reorder what is shown: C0 but tab, DEL, C1, the bidi
# embedding/override/isolate controls ("Trojan Source"), and lone surrogates (unencodable).
_CONTROL = "[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
_UNSAFE = re.compile(f"{_SEQUENCE}|{_CONTROL}")


def _neutralise(match: re.Match[str]) -> str:
    found = match.group()
    if len(found) > 1:
        return ""  # a whole escape sequence: drop it, keep the text around it
    code = ord(found)
    if 0xD800 <= code <= 0xDFFF:
        return "\ufffd"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(text: str) -> str:
    """``text`` as the terminal must show it: no escape sequence, no control character but tab.

    A newline is a control character here: pass one line at a time.
    """
    return _UNSAFE.sub(_neutralise, text)


def one_line(text: str) -> str:
    """A message (often quoting a response body) as one safe line."""
    return " ".join(safe_text(part) for part in str(text).split("\n") if part.strip())


def robust_streams() -> None:
    """A character the terminal's encoding lacks is escaped, never a crash or a lost line."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            with contextlib.suppress(ValueError, io.UnsupportedOperation):  # a detached stream
                stream.reconfigure(errors="backslashreplace")


def release_streams() -> None:
    """Flush stdout and stderr now. One whose reader is gone (a pipe's reader left, the terminal
    was closed) is pointed at /dev/null, so the interpreter's last flush cannot fail and change
    the exit code the command chose."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


# --- logging -------------------------------------------------------------------------------------

def apply_log_level(verbose: int) -> None:
    """Set the ``domino_orchestrate`` logger's level: ``-v`` INFO, ``-vv`` DEBUG; without them
    ``DOMINO_LOG_LEVEL`` (python-domino's variable, read by the core's rule), else WARNING.

    Call again after building a client: resolving its config applies the variable again.
    Raises ``ConfigurationError`` naming the variable when its value is bad.
    """
    from domino_orchestrate.core.config import apply_log_level as apply_env_level

    if verbose:
        log.setLevel(logging.INFO if verbose == 1 else logging.DEBUG)
        return
    log.setLevel(logging.WARNING)
    apply_env_level()


class _Handler(logging.Handler):
    """``level: message`` on stderr, through the active console so a live status line is
    cleared first. Messages quote Domino's answers, so they are made safe like job output."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and log.isEnabledFor(logging.DEBUG):
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            lines = [safe_text(line) for line in message.split("\n")]
            text = f"{record.levelname.lower()}: " + "\n  ".join(lines)
            console = Console.active
            if console is not None:
                console.note(text, raw=True)
            else:
                with contextlib.suppress(OSError):  # stderr gone: nobody to tell
                    sys.stderr.write(text + "\n")
                    sys.stderr.flush()
        except Exception:  # pragma: no cover - logging must never fail the command
            self.handleError(record)


def log_to_stderr() -> None:
    """Send the ``domino_orchestrate`` logger to stderr (only: not also to the root logger); its
    level decides what is shown (``apply_log_level``)."""
    for handler in list(log.handlers):
        if isinstance(handler, _Handler):
            log.removeHandler(handler)
    log.addHandler(_Handler())
    log.propagate = False


# --- the console ---------------------------------------------------------------------------------

#: Colours of statuses on a terminal (colours only: under NO_COLOR the status line has no SGR).
_STATUS_STYLES = {"succeeded": "green", "failed": "red", "error": "red", "stopped": "red",
                  "running": "cyan", "submitting": "blue"}


def status_style(status: str) -> str:
    """The rich style of a Domino status word ("" for statuses without a colour)."""
    return _STATUS_STYLES.get(status.strip().lower(), "yellow" if status else "")


def rich_console(stream: TextIO, width: int | None = None) -> Any:
    """A rich console for ``stream``: styles and live drawing only when ``stream`` is a terminal
    (rich's rule: ``isatty``, ``TTY_COMPATIBLE``, ``FORCE_COLOR``), no colour under ``NO_COLOR``,
    plain text for a pipe or file. ``width`` fixes the width (default: the terminal's, 80 for a
    pipe). Print through ``render`` rather than with it: rich raises when its stream is gone."""
    from rich.console import Console as RichConsole

    return RichConsole(file=stream, highlight=False, emoji=False, markup=False,
                       soft_wrap=False, width=width)


def render(renderable: Any, stream: TextIO, *, width: int | None = None, **options: Any) -> str:
    """``renderable`` as rich would print it on ``stream`` (its colours, width, terminal or
    not), returned as a string, so the caller writes it and a closed terminal or a pipe whose
    reader left is handled where the caller handles it. ``options`` go to ``Console.print``."""
    import io

    from rich.console import Console as RichConsole

    target = rich_console(stream, width)
    buffer = io.StringIO()
    RichConsole(file=buffer, highlight=False, emoji=False, markup=False, soft_wrap=False,
                width=target.width, force_terminal=target.is_terminal,
                color_system=target.color_system, no_color=target.no_color,
                ).print(renderable, **options)
    return buffer.getvalue()


def _clear_line() -> str:
    from rich.control import Control
    from rich.segment import ControlType

    return str(Control((ControlType.CARRIAGE_RETURN,), (ControlType.ERASE_IN_LINE, 2)))


class Console:
    """An observer printing a followed job: its lines on stdout/stderr as they arrive, notes on
    stderr and, on a TTY, a live status line with the elapsed time. It remembers how the follow
    ended (``final``, ``error``) for the command's last word."""

    active: Console | None = None

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out, self.err = out, err
        self.live = bool(rich_console(err).is_interactive)
        self._clear_sequence = _clear_line()  # carriage return, erase the line
        self.status = "Submitting"
        self.job_id = ""
        self.started = time.monotonic()
        self.handle: Any = None
        self.final: Any = None
        self.error: BaseException | None = None
        self._gone: set[TextIO] = set()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> Console:
        Console.active = self
        if self.live:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._ticker:
            self._ticker.join(timeout=1)
        with self._lock:
            self._clear()
        Console.active = None

    def _clear(self) -> None:
        if self.live:
            self._write(self.err, self._clear_sequence)

    def _draw(self) -> None:
        """The status line, ``[Running] <job id> 01:23``, cut to the terminal's width (a wrapped
        line could not be cleared). Rich renders it into a string; ``_write`` sends it, so a
        terminal that went away is handled in one place."""
        from rich.text import Text

        elapsed = int(time.monotonic() - self.started)
        line = Text.assemble("[", (self.status, status_style(self.status)), "] ", self.job_id,
                             f" {elapsed // 60:02d}:{elapsed % 60:02d}")
        shown = render(line, self.err, end="", no_wrap=True, overflow="ellipsis", crop=True)
        self._write(self.err, self._clear_sequence + shown)

    def _tick(self) -> None:
        while not self._done.wait(0.5):
            with self._lock:
                self._draw()

    # observer methods
    def on_submitted(self, handle: Any, spec: Any) -> None:
        """Remember the job and say whether it was started or reattached to, with its URL."""
        self.handle = handle
        self.job_id = safe_text(str(handle.job_id))
        verb = "Reattached to" if handle.attached else "Started"
        url = f" {handle.url}" if handle.url else ""
        self.note(f"{verb} Domino {handle.kind} {handle.job_id}{url}")

    def on_status(self, snapshot: Any) -> None:
        """Show the new status: on the live status line, else as a line of its own."""
        self.status = safe_text(str(snapshot.raw_status or snapshot.status.value))
        if not self.live:
            self.note(f"status: {self.status}", raw=True)

    def _write(self, stream: TextIO, text: str) -> None:
        """Write, unless the stream's reader is gone (`run … | head`, a closed terminal): then
        stop writing to it and keep following the job; its verdict, and the stop an interrupt
        owes it, still matter."""
        if stream in self._gone:
            return
        try:
            stream.write(text)
            stream.flush()
        except OSError:
            self._gone.add(stream)

    def on_line(self, line: Any) -> None:
        """Print one line of the job's output (made safe) to stdout or stderr, as it came."""
        text = safe_text(line.text)
        with self._lock:
            self._clear()
            self._write(self.err if line.stream == "stderr" else self.out, text + "\n")
            if self.live:
                self._draw()

    def on_finished(self, snapshot: Any, error: BaseException | None) -> None:
        """Keep the job's last snapshot and the error the wait ended with, for the final note."""
        self.final, self.error = snapshot, error

    def note(self, message: str, *, raw: bool = False, style: str = "") -> None:
        """A line on stderr; ``raw`` means the caller already made it safe; ``style`` colours it
        on a terminal (rich style, e.g. "green")."""
        text = message if raw else one_line(message)
        if style and self.live:
            from rich.text import Text

            text = render(Text(text, style=style), self.err, end="", soft_wrap=True)
        with self._lock:
            self._clear()
            self._write(self.err, text + "\n")
            if self.live and not self._done.is_set():
                self._draw()
