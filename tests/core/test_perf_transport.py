"""The async transport's own keep-alive connections and the shared client (issue 18).

Against a small real HTTP/1.1 server on loopback that counts connections and can close a
kept-alive connection right after answering, without saying so (as a server whose keep-alive
timeout fires does):

- polls reuse one connection instead of opening one per request;
- a read whose reused connection turns out closed is sent again on a new connection, unseen by
  the caller; a job start (not idempotent) never goes out on a reused connection;
- ``shared_async_client`` gives one client per configuration, which works from several event
  loops (one after another and at the same time in two threads), as an Airflow triggerer's
  triggers may use it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from domino_orchestrate.core import AsyncDominoClient, DominoConfig
from domino_orchestrate.core.client import shared_async_client

from .rawhttp import RawServer, answer, job


class KeepAliveServer(RawServer):
    """HTTP/1.1 with keep-alive; ``close_after_answer`` closes each connection after its answer
    without a ``Connection: close`` header."""

    def __init__(self) -> None:
        super().__init__(self._answer)
        self.close_after_answer = False

    def _answer(self, method: str, path: str, number: int) -> tuple[bytes, bool]:
        if method == "POST" and path == "/v4/jobs/start":
            body = json.dumps({"id": f"job{len(self.requests)}"}).encode()
        elif path.startswith("/v4/gateway/projects/"):
            body = json.dumps({"id": "p1"}).encode()
        elif path.startswith("/v4/jobs?"):
            body = b'{"jobs": []}'
        else:
            body = job(path.rsplit("/", 1)[-1])
        return answer(body), self.close_after_answer


@pytest.fixture
def server() -> Iterator[KeepAliveServer]:
    srv = KeepAliveServer()
    yield srv
    srv.close()


def config(url: str, key: str = "k") -> DominoConfig:
    return DominoConfig.resolve(url, "o/p", api_key=key, env={})


async def poll(client: AsyncDominoClient, times: int) -> list[str]:
    return [(await client.get_job("j1")).raw_status for _ in range(times)]


def test_polls_reuse_one_kept_alive_connection(server: KeepAliveServer) -> None:
    async def main() -> list[str]:
        async with AsyncDominoClient(config=config(server.url)) as client:
            return await poll(client, 20)

    assert asyncio.run(main()) == ["Running"] * 20
    assert server.connections == 1 and len(server.requests) == 20


def test_a_closed_kept_alive_connection_is_replaced_unseen(server: KeepAliveServer) -> None:
    server.close_after_answer = True

    async def main() -> Any:
        async with AsyncDominoClient(config=config(server.url)) as client:
            statuses = []
            for _ in range(5):
                statuses.append((await client.get_job("j1")).raw_status)
                await asyncio.sleep(0)  # the close may or may not have been seen yet
            handle = await client.start_job("python x.py", idempotency_key=None)
            return statuses, handle

    statuses, handle = asyncio.run(main())
    assert statuses == ["Running"] * 5
    assert handle.job_id.startswith("job")
    assert [method for _, method, _ in server.requests].count("GET") >= 5
    # Every request had its own connection (the server closed each), and none was lost.
    assert server.connections == len(server.requests)


def test_a_start_never_goes_out_on_a_reused_connection(server: KeepAliveServer) -> None:
    async def main() -> None:
        async with AsyncDominoClient(config=config(server.url)) as client:
            await poll(client, 3)
            await client.start_job("python x.py", idempotency_key="key-1")

    asyncio.run(main())
    start = next(number for number, method, _ in server.requests if method == "POST")
    earlier = {number for number, method, _ in server.requests[:3]}
    assert start not in earlier


def test_shared_client_is_one_per_configuration_and_serves_several_loops(
    server: KeepAliveServer,
) -> None:
    assert shared_async_client(config(server.url, "other"), create=False) is None
    first = shared_async_client(config(server.url))
    assert first is not None
    assert shared_async_client(config(server.url)) is first
    assert shared_async_client(config(server.url), create=False) is first
    assert shared_async_client(config(server.url, "other")) is not first  # another key

    # One loop after another (each asyncio.run is a new loop), then two loops at once.
    assert asyncio.run(poll(first, 3)) == ["Running"] * 3
    assert asyncio.run(poll(first, 3)) == ["Running"] * 3
    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda: results.append(asyncio.run(poll(first, 5))))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [["Running"] * 5] * 2
