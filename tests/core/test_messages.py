"""Pipes messages read out of a job's stdout: the parser, positions and the reattach ledger, and a
real dagster-pipes writer inside a sandbox job followed by both drivers."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
from dagster_pipes import PIPES_PROTOCOL_VERSION_FIELD, decode_param
from hypothesis import given, settings
from hypothesis import strategies as st

from domino_orchestrate.core import ConfigurationError, JobFailedError, LogLine, PollOptions
from domino_orchestrate.core.messages import (
    MessageLedger,
    MessageReader,
    parse_message,
    pipes_arguments,
    with_arguments,
)

FAST = PollOptions(poll_freq=0.2, initial_interval=0.05, max_poll_time=60)


def pipes_line(method: str, params: Any) -> str:
    return json.dumps({PIPES_PROTOCOL_VERSION_FIELD: "0.1", "method": method, "params": params})


# --- the parser -------------------------------------------------------------------------------


def test_parses_what_dagster_pipes_writes() -> None:
    line = pipes_line("report_asset_materialization", {"asset_key": "orders", "metadata": {
        "rows": {"raw_value": 42, "type": "int"}}})
    found = parse_message(line)
    assert found is not None
    assert found["method"] == "report_asset_materialization"
    assert found["params"]["metadata"]["rows"]["raw_value"] == 42


@pytest.mark.parametrize("text", [
    "",
    "plain output",
    '{"method": "log", "params": {}}',  # no version field: someone's own JSON
    '{"__dagster_pipes_version": "0.1", "method": "log", "params": []}',  # params not an object
    '{"__dagster_pipes_version": 1, "method": "log", "params": null}',  # version not a string
    '{"__dagster_pipes_version": "0.1", "method": "", "params": null}',
    '{"__dagster_pipes_version": "0.1", "method": "log", "params": null',  # cut short
    '{"__dagster_pipes_version": "0.1", "method": "log", "params": null} trailing',
    '["__dagster_pipes_version"]',
    "{" * 5000 + '"__dagster_pipes_version"',
])
def test_anything_else_is_plain_output(text: str) -> None:
    assert parse_message(text) is None


def test_output_printed_without_a_newline_before_a_message_is_tolerated() -> None:
    found = parse_message("progress 99%" + pipes_line("log", {"message": "hi", "level": "INFO"}))
    assert found is not None and found["params"]["message"] == "hi"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_garbage_never_raises(text: str) -> None:
    found = parse_message(text)
    assert found is None or isinstance(found["method"], str)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1), st.dictionaries(st.text(), json_values, max_size=4),
       st.text().filter(lambda t: "{" not in t and "\n" not in t))
def test_every_message_round_trips_even_after_garbage(method: str, params: dict[str, Any],
                                                       prefix: str) -> None:
    found = parse_message(prefix + pipes_line(method, params))
    assert found is not None
    assert (found["method"], found["params"]) == (method, params)


# --- positions and the ledger --------------------------------------------------------------------


def lines() -> list[LogLine]:
    return [
        LogLine("starting"),
        LogLine(pipes_line("opened", {})),
        LogLine("a warning", "stderr"),
        LogLine("setup noise " + pipes_line("log", {}), "setup"),  # the setup log is not counted
        LogLine(pipes_line("report_custom_message", {"payload": 1})),
    ]


def test_positions_are_line_numbers_of_the_job_log() -> None:
    reader = MessageReader("j1")
    found = [m for m in map(reader.feed, lines()) if m is not None]
    assert [(m.method, m.position) for m in found] == [("opened", 1), ("report_custom_message", 3)]
    assert found[1].to_pipes()["params"] == {"payload": 1}
    assert found[1].key == ("j1", 3)


def test_a_reattach_with_the_same_ledger_skips_handled_messages() -> None:
    ledger = MessageLedger()
    first = [m for m in map(MessageReader("j1", ledger).feed, lines()) if m is not None]
    again = MessageReader("j1", ledger)
    assert [m for m in map(again.feed, lines()) if m is not None] == []
    assert again.skipped == 2 == len(first)
    # Another job with the same output is another set of messages.
    assert len([m for m in map(MessageReader("j2", ledger).feed, lines()) if m]) == 2
    # Released keys (an effect that was lost) are applied again.
    ledger.release([first[1].key])
    assert [m.method for m in map(MessageReader("j1", ledger).feed, lines()) if m] == [
        "report_custom_message"]


def test_arguments_decode_with_dagster_pipes_and_keep_the_command() -> None:
    args = pipes_arguments({"run_id": "r1", "extras": {"a": 1}})
    command = with_arguments("python train.py --lr 0.1", args)
    assert command.startswith("python train.py --lr 0.1 --dagster-pipes-context ")
    words = shlex.split(command)
    assert decode_param(words[words.index("--dagster-pipes-context") + 1]) == {
        "data": {"run_id": "r1", "extras": {"a": 1}}}
    assert decode_param(words[-1]) == {"stdio": "stdout"}
    with pytest.raises(ConfigurationError, match="ends with an operator"):
        with_arguments("python train.py &", args)


# --- a real dagster-pipes writer inside a sandbox job ---------------------------------------------

JOB = """
import sys
from dagster_pipes import PipesCliArgsParamsLoader, open_dagster_pipes
print("before pipes")
with open_dagster_pipes(params_loader=PipesCliArgsParamsLoader()) as pipes:
    pipes.log.info("hello from the job")
    pipes.report_asset_materialization(metadata={"rows": 42})
    pipes.report_custom_message({"auc": 0.91})
print("after pipes")
sys.exit(int(sys.argv[1]))
"""

CONTEXT = {"asset_keys": ["orders"], "code_version_by_asset_key": None,
           "provenance_by_asset_key": None, "partition_key": None, "partition_key_range": None,
           "partition_time_window": None, "run_id": "r1", "job_name": "j", "retry_number": 0,
           "extras": {}}


class Collect:
    def __init__(self, ledger: MessageLedger | None = None) -> None:
        self.message_ledger = ledger or MessageLedger()
        self.messages: list[Any] = []
        self.lines: list[str] = []

    def on_message(self, message: Any) -> None:
        self.messages.append(message)

    def on_line(self, line: LogLine) -> None:
        self.lines.append(line.text)


def command(tmp_path: Path, exit_code: int = 0) -> str:
    script = tmp_path / "job.py"
    script.write_text(JOB)
    return with_arguments(f"{shlex.quote(sys.executable)} {script} {exit_code}",
                          pipes_arguments(CONTEXT))


def test_messages_from_a_real_pipes_job_reach_observers_once(make_client: Any,
                                                             tmp_path: Path) -> None:
    client = make_client()
    first = Collect()
    handle = client.start_job(command(tmp_path))
    client.wait(handle, FAST, observers=[first])
    methods = [m.method for m in first.messages]
    assert methods == ["opened", "log", "report_asset_materialization", "report_custom_message",
                       "closed"]
    materialized = first.messages[2]
    assert materialized.params["metadata"]["rows"]["raw_value"] == 42
    assert first.lines[materialized.position] == json.dumps(materialized.to_pipes())
    assert "before pipes" in first.lines and "after pipes" in first.lines
    # A reattach (a retry following the same job) with the same ledger applies nothing again.
    again = Collect(first.message_ledger)
    client.wait(handle, FAST, observers=[again])
    assert again.messages == [] and again.lines == first.lines


def test_stream_logs_false_still_delivers_the_output_once_at_the_end(make_client: Any,
                                                                      tmp_path: Path) -> None:
    client = make_client()
    quiet = PollOptions(poll_freq=0.2, initial_interval=0.05, max_poll_time=60, stream_logs=False)
    ok = Collect()
    client.run_job(command(tmp_path), quiet, observers=[ok])
    assert "after pipes" in ok.lines and len(ok.messages) == 5
    failed = Collect()
    with pytest.raises(JobFailedError) as caught:
        client.run_job(command(tmp_path, exit_code=3), quiet, observers=[failed])
    assert "after pipes" in failed.lines
    assert "after pipes" in caught.value.stdout_tail


# --- the shared mappings: one report, few log calls -----------------------------------------------


def test_collector_reports_plain_values_and_the_result_is_not_a_lineage_report() -> None:
    from domino_orchestrate.core.messages import MessageCollector, describe

    said: list[str | None] = []
    collector = MessageCollector(MessageLedger(), on_report=lambda m, line: said.append(line))
    reader = MessageReader("j9", collector.message_ledger)
    for text in [
        pipes_line("report_asset_materialization", {"asset_key": "orders", "data_version": None,
                   "metadata": {"rows": {"raw_value": 42, "type": "int"}}}),
        pipes_line("report_custom_message", {"payload": {"auc": 0.91}}),
        pipes_line("report_custom_message", {"payload": {"domino_orchestrate": {"metrics": {}}}}),
        pipes_line("closed", {}),
    ]:
        found = reader.feed(LogLine(text))
        assert found is not None
        collector.on_message(found)
    assert collector.report()["materializations"] == [
        {"asset_key": "orders", "data_version": None, "metadata": {"rows": 42}}]
    assert collector.result == {"auc": 0.91}  # the lineage report after it is not the result
    assert said[0] == "Domino job j9 reported a materialization of orders: rows=42"
    assert said[-1] is None  # the protocol's own messages say nothing
    opened = MessageReader("j9").feed(LogLine(pipes_line("opened", {})))
    assert opened is not None and describe(opened) is None


def test_line_batcher_logs_small_fetches_line_by_line_and_big_ones_in_one_call() -> None:
    from domino_orchestrate.core.observe import LINES_PER_CALL, LineBatcher

    calls: list[tuple[str, str]] = []
    batch = LineBatcher(lambda stream, text: calls.append((stream, text)), quote=3)
    for i in range(LINES_PER_CALL):
        batch.on_line(LogLine(f"small {i}"))
    batch.on_fetched()
    assert len(calls) == LINES_PER_CALL
    calls.clear()
    for i in range(1000):
        batch.on_line(LogLine(f"big {i}", "stderr" if i == 7 else "stdout"))
    batch.on_finished(None, None)  # the end flushes what is left
    assert calls == [("stdout", "999 lines of Domino stdout; the last 3:\nbig 997\nbig 998\nbig 999"),
                     ("stderr", "1 line of Domino stderr:\nbig 7")]
