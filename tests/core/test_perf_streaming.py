"""Streamed stdout (issue 18): the log is decoded as it arrives and only its new part is kept.

Both streaming pieces are fuzzed (hypothesis) against the whole-text code they replace on the
hot path, which stays the reference:

- ``api.StreamedObject`` fed a body in any chunking gives exactly ``decode_json``'s members and,
  for the streamed member, its text (escapes, surrogate pairs and lone surrogates, invalid UTF-8,
  BOMs, control characters, escapes and multi-byte characters split between reads); invalid JSON
  raises ``ValueError`` as ``decode_json`` does.
- ``LogCursor.begin()`` (a ``LogPass``) fed any snapshot sequence in any chunking delivers what
  ``LogCursor.feed`` delivers, line for line, with the same notices: when a snapshot is not
  append-only the pass delivers nothing and says ``resync``, and the whole text goes to ``feed``.
- A pass cut short by a raising ``deliver`` (an interrupt) leaves the cursor just after the last
  line handed out: the next read neither loses nor repeats a line.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domino_orchestrate.core.api import StreamedObject, decode_json
from domino_orchestrate.core.models import LogLine
from domino_orchestrate.core.stdout import LogCursor, parse_log

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PRE = "<pre style='white-space: pre-wrap;'>"


class Collect:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.closed = False

    def feed(self, text: str) -> None:
        assert not self.closed
        self.parts.append(text)

    def close(self) -> None:
        self.closed = True


def chunked(data: Any, cuts: list[int]) -> list[Any]:
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def stream_decode(body: bytes, cuts: list[int]) -> tuple[Any, str | None]:
    collected: list[Collect] = []

    def begin() -> Collect:
        collected.append(Collect())
        return collected[-1]

    decoder = StreamedObject("stdout", begin)
    for piece in chunked(body, cuts):
        decoder.feed(piece)
    members, consumer = decoder.close()
    if consumer is None:
        return members, None
    assert collected == [consumer] and consumer.closed
    return members, "".join(consumer.parts)


log_chars = st.sampled_from(
    ["a", "é", "→", "\n", "\r", '"', "\\", "/", "\x00", "\x1f", "\ud800", "\udfff", "😀", "\ufeff",
     "<pre>", "</pre>", "\\u", "&amp;", "\t", " "]
)
texts = st.lists(log_chars, max_size=30).map("".join)
small_values = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts
members_strategy = st.dictionaries(
    st.sampled_from(["setup", "status", "x", "std\u00f6ut", "stdout"]),
    small_values | st.lists(small_values, max_size=3) | st.dictionaries(texts, small_values,
                                                                        max_size=2),
    max_size=4,
)


def body_variants(members: dict[str, Any], ascii_only: bool, spaced: bool, bom: bool) -> bytes:
    text = json.dumps(members, ensure_ascii=ascii_only,
                      separators=(" , ", " : ") if spaced else (",", ":"))
    raw = text.encode("utf-8", "surrogatepass")
    return (b"\xef\xbb\xbf" if bom else b"") + (b" \n" if spaced else b"") + raw


@SETTINGS
@given(members=members_strategy, ascii_only=st.booleans(), spaced=st.booleans(),
       bom=st.booleans(), cuts=st.lists(st.integers(0, 400), max_size=12))
def test_streamed_object_decodes_like_decode_json_in_any_chunking(
    members: dict[str, Any], ascii_only: bool, spaced: bool, bom: bool, cuts: list[int]
) -> None:
    body = body_variants(members, ascii_only, spaced, bom)
    expected = decode_json(body)
    got, streamed = stream_decode(body, cuts)
    if isinstance(expected.get("stdout"), str):
        assert streamed == expected.pop("stdout")
    else:
        assert streamed is None
    assert got == expected


@SETTINGS
@given(body=st.binary(max_size=60) | st.lists(
    st.sampled_from([b'{', b'}', b'"stdout"', b'"a"', b':', b',', b'"', b'\\', b'u', b'd8', b'00',
                     b'1', b'[', b']', b'null', b' ', b'\xff', b'\xc3', b'\xa9', b'\\n', b'tru']),
    max_size=20).map(b"".join), cuts=st.lists(st.integers(0, 60), max_size=8))
def test_streamed_object_fails_where_decode_json_fails(body: bytes, cuts: list[int]) -> None:
    try:
        expected: Any = decode_json(body)
    except ValueError:
        expected = ValueError
    try:
        got, streamed = stream_decode(body, cuts)
    except ValueError:
        if expected is not ValueError:  # only a repeated "stdout" may be refused on its own
            assert isinstance(expected, dict) and body.count(b'"stdout"') > 1
        return
    assert expected is not ValueError
    if streamed is not None:
        got = {**got, "stdout": streamed}
    assert got == expected


# --- the log pass ----------------------------------------------------------------------------------

def read(cursor: LogCursor, text: str, final: bool, cuts: list[int]) -> list[LogLine]:
    """What a streamed read delivers (falling back to ``feed`` when it asks for a resync)."""
    out: list[LogLine] = []
    reading = cursor.begin(out.append, final=final)
    for piece in chunked(text, cuts):
        reading.feed(piece)
    reading.close()
    assert reading.size == len(text)
    if reading.resync:
        assert not out
        out = list(cursor.feed(text, final=final))
    return out


line_text = st.text(alphabet=st.sampled_from("ab <>&;é\t\x00\ud800\u2028"), max_size=6)
snapshots = st.lists(
    st.lists(st.sampled_from(["a", "b", "c", "", "a b", "\r"]), max_size=8).map(
        lambda ls: "".join(f"{x}\n" for x in ls))
    | st.text(alphabet=st.sampled_from("abc\n"), max_size=20),
    min_size=1, max_size=8,
)


@SETTINGS
@given(texts=snapshots, wrap=st.lists(st.sampled_from(["", PRE, " <PRE>", "<pre"]), min_size=8,
                                     max_size=8),
       cuts=st.lists(st.lists(st.integers(0, 80), max_size=6), min_size=8, max_size=8),
       final_at_end=st.booleans())
def test_streamed_pass_delivers_exactly_what_feed_delivers(
    texts: list[str], wrap: list[str], cuts: list[list[int]], final_at_end: bool
) -> None:
    said_stream: list[str] = []
    said_whole: list[str] = []
    streamed, whole = LogCursor(on_notice=said_stream.append), LogCursor(on_notice=said_whole.append)
    for index, text in enumerate(texts):
        final = final_at_end and index == len(texts) - 1
        body = wrap[index] + text + ("</pre>\n" if wrap[index].strip().startswith("<") else "")
        got = read(streamed, body, final, cuts[index])
        expected = list(whole.feed(body, final=final))
        assert got == expected, f"snapshot {index}"
        assert said_stream == said_whole
        assert (streamed._offset, streamed._crc, streamed.delivered, streamed.resyncs) == (
            whole._offset, whole._crc, whole.delivered, whole.resyncs)


@SETTINGS
@given(lines=st.lists(line_text, max_size=25), cuts=st.lists(st.integers(0, 400), max_size=12),
       pieces=st.lists(st.integers(0, 400), max_size=12))
def test_append_only_log_streamed_in_pieces_is_delivered_exactly_once(
    lines: list[str], cuts: list[int], pieces: list[int]
) -> None:
    log = "".join(f"{line}\n" for line in lines)
    said: list[str] = []
    cursor = LogCursor(on_notice=said.append)
    delivered: list[LogLine] = []
    for cut in sorted(min(cut, len(log)) for cut in cuts):
        delivered += read(cursor, PRE + log[:cut] + "</pre>", False, pieces)
    delivered += read(cursor, PRE + log + "</pre>", True, pieces)
    assert delivered == parse_log(log)
    assert not said and cursor.resyncs == 0


class Stop(BaseException):
    pass


@pytest.mark.parametrize("stop_after", [0, 1, 3, 7])
def test_a_pass_cut_short_resumes_after_the_last_line_handed_out(stop_after: int) -> None:
    log = "".join(f"line {i} <b>x</b>\n" for i in range(10))
    cursor = LogCursor()
    got: list[str] = []

    def deliver(line: LogLine) -> None:
        got.append(line.text)  # handed out: an interrupt while it is handled does not repeat it
        if len(got) == stop_after + 1:
            raise Stop

    reading = cursor.begin(deliver)
    with pytest.raises(Stop):
        for piece in chunked(PRE + log + "</pre>", [5, 40, 90, 150]):
            reading.feed(piece)
        reading.close()
    assert cursor.delivered == stop_after + 1
    rest = read(cursor, PRE + log + "more\n</pre>", True, [17])
    assert got + [line.text for line in rest] == [f"line {i} x" for i in range(10)] + ["more"]
    assert cursor.resyncs == 0


def test_pass_keeps_only_the_new_part() -> None:
    """The known part streams past without being kept: the pass's own buffers stay small."""
    old = "".join(f"old line {i}\n" for i in range(20_000))
    cursor = LogCursor()
    assert len(read(cursor, PRE + old + "</pre>", False, [])) == 20_000
    reading = cursor.begin(lambda line: None)
    biggest = 0
    text = PRE + old + "new\n</pre>"
    for start in range(0, len(text), 4096):
        reading.feed(text[start:start + 4096])
        biggest = max(biggest, len(reading._held) + len(reading._carry) + len(reading._head or ""))
    reading.close()
    assert cursor.delivered == 20_001 and not reading.resync
    assert biggest <= 4096 + 64
