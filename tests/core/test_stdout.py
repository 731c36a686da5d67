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


# --- issue 13: odd characters never cost a line; a log that is not append-only is resynchronised


def test_lone_surrogates_and_odd_controls_are_replaced_and_the_line_kept() -> None:
    odd = "a\ud800b\x00c\x0bd\x0ce\x1cf\x85g\u2028h\u2029i\x7fj"
    (line,) = parse_log(odd + "\n")
    assert line.text == "a\ufffdb\ufffdc\ufffdd\ufffde\ufffdf\ufffdg\ufffdh\ufffdi\ufffdj"
    line.text.encode("utf-8")  # a lone surrogate would raise here (and in print, logging, json)
    assert line.text.splitlines() == [line.text], "nothing another tool reads as a line break"
    assert [x.text for x in parse_log("plain\nan entity &#x2028; too\n")] == ["plain", "an entity \ufffd too"]
    # Tabs, ANSI colours (ESC) and a progress bar's carriage returns are the job's own output.
    assert parse_log("\x1b[31mred\x1b[0m\tx\r50%\r100%\n")[0].text == "\x1b[31mred\x1b[0m\tx\r50%\r100%"


def notices_of(cursor_notices: list[str]) -> LogCursor:
    return LogCursor(on_notice=cursor_notices.append)


def test_shrinking_log_is_resynchronised_on_content_and_said_once() -> None:
    said: list[str] = []
    cursor = notices_of(said)
    assert [x.text for x in cursor.feed("one\ntwo\nthree\n")] == ["one", "two", "three"]
    # Rotated to a shorter log that still holds the last delivered lines: continue after them.
    assert [x.text for x in cursor.feed("two\nthree\nfour\n")] == ["four"]
    assert [x.text for x in cursor.feed("three\nfour\nfive\n")] == ["five"]
    assert len(said) == 1 and "not append-only" in said[0]
    assert cursor.resyncs == 2


def test_rolling_window_of_the_same_length_is_not_mistaken_for_growth() -> None:
    # A character count alone sees "same length, nothing new" and loses "d"; or, after a longer
    # line, skips by length into the middle of the new lines.
    said: list[str] = []
    cursor = notices_of(said)
    assert [x.text for x in cursor.feed("a1\nb2\nc3\n")] == ["a1", "b2", "c3"]
    assert [x.text for x in cursor.feed("b2\nc3\nd4\n")] == ["d4"]
    assert [x.text for x in cursor.feed("d4\ne5\nf6\n", final=True)] == ["e5", "f6"]
    assert said


def test_earlier_part_rewritten_is_detected_even_when_the_log_grows() -> None:
    said: list[str] = []
    cursor = notices_of(said)
    list(cursor.feed("x\ny\n"))
    # Same length prefix, other content, then growth: without a content check this is silent.
    assert [x.text for x in cursor.feed("X\ny\nz\n")] == ["z"]
    assert said and "not repeated" in said[0]


def test_truncated_log_with_nothing_known_is_delivered_from_its_start_with_a_notice() -> None:
    said: list[str] = []
    cursor = notices_of(said)
    list(cursor.feed("first\nsecond\n"))
    assert [x.text for x in cursor.feed("new 1\nnew 2\n")] == ["new 1", "new 2"]
    assert len(said) == 1 and "from its start" in said[0]
    assert [x.text for x in cursor.feed("new 1\nnew 2\nnew 3\n")] == ["new 3"]
    assert len(said) == 1, "append-only again: nothing more to say"


def test_append_only_log_is_never_reported() -> None:
    said: list[str] = []
    cursor = notices_of(said)
    text = ""
    for i in range(50):
        text += f"line {i}\r\n"
        list(cursor.feed(PRE + text))
    assert cursor.delivered == 50 and not said and cursor.resyncs == 0
