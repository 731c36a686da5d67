"""Domino triggers in one triggerer process share one client per connection (issue 18): a
trigger no longer builds an HTTP client (TLS setup, a connection pool) inside the triggerer's
event loop, and never closes the shared one when it ends. The 1,000-trigger figures are in
``benchmarks/airflow_triggerer.py``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(120)


def _trigger(sandbox: Any, job_id: str, project: str = "demo/quick-start") -> Any:
    from domino_orchestrate.airflow.triggers import DominoJobTrigger
    from domino_orchestrate.core import JobHandle, PollOptions

    handle = JobHandle(job_id=job_id, project=project)
    options = PollOptions(poll_freq=0.5, initial_interval=0.2)
    return DominoJobTrigger("domino_default", handle.to_dict(), options.to_dict(), project=project)


def test_triggers_of_one_connection_share_a_client_across_event_loops(domino_conn: Any,
                                                                      af: Any) -> None:
    client = af.sandbox_client(domino_conn)
    jobs = [client.start_job(f"echo shared-{i}") for i in range(3)]

    async def both(first: Any, second: Any) -> Any:
        return await asyncio.gather(first._client(), second._client())

    one, two = asyncio.run(both(_trigger(domino_conn, jobs[0].job_id),
                                _trigger(domino_conn, jobs[1].job_id)))
    assert one is two
    # Another loop (a triggerer's runner, or the next test) uses the same client, after a
    # trigger ran to its end on the first one: it was not closed.
    events = [asyncio.run(_trigger(domino_conn, job.job_id).run().__anext__()) for job in jobs]
    assert [event.payload["status"] for event in events] == ["success"] * 3
    assert asyncio.run(_trigger(domino_conn, jobs[2].job_id)._client()) is one
