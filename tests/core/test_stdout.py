"""Domino HTML log parsing and the incremental cursor (each line once, in order, nothing lost)."""

from __future__ import annotations

import html
import random

from domino_orchestrate.core import LogCursor, LogLine, parse_log, strip_html

PRE = (
    "<pre style='white-space: pre-wrap; white-space: -moz-pre-wrap; white-space: -pre-wrap; "
    "white-space: -o-pre-wrap; word-wrap: break-word; word-wrap: break-all;'>"
)


def render(lines: list[tuple[str, str]], trailing_newline: bool = True) -> str:
    parts = []
    for stream, text in lines:
        escaped = html.escape(text)
        parts.append(f'<span class="text-danger">{escaped}</span>' if stream == "stderr" else escaped)
    body = "\n".join(parts) + ("\n" if trailing_newline and parts else "")
    return PRE + body + "</pre>"


def test_span_is_fully_removed_unlike_python_domino_regex() -> None:
    assert strip_html("<span>hello</span>") == "hello"
    assert strip_html("a &lt;b&gt; &amp; &quot;c&quot;") == 'a <b> & "c"'


def test_parse_marks_text_danger_as_stderr_and_keeps_last_line_without_newline() -> None:
    text = render([("stdout", "one <x>"), ("stderr", "boom & bust"), ("stdout", "last")], False)
    assert parse_log(text) == [
        LogLine("one <x>"), LogLine("boom & bust", "stderr"), LogLine("last"),
    ]


def test_plain_strings_like_the_official_tests_use() -> None:
    assert parse_log("stdout output") == [LogLine("stdout output")]
    assert parse_log("") == []


def test_cursor_delivers_each_line_once_across_growing_responses() -> None:
    lines = [("stderr" if i % 7 == 0 else "stdout", f"line {i} <&>") for i in range(200)]
    cursor = LogCursor()
    delivered: list[LogLine] = []
    rng = random.Random(3)
    shown = 0
    while shown < len(lines):
        shown = min(len(lines), shown + rng.randint(0, 17))
        delivered += list(cursor.feed(render(lines[:shown])))
    delivered += list(cursor.feed(render(lines), final=True))
    assert [(line.stream, line.text) for line in delivered] == lines


def test_partial_last_line_is_held_until_final() -> None:
    cursor = LogCursor()
    assert list(cursor.feed(PRE + "a\nhalf")) == [LogLine("a")]
    assert list(cursor.feed(PRE + "a\nhalf")) == []
    assert list(cursor.feed(PRE + "a\nhalf line\nb")) == [LogLine("half line")]
    assert list(cursor.feed(PRE + "a\nhalf line\nb</pre>", final=True)) == [LogLine("b")]
    assert list(cursor.feed(PRE + "a\nhalf line\nb\nmore", final=True)) == []
    assert cursor.delivered == 3


def test_cursor_recovers_when_the_log_shrinks() -> None:
    cursor = LogCursor()
    assert len(list(cursor.feed(PRE + "x" * 50 + "\nb\n"))) == 2
    # A restarted server serving a different (shorter) body: skip by count, deliver only new lines.
    assert list(cursor.feed(PRE + "a\nb\nc\n")) == [LogLine("c")]
