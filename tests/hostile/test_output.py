"""Issue 13, lost or wrong output and wrong shapes, against the hostile server with both clients:
odd characters keep their line, a rotated log is resynchronised (and said once), stdout trouble
never ends a wait, a completed job with an unknown status ends the wait, wrong-shaped JSON is one
typed error, a start answered with a list is not orphaned, and an interrupt's stop delivers the
output printed before it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from domino_orchestrate.core import (
    AsyncDominoClient,
    DominoClient,
    InvalidResponseError,
    JobFailedError,
    LogLine,
    PollOptions,
    RetryPolicy,
)

from .server import HostileServer, Received, Reply, job_body, json_reply

PROJECT = "alice/churn"
KEY = "hostile-output-api-key-0123456789"
QUICK = RetryPolicy(max_retries=2, initial_wait=0.01, max_wait=0.05, max_retry_after=0.1)
FAST = PollOptions(poll_freq=0.1, initial_interval=0.05, log_interval=0.01, max_poll_time=30,
                   stop_timeout=5)


class Seen:
    """What reaches the orchestrator's log: lines and notices."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.notices: list[str] = []

    def on_line(self, line: LogLine) -> None:
        self.lines.append(line.text)

    def on_notice(self, level: int, message: str) -> None:
        self.notices.append(message)


def call(kind: str, server: HostileServer, method: str, *args: Any, **kwargs: Any) -> Any:
    """``client.method(*args, **kwargs)`` with a fresh sync or async client."""
    options = {"api_key": KEY, "retry_policy": QUICK}
    if kind == "sync":
        with DominoClient(server.url, PROJECT, **options) as client:
            return getattr(client, method)(*args, **kwargs)

    async def go() -> Any:
        async with AsyncDominoClient(server.url, PROJECT, **options) as client:
            return await getattr(client, method)(*args, **kwargs)

    return asyncio.run(go())


both = pytest.mark.parametrize("kind", ["sync", "async"])


def job_id_of(server: HostileServer) -> str:
    (job_id,) = server.domino.jobs
    return job_id


@both
def test_lone_surrogate_and_control_characters_keep_their_line(kind: str, hostile: HostileServer) -> None:
    hostile.domino.stdout = "ok\nbad \ud800 and \x00 and \u2028 here\nend\n"
    seen = Seen()
    call(kind, hostile, "run_job", "python x.py", FAST, observers=[seen])
    assert seen.lines == ["ok", "bad \ufffd and \ufffd and \ufffd here", "end"]
    for text in seen.lines:
        text.encode("utf-8")  # what print, logging and JSON do downstream
    fetched = call(kind, hostile, "stdout", job_id_of(hostile))
    assert [line.text for line in fetched] == seen.lines


def stdout_sequence(server: HostileServer, texts: list[str]) -> None:
    """Each stdout GET gets the next text; the last one sticks."""
    queue = list(texts)

    def reply(req: Received) -> Reply | None:
        if not req.path.endswith("/stdout"):
            return None
        text = queue.pop(0) if len(queue) > 1 else queue[0]
        return json_reply({"setup": "", "stdout": text})

    server.on("GET", "/v1/projects/", reply)


@both
def test_rotated_log_is_resynchronised_on_content_and_said_once(kind: str, hostile: HostileServer) -> None:
    hostile.domino.statuses = ["Running"] * 8 + ["Succeeded"]
    stdout_sequence(hostile, ["l1\nl2\nl3\n", "l3\nl4\n", "l3\nl4\nl5\n", "l4\nl5\nl6\n"])
    seen = Seen()
    call(kind, hostile, "run_job", "python x.py", FAST, observers=[seen])
    assert seen.lines == ["l1", "l2", "l3", "l4", "l5", "l6"]
    resynced = [n for n in seen.notices if "not append-only" in n]
    assert len(resynced) == 1 and job_id_of(hostile) in resynced[0]


@both
def test_stdout_error_while_running_neither_ends_the_wait_nor_changes_the_verdict(
    kind: str, hostile: HostileServer
) -> None:
    hostile.domino.statuses = ["Running"] * 6 + ["Succeeded"]
    hostile.domino.stdout = "first\nsecond\n"

    def not_yet(req: Received) -> Reply | None:
        job = hostile.domino.jobs.get(req.path.split("/")[-2])
        if req.path.endswith("/stdout") and job and not job["statuses"]["isCompleted"]:
            return json_reply({"message": "stdout not available"}, 404)
        return None

    hostile.on("GET", "/v1/projects/", not_yet)
    seen = Seen()
    final = call(kind, hostile, "run_job", "python x.py", FAST, observers=[seen])
    assert final.status.value == "Succeeded"
    assert seen.lines == ["first", "second"]
    assert len([n for n in seen.notices if "Could not fetch the output" in n]) == 1


def completed_as(server: HostileServer, raw: Any) -> None:
    """Jobs report ``raw`` as their status with ``isCompleted`` true after the first poll."""
    polls: dict[str, int] = {}

    def reply(req: Received) -> Reply | None:
        job_id = req.path.rsplit("/", 1)[1]
        job = server.domino.jobs.get(job_id)
        if job is None or req.path.count("/") != 3:
            return None
        polls[job_id] = polls.get(job_id, 0) + 1
        body = job_body(job_id, "Running", server.domino.project_id, job["title"])
        if polls[job_id] > 1:
            body["statuses"].update(executionStatus=raw, isCompleted=True)
        return json_reply(body)

    server.on("GET", "/v4/jobs/", reply)


@both
@pytest.mark.parametrize("raw", ["Completed", None])
def test_completed_job_with_an_unknown_status_ends_the_wait(kind: str, raw: Any,
                                                            hostile: HostileServer) -> None:
    completed_as(hostile, raw)
    seen = Seen()
    options = PollOptions(poll_freq=0.1, initial_interval=0.05, max_poll_time=3)
    with pytest.raises(JobFailedError) as caught:
        call(kind, hostile, "run_job", "python x.py", options, observers=[seen])
    message = str(caught.value)
    assert repr(raw or "unknown") in message and "counted as a failure" in message
    assert "(last status )" not in message
    assert any("does not know" in n for n in seen.notices)
    assert not hostile.requests_to("POST", "/v4/jobs/stop"), "a finished job is never 'stopped'"


@both
@pytest.mark.parametrize("body", [[], None, {"id": "x", "statuses": "Running"}, {"statuses": {}}])
def test_wrong_shaped_status_is_one_typed_error_naming_the_endpoint(kind: str, body: Any,
                                                                   hostile: HostileServer) -> None:
    hostile.on("GET", "/v4/jobs/", lambda req: json_reply(body) if req.path.count("/") == 3 else None)
    with pytest.raises(InvalidResponseError) as caught:
        call(kind, hostile, "run_job", "python x.py", PollOptions(retry_count=0))
    assert caught.value.path.startswith("/v4/jobs/") and "/v4/jobs/" in str(caught.value)


@both
def test_start_answered_with_a_list_finds_the_job_instead_of_orphaning_it(
    kind: str, hostile: HostileServer
) -> None:
    def as_list(req: Received) -> Reply:
        created = hostile.domino.handle(req)
        assert created is not None
        return json_reply([json.loads(created.body_bytes())])

    hostile.on("POST", "/v4/jobs/start", as_list)
    final = call(kind, hostile, "run_job", "python x.py", FAST)
    assert final.status.value == "Succeeded" and final.job_id == job_id_of(hostile)
    assert len(hostile.requests_to("POST", "/v4/jobs/start")) == 1


class InterruptedAtFirstLine(Seen):
    """Raises ``interrupt`` (a BaseException, as a kill signal or a cancellation does) when the
    first line arrives: the wait is interrupted while the job still runs."""

    def __init__(self, interrupt: Callable[[], BaseException]) -> None:
        super().__init__()
        self.interrupt = interrupt

    def on_line(self, line: LogLine) -> None:
        super().on_line(line)
        if len(self.lines) == 1:
            raise self.interrupt()


def output_grows_at_stop(server: HostileServer) -> None:
    server.domino.statuses = ["Running"]
    server.domino.stdout = "a\n"

    def at_stop(req: Received) -> None:
        server.domino.stdout = "a\nb printed before the stop\n"
        return None

    server.on("POST", "/v4/jobs/stop", at_stop)


def test_interrupt_stop_delivers_output_printed_before_the_stop_sync(hostile: HostileServer) -> None:
    output_grows_at_stop(hostile)
    seen = InterruptedAtFirstLine(KeyboardInterrupt)
    with DominoClient(hostile.url, PROJECT, api_key=KEY, retry_policy=QUICK) as client:
        handle = client.start_job("python x.py")
        with pytest.raises(KeyboardInterrupt):
            client.wait(handle, FAST, observers=[seen])
    assert seen.lines == ["a", "b printed before the stop"]
    assert hostile.domino.jobs[handle.job_id]["statuses"]["executionStatus"] == "Stopped"


def test_interrupt_stop_delivers_output_printed_before_the_stop_async(hostile: HostileServer) -> None:
    output_grows_at_stop(hostile)
    seen = InterruptedAtFirstLine(asyncio.CancelledError)

    async def go() -> str:
        async with AsyncDominoClient(hostile.url, PROJECT, api_key=KEY, retry_policy=QUICK) as client:
            handle = await client.start_job("python x.py")
            with pytest.raises(asyncio.CancelledError):
                await client.wait(handle, FAST, observers=[seen])
            return handle.job_id

    job_id = asyncio.run(go())
    assert seen.lines == ["a", "b printed before the stop"]
    assert hostile.domino.jobs[job_id]["statuses"]["executionStatus"] == "Stopped"


def test_stop_decided_after_the_interrupt_still_delivers_the_rest(hostile: HostileServer) -> None:
    """Dagster's path: the wait leaves the job running, the integration stops it afterwards."""
    output_grows_at_stop(hostile)
    seen = InterruptedAtFirstLine(KeyboardInterrupt)
    with DominoClient(hostile.url, PROJECT, api_key=KEY, retry_policy=QUICK) as client:
        handle = client.start_job("python x.py")
        keep_running = PollOptions(**{**FAST.to_dict(), "stop_on_interrupt": False})
        with pytest.raises(KeyboardInterrupt) as caught:
            client.wait(handle, keep_running, observers=[seen])
        assert not hostile.requests_to("POST", "/v4/jobs/stop")
        client._stop_after_interrupt(handle, FAST, caught.value, [seen])
    assert seen.lines == ["a", "b printed before the stop"]
