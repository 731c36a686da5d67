"""The flows stepped by hand, with a fake clock and no I/O (the h11 style the core is built on)."""

from __future__ import annotations

from typing import Any

import pytest

from domino_orchestrate.core import (
    DominoConfig,
    JobFailedError,
    JobHandle,
    JobSpec,
    PollOptions,
    PollTimeoutError,
    ServerError,
    TransportError,
)
from domino_orchestrate.core.api import ApiRequest, Sleep
from domino_orchestrate.core.flows import Context, start_flow, tagged_title, wait_flow
from domino_orchestrate.core.observe import Observers


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def job(status: str, job_id: str = "j1", title: str | None = None) -> dict[str, Any]:
    return {"id": job_id, "title": title, "statuses": {"executionStatus": status,
            "isCompleted": status in {"Succeeded", "Failed", "Stopped", "Error"}}}


def ctx(clock: Clock) -> Context:
    config = DominoConfig.resolve("http://d", "o/p", api_key="k", env={})
    return Context(config, clock=clock, project_id="pid")


def run(flow: Any, answer: Any, clock: Clock) -> tuple[Any, list[Any]]:
    """Drive a flow: ``answer(request)`` returns JSON or an exception to throw in."""
    seen: list[Any] = []
    try:
        step = next(flow)
        while True:
            seen.append(step)
            if isinstance(step, Sleep):
                clock.now += step.seconds
                step = flow.send(None)
                continue
            result = answer(step)
            step = flow.throw(result) if isinstance(result, Exception) else flow.send(result)
    except StopIteration as done:
        return done.value, seen


def test_wait_polls_adaptively_never_longer_than_poll_freq() -> None:
    clock = Clock()
    statuses = iter(["Queued"] * 12 + ["Succeeded"])

    def answer(req: ApiRequest) -> Any:
        return job(next(statuses)) if req.path == "/v4/jobs/j1" else {"stdout": ""}

    final, seen = run(wait_flow(ctx(clock), JobHandle("j1"), PollOptions(poll_freq=5), Observers()), answer, clock)
    naps = [s.seconds for s in seen if isinstance(s, Sleep)]
    assert final.status.is_success
    assert naps[0] <= 1.0, "first poll comes after about a second"
    assert all(n <= 5.0 for n in naps) and max(naps) > 4.0, "grows to poll_freq, never beyond"
    assert naps[:3] == sorted(naps[:3]), "grows at first"


@pytest.mark.parametrize("status", ["Failed", "Error", "Stopped"])
def test_failures_raise_with_tail(status: str) -> None:
    clock = Clock()

    def answer(req: ApiRequest) -> Any:
        return job(status) if "stdout" not in req.path else {"stdout": "a\nb\nlast words\n"}

    with pytest.raises(JobFailedError) as caught:
        run(wait_flow(ctx(clock), JobHandle("j1"), PollOptions(), Observers()), answer, clock)
    assert caught.value.status.value == status
    assert caught.value.stdout_tail == ["a", "b", "last words"]
    assert status in str(caught.value) and "last words" in str(caught.value)


def test_retry_count_counts_consecutive_transient_errors() -> None:
    clock = Clock()
    outcomes = iter([TransportError("x")] * 3 + [job("Running")] + [TransportError("x")] * 3 + [job("Succeeded")])

    def answer(req: ApiRequest) -> Any:
        return next(outcomes) if "stdout" not in req.path else {"stdout": ""}

    final, _ = run(wait_flow(ctx(clock), JobHandle("j1"), PollOptions(retry_count=3), Observers()), answer, clock)
    assert final.status.is_success

    outcomes = iter([TransportError("x")] * 4)
    with pytest.raises(TransportError):
        run(wait_flow(ctx(clock), JobHandle("j1"), PollOptions(retry_count=3), Observers()),
            lambda req: next(outcomes), clock)


def test_timeout_stops_the_job_and_confirms() -> None:
    clock = Clock()
    stopped = []

    def answer(req: ApiRequest) -> Any:
        if req.path == "/v4/jobs/stop":
            stopped.append(req.body)
            return None
        if "stdout" in req.path:
            return {"stdout": ""}
        return job("Stopped" if stopped else "Running")

    with pytest.raises(PollTimeoutError) as caught:
        run(wait_flow(ctx(clock), JobHandle("j1"), PollOptions(max_poll_time=30), Observers()), answer, clock)
    assert caught.value.stop_confirmed is True
    assert stopped == [{"projectId": "pid", "jobId": "j1", "commitResults": True}]
    assert 30 <= clock.now < 40


def test_timeout_with_unconfirmed_stop_is_its_own_outcome() -> None:
    clock = Clock()

    def answer(req: ApiRequest) -> Any:
        return None if req.path == "/v4/jobs/stop" else ({"stdout": ""} if "stdout" in req.path else job("Running"))

    with pytest.raises(PollTimeoutError) as caught:
        run(wait_flow(ctx(clock), JobHandle("j1"), PollOptions(max_poll_time=10, stop_timeout=5), Observers()),
            answer, clock)
    assert caught.value.stop_confirmed is False
    assert "not confirmed" in str(caught.value)


def test_lost_start_response_is_looked_up_not_resent() -> None:
    clock = Clock()
    sent: list[ApiRequest] = []
    created: list[dict[str, Any]] = []

    def answer(req: ApiRequest) -> Any:
        sent.append(req)
        if req.path == "/v4/jobs/start":
            created.append(job("Queued", "new1", req.body["title"]))
            return ServerError("reset after create", status_code=502)
        if req.path == "/v4/jobs":
            return {"jobs": list(reversed(created))}
        raise AssertionError(req)

    handle, _ = run(start_flow(ctx(clock), JobSpec(command="x"), "key1", Observers()), answer, clock)
    assert handle.job_id == "new1" and not handle.attached
    assert [r.path for r in sent].count("/v4/jobs/start") == 1


def test_existing_running_job_with_key_is_reattached() -> None:
    clock = Clock()

    def answer(req: ApiRequest) -> Any:
        assert req.path == "/v4/jobs", "must not start"
        return {"jobs": [job("Running", "old", tagged_title("t", "k9"))]}

    handle, _ = run(start_flow(ctx(clock), JobSpec(command="x"), "k9", Observers()), answer, clock)
    assert handle.job_id == "old" and handle.attached


def test_failed_job_with_key_starts_a_new_one() -> None:
    clock = Clock()

    def answer(req: ApiRequest) -> Any:
        if req.path == "/v4/jobs":
            return {"jobs": [job("Failed", "old", tagged_title(None, "k9"))]}
        assert req.path == "/v4/jobs/start"
        assert req.body["title"] == "[do:k9]"
        return job("Queued", "new")

    handle, _ = run(start_flow(ctx(clock), JobSpec(command="x"), "k9", Observers()), answer, clock)
    assert handle.job_id == "new" and not handle.attached
