"""Chaos: many jobs through the async engine with 20 % injected faults of every kind.

CI runs a small version; ``make chaos`` (DOMINO_CHAOS_FULL=1) runs 200 jobs. Every job must end in
its right state, with no duplicate start and its streamed stdout identical to its real output.
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict

import pytest

from domino_orchestrate.core import (
    AsyncDominoClient,
    JobFailedError,
    LogLine,
    PollOptions,
    RetryPolicy,
)
from domino_orchestrate.sandbox import SandboxServer

JOBS = 200 if os.environ.get("DOMINO_CHAOS_FULL") else 24
RETRY = RetryPolicy(max_retries=8, initial_wait=0.05, max_wait=1.0, max_retry_after=1.0)
OPTIONS = PollOptions(poll_freq=1.0, initial_interval=0.2, retry_count=10, max_poll_time=300)


@pytest.mark.chaos
def test_faults_every_job_right_state_no_duplicates_exact_stdout() -> None:
    with SandboxServer(projects={"chaos/p": None}, phase_delay=0.05) as srv:
        srv.set_faults(rate=0.2, seed=2026)  # every kind: 5xx, 429, reset, slow, html, truncated

        async def one(client: AsyncDominoClient, i: int) -> tuple[int, str, str, list[LogLine]]:
            lines: list[LogLine] = []
            code = 3 if i % 4 == 0 else 0
            command = f"for n in $(seq 1 {20 + i}); do echo job{i}-line$n; done; sleep 0.5; exit {code}"
            handle = await client.start_job(command, title=f"chaos-{i}", idempotency_key=f"chaos-{i}")
            try:
                final = await client.wait(handle, OPTIONS, on_line=lines.append)
                status = final.status.value
            except JobFailedError as exc:
                status = exc.status.value
            return code, status, handle.job_id, lines

        async def all_jobs() -> list[tuple[int, str, str, list[LogLine]]]:
            async with AsyncDominoClient(srv.url, "chaos/p", api_key=srv.api_key, retry_policy=RETRY) as c:
                return await asyncio.gather(*(one(c, i) for i in range(JOBS)))

        results = asyncio.run(all_jobs())
        srv.set_faults(rate=0.0)
        stats = srv.stats()

    injected = sum(stats["faults"].values()) if isinstance(stats.get("faults"), dict) else 0
    assert injected > 0, "faults were injected"
    for code, status, job_id, _lines in results:
        assert status == ("Failed" if code else "Succeeded"), job_id
    per_title: dict[str, int] = defaultdict(int)
    for title, count in stats["starts_by_title"].items():
        per_title[title.split(" [do:")[0]] += count
    assert all(count == 1 for count in per_title.values()), per_title
    assert len(per_title) == JOBS
    for i, (_, _, job_id, lines) in enumerate(results):
        expected = [f"job{i}-line{n}" for n in range(1, 21 + i)]
        assert [line.text for line in lines] == expected, job_id
