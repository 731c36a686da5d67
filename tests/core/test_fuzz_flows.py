"""Property-based fuzzing (hypothesis) of what the flows read: response shapes and the log cursor.

- Any JSON value, as the answer to any request a flow reads, ends in a result or a typed
  ``DominoError``: never an AttributeError/KeyError/TypeError from inside the client.
- An append-only log, fetched as any sequence of growing snapshots (random chunking, partial last
  lines, CRLF, empty fetches, with or without Domino's ``<pre>`` wrapper), is delivered exactly:
  the lines of the final log, in order, none twice, no notice.
- Any sequence of snapshots at all: as long as the cursor said nothing, what it delivered is
  exactly the complete lines of the latest snapshot; no line is lost or repeated silently.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domino_orchestrate.core import (
    DominoConfig,
    DominoError,
    JobHandle,
    JobSpec,
    PollOptions,
    RunSpec,
    api,
)
from domino_orchestrate.core.api import ApiRequest, Sleep
from domino_orchestrate.core.flows import (
    Context,
    find_by_key_flow,
    get_flow,
    hardware_tiers_flow,
    list_flow,
    object_flow,
    project_id_flow,
    restart_flow,
    start_flow,
    stdout_flow,
    wait_flow,
)
from domino_orchestrate.core.observe import Observers
from domino_orchestrate.core.stdout import LogCursor, parse_log

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PRE = "<pre style='white-space: pre-wrap;'>"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["id", "runId", "jobs", "data", "statuses", "stdout",
                                       "setup", "status", "title", "executionStatus",
                                       "isCompleted", "hardwareTier", "name", "stageTime",
                                       "submissionTime", "hwtFlags", "number"]),
                      children, max_size=5),
    max_leaves=12,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def drive(flow: Any, body: Any, clock: Clock) -> Any:
    """Answer every request with ``body``; sleeps advance the fake clock."""
    try:
        step = next(flow)
        while True:
            if isinstance(step, Sleep):
                clock.now += step.seconds
                step = flow.send(None)
            else:
                assert isinstance(step, ApiRequest)
                step = flow.send(body)
    except StopIteration as done:
        return done.value


def context(clock: Clock) -> Context:
    return Context(DominoConfig.resolve("http://d", "o/p", api_key="k", env={}), clock=clock)


FLOWS = {
    "project": lambda c: project_id_flow(c),
    "job": lambda c: get_flow(c, JobHandle("j1")),
    "run": lambda c: get_flow(c, JobHandle("r1", kind="run")),
    "tiers": lambda c: hardware_tiers_flow(c),
    "stdout": lambda c: stdout_flow(c, "j1"),
    "find jobs": lambda c: find_by_key_flow(c, "job", "k"),
    "find runs": lambda c: find_by_key_flow(c, "run", "k"),
    "restart": lambda c: restart_flow(c, "j1", True),
    "version": lambda c: object_flow(api.version()),
    "commits": lambda c: list_flow(api.commits("o", "p")),
    "start job": lambda c: start_flow(c, JobSpec(command="x", hardware_tier_name="small"), "k",
                                      Observers()),
    "start run": lambda c: start_flow(c, RunSpec(command=("x",)), "k", Observers()),
    "wait": lambda c: wait_flow(c, JobHandle("j1"), PollOptions(max_poll_time=30, retry_count=1),
                                Observers()),
}


@SETTINGS
@given(name=st.sampled_from(sorted(FLOWS)), body=json_values)
def test_any_json_shape_ends_in_a_result_or_a_typed_domino_error(name: str, body: Any) -> None:
    clock = Clock()
    with contextlib.suppress(DominoError):
        drive(FLOWS[name](context(clock)), body, clock)


# --- the log cursor ------------------------------------------------------------------------------

line_text = st.text(alphabet=st.sampled_from("ab <>&;é\t\x00\ud800\u2028"), max_size=6)


def render(lines: list[str], endings: list[str]) -> str:
    return "".join(text + end for text, end in zip(lines, endings, strict=True))


@SETTINGS
@given(
    lines=st.lists(line_text, max_size=25),
    crlf=st.lists(st.booleans(), min_size=25, max_size=25),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
    wrap=st.booleans(),
    final_newline=st.booleans(),
)
def test_append_only_log_is_delivered_exactly_once_in_order(
    lines: list[str], crlf: list[bool], cuts: list[int], wrap: bool, final_newline: bool
) -> None:
    endings = ["\r\n" if flag else "\n" for flag in crlf[: len(lines)]]
    if lines and not final_newline:
        endings[-1] = ""
    log = render(lines, endings)
    said: list[str] = []
    cursor = LogCursor(on_notice=said.append)
    delivered = []
    for cut in sorted(min(cut, len(log)) for cut in cuts):  # growing snapshots, repeats = empty
        snapshot = log[:cut]
        delivered += list(cursor.feed(PRE + snapshot + "</pre>" if wrap else snapshot))
    delivered += list(cursor.feed(PRE + log + "</pre>" if wrap else log, final=True))
    assert delivered == parse_log(log)
    assert not said and cursor.resyncs == 0


snapshots = st.lists(
    st.lists(st.sampled_from(["a", "b", "c", "", "a b"]), max_size=8).map(
        lambda ls: "".join(f"{x}\n" for x in ls)
    )
    | st.text(alphabet=st.sampled_from("abc\n"), max_size=20),
    min_size=1, max_size=8,
)


def complete_lines(text: str) -> list[str]:
    return [line.text for line in parse_log(text[: text.rfind("\n") + 1])]


@SETTINGS
@given(texts=snapshots)
def test_no_line_of_any_snapshot_is_lost_or_repeated_without_a_notice(texts: list[str]) -> None:
    said: list[str] = []
    cursor = LogCursor(on_notice=said.append)
    delivered: list[str] = []
    for index, text in enumerate(texts):
        final = index == len(texts) - 1
        delivered += [line.text for line in cursor.feed(text, final=final)]
        if said:
            return  # resynchronised, and said so: the rest is best effort
        expected = [line.text for line in parse_log(text)] if final else complete_lines(text)
        assert delivered == expected, f"silent divergence after snapshot {index}"
