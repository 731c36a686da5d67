"""Retry decisions (core/retry.py): the process-wide quota as a token bucket (AWS SDK standard
mode), and the caller's remaining budget bounding every wait, seen through a real transport."""

from __future__ import annotations

import pytest

from domino_orchestrate.core import (
    DominoConfig,
    JobSpec,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    TransportError,
    api,
)
from domino_orchestrate.core.retry import RetryQuota
from domino_orchestrate.core.transport import SyncTransport

from .server import HostileServer, Reply, job_body, json_reply


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_quota_is_a_token_bucket_with_refunds_and_a_slow_refill() -> None:
    clock = Clock()
    quota = RetryQuota(capacity=20, retry_cost=5, timeout_cost=10, refill_per_second=1, clock=clock)
    server_error = ServerError("503", status_code=503)
    assert quota.acquire(server_error) == 5
    assert quota.acquire(TransportError("reset")) == 10
    assert quota.tokens == 5
    assert quota.acquire(TransportError("reset")) == 0  # cannot pay: no retry
    quota.succeeded(10)  # the retry worked: its cost comes back
    assert quota.tokens == 15
    quota.succeeded()  # a first-try success adds one
    assert quota.tokens == 16
    clock.now += 100  # refills with time, never above capacity
    assert quota.tokens == 20


def test_policy_gives_up_when_the_wait_would_outlast_the_budget() -> None:
    policy = RetryPolicy(max_retries=3, max_retry_after=60)
    req = api.job_get("j")
    slow = RateLimitedError("429", retry_after=10, status_code=429)
    quota = RetryQuota()
    assert policy.next_wait(req, slow, 1, remaining=5, quota=quota) is None
    assert policy.next_wait(req, slow, 1, remaining=50, quota=quota) == (10, 5)
    assert policy.next_wait(req, slow, 4, quota=quota) is None  # tries used up
    start = api.job_start("p", JobSpec(command="x"), None, None)
    assert policy.next_wait(start, slow, 1, quota=quota) is None  # a start is never re-sent


def test_remaining_budget_bounds_the_transport(hostile: HostileServer) -> None:
    hostile.on("GET", "/v4/jobs/abc", json_reply(job_body("abc", "Running")))
    hostile.script("GET", "/v4/jobs/abc", [Reply(503, b"", headers=[("Retry-After", "10")])] * 2)
    config = DominoConfig.resolve(hostile.url, api_key="k-0123456789", env={})
    transport = SyncTransport(config, RetryPolicy(max_retries=3, max_retry_after=60),
                              quota=RetryQuota())
    slept: list[float] = []
    with pytest.raises(ServerError):
        transport.send(api.job_get("abc"), sleep=slept.append, remaining=5)
    assert slept == []  # a 10 s wait cannot fit in 5 s: the error comes back at once
    assert transport.send(api.job_get("abc"), sleep=slept.append)["id"] == "abc"
    assert slept == [10]  # without a budget, the server's Retry-After is honoured
