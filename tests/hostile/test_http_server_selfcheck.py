"""The hostile server itself: a whole job runs against its default surface, and each
misbehaviour it promises is observable on the wire."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from domino_orchestrate.core import AsyncDominoClient, DominoClient, RetryPolicy

from .server import HostileServer, Reply, redirect

PROJECT = "alice/churn"
KEY = "hostile-test-api-key-0123456789"
QUICK = RetryPolicy(max_retries=2, initial_wait=0.01, max_wait=0.05, max_retry_after=0.1)


def test_whole_job_runs_with_both_clients(hostile: HostileServer) -> None:
    hostile.domino.stdout = "one\ntwo\n"
    lines: list[str] = []
    with DominoClient(hostile.url, PROJECT, api_key=KEY, retry_policy=QUICK) as client:
        final = client.run_job("python train.py", on_line=lambda line: lines.append(line.text))
    assert final.status.value == "Succeeded"
    assert lines == ["one", "two"]

    async def go() -> str:
        async with AsyncDominoClient(hostile.url, PROJECT, api_key=KEY, retry_policy=QUICK) as c:
            return (await c.run_job("python train.py")).status.value

    assert asyncio.run(go()) == "Succeeded"
    starts = hostile.requests_to("POST", "/v4/jobs/start")
    assert [s.json()["commandToRun"] for s in starts] == ["python train.py"] * 2
    assert all(s.headers["x-domino-api-key"] == KEY for s in starts)


def _raw_get(server: HostileServer, path: str = "/x") -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        data = b""
        try:
            while chunk := sock.recv(4096):
                data += chunk
        except ConnectionResetError:
            data += b"<RST>"
        return data


def test_scripts_then_falls_through_and_misbehaves(hostile: HostileServer) -> None:
    hostile.on("GET", "/x", Reply(200, b"abcdef", reset_after=3))
    hostile.script("GET", "/x", [redirect(307, "http://elsewhere/"), Reply(raw=b"\x00garbage")])
    first = _raw_get(hostile)
    assert first.startswith(b"HTTP/1.1 307 ") and b"\r\nLocation: http://elsewhere/\r\n" in first
    assert _raw_get(hostile) == b"\x00garbage"
    assert _raw_get(hostile).endswith(b"abc<RST>")
    hostile.on("GET", "/slow", Reply(200, b"ab", trickle=0.2))
    began = time.monotonic()
    assert _raw_get(hostile, "/slow").endswith(b"\r\n\r\nab")
    assert time.monotonic() - began >= 0.4
    assert [r.path for r in hostile.received] == ["/x", "/x", "/x", "/slow"]


@pytest.mark.parametrize("status", [301, 307])
def test_redirect_reply(hostile: HostileServer, status: int) -> None:
    hostile.on("GET", "/r", redirect(status, "https://other.example/p"))
    data = _raw_get(hostile, "/r")
    assert data.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"\r\nLocation: https://other.example/p\r\n" in data
