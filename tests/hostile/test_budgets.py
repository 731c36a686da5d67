"""Issue 13, hangs and budgets, against the hostile server with both clients: max_poll_time holds
during an outage (and the job is stopped, and the message says so), the lookups before a start
are as patient as polling, and a start whose answer was lost is found in a jobs list that lags
instead of being started twice."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from domino_orchestrate.core import (
    AsyncDominoClient,
    DominoClient,
    PollOptions,
    PollTimeoutError,
    RetryPolicy,
)

from .server import HostileServer, Received, Reply, html, json_reply
from .test_output import KEY, PROJECT, both, call, job_id_of


@both
def test_max_poll_time_holds_during_an_outage_and_the_job_is_stopped(
    kind: str, hostile: HostileServer
) -> None:
    hostile.domino.statuses = ["Running"]
    polls = {"n": 0}

    def down_after_first_poll(req: Received) -> Reply | None:
        if req.path.count("/") != 3 or hostile.requests_to("POST", "/v4/jobs/stop"):
            return None  # the stop goes through, and then the job is seen Stopped
        polls["n"] += 1
        return None if polls["n"] == 1 else html(503)

    hostile.on("GET", "/v4/jobs/", down_after_first_poll)
    options = PollOptions(poll_freq=0.2, initial_interval=0.1, max_poll_time=1.0, retry_count=60,
                          stop_timeout=5)
    began = time.monotonic()
    with pytest.raises(PollTimeoutError) as caught:
        call(kind, hostile, "run_job", "python x.py", options)
    took = time.monotonic() - began
    assert took < 6, f"bounded by max_poll_time, not by retry_count ({took:.1f}s)"
    assert caught.value.stop_confirmed is True
    assert [r.json()["jobId"] for r in hostile.requests_to("POST", "/v4/jobs/stop")] == [job_id_of(hostile)]
    message = str(caught.value)
    assert "max_poll_time" in message and "it was stopped" in message
    assert "could not be reached" in message


@both
def test_lookups_before_a_start_share_the_operations_retry_budget(kind: str, hostile: HostileServer) -> None:
    # Six failures in a row: more than one request's own tries (3 with this policy).
    hostile.script("GET", "/v4/gateway/projects/", [html(503)] * 6)
    final = call(kind, hostile, "run_job", "python x.py", PollOptions(poll_freq=0.1, initial_interval=0.05))
    assert final.status.value == "Succeeded"
    assert len(hostile.requests_to("POST", "/v4/jobs/start")) == 1


@both
def test_start_with_a_lost_answer_is_found_in_a_lagging_jobs_list_not_started_twice(
    kind: str, hostile: HostileServer
) -> None:
    created_at: dict[str, float] = {}

    def create_then_fail(req: Received) -> Reply:
        reply = hostile.domino.handle(req)
        assert reply is not None
        created_at[job_id_of_reply(reply)] = time.monotonic()
        return html(502)  # the job exists; its answer is lost

    def lagging_list(req: Received) -> Reply | None:
        if req.path != "/v4/jobs":
            return None
        visible = [job for job_id, job in hostile.domino.jobs.items()
                   if time.monotonic() >= created_at.get(job_id, 0) + 3.0]
        return json_reply({"jobs": sorted(visible, key=lambda j: j["number"], reverse=True)})

    hostile.on("POST", "/v4/jobs/start", create_then_fail)
    hostile.on("GET", "/v4/jobs", lagging_list)
    final = call(kind, hostile, "run_job", "python x.py", PollOptions(poll_freq=0.1, initial_interval=0.05))
    assert len(hostile.requests_to("POST", "/v4/jobs/start")) == 1, "started twice"
    assert final.status.value == "Succeeded" and final.job_id == job_id_of(hostile)


def job_id_of_reply(reply: Reply) -> str:
    import json

    body: dict[str, Any] = json.loads(reply.body_bytes())
    return str(body["id"])


@both
def test_one_requests_own_retries_cannot_outlast_max_poll_time(kind: str, hostile: HostileServer) -> None:
    """A patient retry policy (waits of 2-8 s) meets an outage: each status request is bounded by
    what is left of max_poll_time, so the wait ends about then, not after the request's retries."""
    hostile.domino.statuses = ["Running"]
    polls = {"n": 0}

    def down_after_first_poll(req: Received) -> Reply | None:
        if req.path.count("/") != 3 or hostile.requests_to("POST", "/v4/jobs/stop"):
            return None
        polls["n"] += 1
        return None if polls["n"] == 1 else html(503)

    hostile.on("GET", "/v4/jobs/", down_after_first_poll)
    patient = RetryPolicy(max_retries=4, initial_wait=4.0, max_wait=8.0)
    options = PollOptions(poll_freq=0.2, initial_interval=0.1, max_poll_time=1.0, retry_count=1000,
                          stop_timeout=5)
    began = time.monotonic()
    with pytest.raises(PollTimeoutError):
        if kind == "sync":
            with DominoClient(hostile.url, PROJECT, api_key=KEY, retry_policy=patient) as client:
                client.run_job("python x.py", options)
        else:
            async def go() -> None:
                async with AsyncDominoClient(hostile.url, PROJECT, api_key=KEY,
                                             retry_policy=patient) as client:
                    await client.run_job("python x.py", options)

            asyncio.run(go())
    took = time.monotonic() - began
    assert took < 5, f"the request's retries outlasted max_poll_time ({took:.1f}s)"
