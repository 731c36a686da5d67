"""The async transport's own HTTP/1.1 connections (httptools, core/transport.py) against a raw
loopback server that answers exactly the bytes each test gives it: message framing (no length,
informational answers, a truncated body), when a connection may be reused (never after
``Connection: close`` or bytes nobody asked for), and where the body's decoder runs (in the
waiting task: the observers it calls see that task's context variables and what they raise
reaches the wait)."""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import Callable, Iterator

import pytest

from domino_orchestrate.core import AsyncDominoClient, DominoConfig, PollOptions
from domino_orchestrate.core.errors import DominoError
from domino_orchestrate.core.models import LogLine
from domino_orchestrate.core.observe import JobObserver
from domino_orchestrate.core.retry import RetryPolicy

from .rawhttp import RawServer, Respond, answer, job


@pytest.fixture
def serve() -> Iterator[Callable[[Respond], RawServer]]:
    servers: list[RawServer] = []

    def start(respond: Respond) -> RawServer:
        servers.append(RawServer(respond))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


QUICK = RetryPolicy(max_retries=1, initial_wait=0.01, max_wait=0.02)


def statuses(url: str, times: int) -> list[str]:
    async def main() -> list[str]:
        config = DominoConfig.resolve(url, "o/p", api_key="k", env={})
        async with AsyncDominoClient(config=config, retry_policy=QUICK) as client:
            return [(await client.get_job("j1")).raw_status for _ in range(times)]

    return asyncio.run(main())


def test_a_body_without_a_length_ends_when_the_server_closes(serve: Callable[..., RawServer]) -> None:
    server = serve(lambda method, path, n: (answer(job("j1"), b"Connection: close"), True))
    assert statuses(server.url, 3) == ["Running"] * 3
    assert server.connections == 3  # each answer ended its connection: none reused


def test_informational_answers_before_the_response_are_skipped(serve: Callable[..., RawServer]) -> None:
    early = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    server = serve(lambda method, path, n: (early + answer(job("j1"), b"X-Seen: final"), False))
    assert statuses(server.url, 3) == ["Running"] * 3
    assert server.connections == 1


def test_connection_close_is_honoured_even_if_the_server_keeps_the_socket(
    serve: Callable[..., RawServer],
) -> None:
    body = job("j1")
    raw = (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
           % (len(body), body))
    server = serve(lambda method, path, n: (raw, False))
    assert statuses(server.url, 3) == ["Running"] * 3
    assert server.connections == 3


def test_bytes_nobody_asked_for_never_answer_the_next_request(serve: Callable[..., RawServer]) -> None:
    """A server that sends a second, stale answer after the first: the next poll must not read
    the stale one as its own (it goes out on a new connection)."""

    def respond(method: str, path: str, number: int) -> tuple[bytes, bool]:
        if number == 1:
            return answer(job("j1")) + answer(job("j1", "Failed")), False
        return answer(job("j1", "Succeeded")), False

    server = serve(respond)

    async def main() -> list[str]:
        config = DominoConfig.resolve(server.url, "o/p", api_key="k", env={})
        async with AsyncDominoClient(config=config, retry_policy=QUICK) as client:
            first = (await client.get_job("j1")).raw_status
            await asyncio.sleep(0.2)  # the stale answer arrives while the connection is idle
            return [first, (await client.get_job("j1")).raw_status]

    assert asyncio.run(main()) == ["Running", "Succeeded"]
    assert server.connections == 2


def test_a_truncated_body_is_an_error_not_a_short_answer(serve: Callable[..., RawServer]) -> None:
    body = job("j1")
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body[: len(body) // 2])
    server = serve(lambda method, path, n: (raw, True))
    with pytest.raises(DominoError, match="no answer from Domino"):
        statuses(server.url, 1)
    assert len(server.requests) == 2  # a read: retried once by the policy, then the error


request_owner: contextvars.ContextVar[str] = contextvars.ContextVar("request_owner", default="none")


class Lines(JobObserver):
    def __init__(self, interrupt_at: str | None = None) -> None:
        self.seen: list[tuple[str, str]] = []
        self.interrupt_at = interrupt_at

    def on_line(self, line: LogLine) -> None:
        self.seen.append((line.text, request_owner.get()))
        if line.text == self.interrupt_at:
            raise KeyboardInterrupt


def stdout_server(serve: Callable[..., RawServer]) -> RawServer:
    def respond(method: str, path: str, number: int) -> tuple[bytes, bool]:
        if path.endswith("/stdout"):
            return answer(json.dumps({"setup": "", "stdout": "one\ntwo\nthree\n"}).encode()), False
        if path.startswith("/v4/gateway/projects/"):
            return answer(b'{"id": "p1"}'), False
        return answer(job(path.rsplit("/", 1)[-1], "Succeeded")), False

    return serve(respond)


def test_observers_run_in_the_waiting_task_with_its_context(serve: Callable[..., RawServer]) -> None:
    """Prefect's run logger, Dagster's and Airflow's task context live in context variables: the
    lines must reach the observer in the task that waits, even on a connection another task
    opened (the connection's own callbacks run in the context it was made in)."""
    server = stdout_server(serve)

    async def main() -> list[tuple[str, str]]:
        config = DominoConfig.resolve(server.url, "o/p", api_key="k", env={})
        async with AsyncDominoClient(config=config, retry_policy=QUICK) as client:
            async def warm() -> None:
                request_owner.set("another task")
                await client.get_job("j0")

            await asyncio.create_task(warm())  # opens the connection the wait then reuses
            lines = Lines()

            async def wait() -> None:
                request_owner.set("the waiting task")
                await client.wait("j1", PollOptions(poll_freq=0.05),
                                  observers=[lines])

            await asyncio.create_task(wait())
            return lines.seen

    assert asyncio.run(main()) == [(text, "the waiting task") for text in ("one", "two", "three")]
    assert server.connections == 1


def test_what_an_observer_raises_reaches_the_wait_as_raised(serve: Callable[..., RawServer]) -> None:
    server = stdout_server(serve)
    lines = Lines(interrupt_at="two")

    async def main() -> None:
        config = DominoConfig.resolve(server.url, "o/p", api_key="k", env={})
        async with AsyncDominoClient(config=config, retry_policy=QUICK) as client:
            await client.wait("j1", PollOptions(poll_freq=0.05),
                              observers=[lines])

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(main())
    # The interrupt stopped the job (then the rest of its output was delivered), as it does from
    # a line the task itself handles: not taken for a failed request and retried.
    assert [text for text, _ in lines.seen] == ["one", "two", "three"]
    assert [path for _, _, path in server.requests].count("/v4/jobs/stop") == 1
