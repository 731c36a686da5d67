"""``safe_text``, the one function every job line and Domino message passes through before it
reaches the terminal (the subprocess tests show it is used; these pin what it does)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domino_orchestrate._terminal import one_line, safe_text

TERMINAL_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


@pytest.mark.parametrize(("raw", "shown"), [
    ("plain text, caf\u00e9, \u65e5\u672c, emoji \U0001f600", None),  # unchanged
    ("col1\tcol2", None),  # tabs kept
    ("\x1b[1;31mbold red\x1b[0m", "bold red"),  # SGR removed whole
    ("\x1b]0;new title\x07after", "after"),  # OSC ended by BEL
    ("\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\", "click"),  # OSC 8 hyperlink
    ("\x1bP+q544e\x1b\\x", "x"),  # DCS query (terminal answers into stdin)
    ("a\x1b[2J\x1b[Hb", "ab"),  # clear screen, cursor home
    ("keep\x1b7\x1b8\x1bcgoing", "keepgoing"),  # two-character escapes (save, restore, reset)
    ("\x1b]0;unterminated", "\\x1b]0;unterminated"),  # no terminator: only ESC neutralised
    ("lone \x1b", "lone \\x1b"),
    ("half \x1b[31", "half \\x1b[31"),  # an unterminated CSI
    ("nul\x00bel\x07bs\x08del\x7f", "nul\\x00bel\\x07bs\\x08del\\x7f"),
    ("safe\rrm -rf /", "safe\\x0drm -rf /"),  # a CR cannot hide what came before it
    ("c1 \x9b31m \x9d0;t\x9c", "c1 \\x9b31m \\x9d0;t\\x9c"),  # 8-bit C1 controls
    ("abc\u202edcba\u2066x\u2069", "abc\\u202edcba\\u2066x\\u2069"),  # bidi overrides, isolates
    ("lone \ud800 and \udfff", "lone \ufffd and \ufffd"),
])
def test_safe_text(raw: str, shown: str | None) -> None:
    assert safe_text(raw) == (raw if shown is None else shown)


def test_one_line_joins_lines_and_neutralises_each() -> None:
    assert one_line("first\n\x1b[31msecond\x1b[0m\r\n\nthird\x07") == "first second\\x0d third\\x07"


@given(st.text(alphabet=st.characters(codec=None, exclude_categories=())))
def test_nothing_a_terminal_acts_on_survives(raw: str) -> None:
    shown = safe_text(raw)
    assert not TERMINAL_CONTROL.search(shown)
    assert "\x1b" not in shown
    shown.encode("utf-8")  # always encodable


BIDI = "".join(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))


@given(st.text(alphabet=st.characters(exclude_categories=("Cc", "Cs"), exclude_characters=BIDI)))
def test_text_without_controls_is_unchanged(raw: str) -> None:
    assert safe_text(raw) == raw
