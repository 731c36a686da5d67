"""Issue 18's small misses against the sandbox over real HTTP: following a job never costs more
requests than python-domino's loop for the same job, while its output still streams live.

python-domino polls at once and then every poll_freq until the job has ended, then fetches stdout
once (domino-api.md §3.2): a job ending T s after its start costs it 1 + ceil(T / poll_freq) polls
+ 1 fetch. Here the sandbox counts what the wait really sent for jobs of 0.2, 0.5, 2 and 8 s at
poll_freq 0.5 s (2, 5, 20 and 80 s jobs at poll_freq 5 s, scaled by a tenth), T read from the
job's completion time.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime, timezone

import pytest

from domino_orchestrate.core import AsyncDominoClient, DominoClient, LogLine, PollOptions
from domino_orchestrate.sandbox import SandboxServer

from .conftest import FAST_RETRY, PROJECT

POLL_FREQ = 0.5
OPTIONS = PollOptions(poll_freq=POLL_FREQ, initial_interval=0.1, max_poll_time=60)


def official_requests(ends_after: float) -> int:
    """python-domino's requests while following a job that ended ``ends_after`` s into the wait."""
    return 1 + math.ceil(ends_after / POLL_FREQ) + 1


def follow(sandbox: SandboxServer, seconds: float, driver: str) -> tuple[int, float, list[float]]:
    """Start a job printing a line, then sleeping ``seconds``; follow it. Returns the requests of
    the wait, when the job ended (s into the wait) and when each line arrived (s into the wait)."""
    arrived: list[float] = []
    command = f"echo early; sleep {seconds}; echo late"
    if driver == "sync":
        with DominoClient(sandbox.url, PROJECT, api_key=sandbox.api_key,
                          retry_policy=FAST_RETRY) as client:
            handle = client.start_job(command, idempotency_key=f"budget-{time.time_ns()}")
            sandbox.reset_stats()
            began = time.time()
            final = client.wait(handle, OPTIONS,
                                on_line=lambda line: arrived.append(time.time() - began))
    else:
        async def go() -> tuple[float, object]:
            async with AsyncDominoClient(sandbox.url, PROJECT, api_key=sandbox.api_key,
                                         retry_policy=FAST_RETRY) as client:
                handle = await client.start_job(command, idempotency_key=f"budget-{time.time_ns()}")
                sandbox.reset_stats()
                began = time.time()

                def record(_line: LogLine) -> None:
                    arrived.append(time.time() - began)

                return began, await client.wait(handle, OPTIONS, on_line=record)

        began, final = asyncio.run(go())  # type: ignore[assignment]
    requests = sum(sum(statuses.values()) for statuses in sandbox.stats()["requests"].values())
    assert final.status.is_success and final.completed_at is not None  # type: ignore[attr-defined]
    ended = (final.completed_at - datetime.fromtimestamp(began, timezone.utc)).total_seconds()  # type: ignore[attr-defined]
    return requests, ended, arrived


@pytest.mark.parametrize(("seconds", "driver"), [(0.2, "sync"), (0.5, "async"), (2.0, "sync"),
                                                 (8.0, "sync")])
def test_no_more_requests_than_the_official_client(sandbox: SandboxServer, seconds: float,
                                                   driver: str) -> None:
    requests, ended, arrived = follow(sandbox, seconds, driver)
    assert requests <= official_requests(ended), (requests, ended)
    assert len(arrived) == 2
    if seconds >= 8.0:  # a long job's early line shows while it runs, well before its end
        assert arrived[0] <= ended - 2.0, (arrived, ended)
