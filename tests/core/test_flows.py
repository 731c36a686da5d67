"""The flows stepped by hand, with a fake clock and no I/O (the h11 style the core is built on)."""

from __future__ import annotations

from typing import Any

import pytest

from domino_orchestrate.core import (
    DominoConfig,
    InvalidResponseError,
    JobFailedError,
    JobHandle,
    JobNotFoundError,
    JobSpec,
    PollOptions,
    PollTimeoutError,
    RateLimitedError,
    ServerError,
    StopNotConfirmedError,
    TransportError,
)
from domino_orchestrate.core.api import ApiRequest, Sleep
from domino_orchestrate.core.flows import (
    LOST_START_LOOKUPS,
    Context,
    LogStream,
    find_by_key_flow,
    get_flow,
    interrupt_stop_flow,
    start_flow,
    stop_flow,
    tagged_title,
    wait_flow,
)
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

    final, seen = run(wait_flow(ctx(clock), JobHandle("j1", idempotency_key="k"),
                                PollOptions(poll_freq=5), Observers()), answer, clock)
    naps = [s.seconds for s in seen if isinstance(s, Sleep)]
    assert final.status.is_success
    assert 2.0 <= naps[0] <= 2.5, "one early poll, in time to see a 2 s job end"
    assert all(n <= 5.0 + 1e-9 for n in naps) and max(naps) > 4.0, "grows to poll_freq, never beyond"
    assert naps[:2] == sorted(naps[:2]), "grows at first"


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


# --- issue 13 ------------------------------------------------------------------------------------

class Seen:
    """An observer that records what reaches the orchestrator's log."""

    def __init__(self) -> None:
        self.notices: list[str] = []
        self.lines: list[str] = []

    def on_notice(self, level: int, message: str) -> None:
        self.notices.append(message)

    def on_line(self, line: Any) -> None:
        self.lines.append(line.text)


def test_non_transient_live_stdout_error_neither_ends_the_wait_nor_changes_the_verdict() -> None:
    clock, seen = Clock(), Seen()
    statuses = iter(["Running"] * 8 + ["Succeeded"])
    final_log = {"stdout": "a\nb\n"}

    def answer(req: ApiRequest) -> Any:
        if "stdout" in req.path:
            done = statuses.__length_hint__() == 0
            return final_log if done else JobNotFoundError("no stdout yet", status_code=404)
        return job(next(statuses))

    options = PollOptions(poll_freq=1, log_interval=1)
    final, seen_steps = run(wait_flow(ctx(clock), JobHandle("j1"), options, Observers([seen])), answer, clock)
    assert final.status.is_success
    assert seen.lines == ["a", "b"]
    live_fetches = [s for s in seen_steps if isinstance(s, ApiRequest) and "stdout" in s.path]
    assert len(live_fetches) > 2, "kept fetching"
    assert len([n for n in seen.notices if "Could not fetch" in n]) == 1, "reported once per kind"


def test_final_stdout_failure_is_reported_where_the_user_looks() -> None:
    clock, seen = Clock(), Seen()

    def answer(req: ApiRequest) -> Any:
        if "stdout" in req.path:
            return JobNotFoundError("gone", status_code=404)
        return job("Succeeded")

    final, _ = run(wait_flow(ctx(clock), JobHandle("j1"), PollOptions(), Observers([seen])), answer, clock)
    assert final.status.is_success
    assert any("final output" in n for n in seen.notices)


def outage_answer(stopped: list[Any], stop_works: bool = True) -> Any:
    polls = iter(range(10_000))

    def answer(req: ApiRequest) -> Any:
        if req.path == "/v4/jobs/stop":
            if not stop_works:
                return ServerError("still down", status_code=503)
            stopped.append(req.body)
            return None
        if "stdout" in req.path:
            return {"stdout": "x\n"}
        if next(polls) == 0:
            return job("Running")
        return job("Stopped") if stopped else TransportError("connection refused")

    return answer


def test_max_poll_time_is_enforced_during_an_outage_and_the_job_is_stopped() -> None:
    clock, stopped = Clock(), []
    options = PollOptions(max_poll_time=10, retry_count=10_000, poll_freq=5)
    with pytest.raises(PollTimeoutError) as caught:
        run(wait_flow(ctx(clock), JobHandle("j1"), options, Observers()), outage_answer(stopped), clock)
    assert 10 <= clock.now < 16, "bounded by max_poll_time, not by retry_count"
    assert stopped and caught.value.stop_confirmed is True
    message = str(caught.value)
    assert "max_poll_time" in message and "stopped" in message and "could not be reached" in message


def test_timeout_during_an_outage_says_the_job_may_still_be_running() -> None:
    clock = Clock()
    options = PollOptions(max_poll_time=10, retry_count=10_000, stop_timeout=5,
                          timeout_name="execution_timeout")
    with pytest.raises(PollTimeoutError) as caught:
        run(wait_flow(ctx(clock), JobHandle("j1"), options, Observers()),
            outage_answer([], stop_works=False), clock)
    message = str(caught.value)
    assert caught.value.stop_confirmed is False
    assert "may still be running" in message and "check it in Domino" in message
    assert "execution_timeout" in message and "max_poll_time" not in message
    assert "(last status )" not in message and "last status Running" in message


@pytest.mark.parametrize("raw", ["Completed", "", None])
def test_completed_job_with_unknown_status_ends_the_wait_as_a_failure(raw: Any) -> None:
    clock, seen = Clock(), Seen()
    answers = iter([{"id": "j1", "statuses": {"executionStatus": raw, "isCompleted": flag}}
                    for flag in (False, False, True)])

    def answer(req: ApiRequest) -> Any:
        return {"stdout": "bye\n"} if "stdout" in req.path else next(answers)

    with pytest.raises(JobFailedError) as caught:
        run(wait_flow(ctx(clock), JobHandle("j1"), PollOptions(), Observers([seen])), answer, clock)
    assert clock.now < 20, "not polled until max_poll_time"
    message = str(caught.value)
    assert repr(raw or "unknown") in message and "counted as a failure" in message and "bye" in message
    assert len([n for n in seen.notices if "does not know" in n]) == 2  # running, then completed


def test_status_with_trailing_space_is_a_known_success() -> None:
    clock = Clock()

    def answer(req: ApiRequest) -> Any:
        return {"stdout": ""} if "stdout" in req.path else job("Succeeded ")

    final, _ = run(wait_flow(ctx(clock), JobHandle("j1"), PollOptions(), Observers()), answer, clock)
    assert final.is_success


def test_stop_not_confirmed_never_prints_an_empty_status() -> None:
    clock = Clock()

    def answer(req: ApiRequest) -> Any:
        if req.path == "/v4/jobs/stop":
            return None
        return {"id": "j1", "statuses": {"executionStatus": None}}

    with pytest.raises(StopNotConfirmedError) as caught:
        run(stop_flow(ctx(clock), JobHandle("j1"), True, 3), answer, clock)
    assert "(last status unknown)" in str(caught.value)


WRONG_SHAPES = [[], None, "x", 3, {"statuses": {}}, {"id": "j1", "statuses": "Running"},
                {"id": None}, {"id": "j1", "statuses": {"executionStatus": ["Running"]}}]


@pytest.mark.parametrize("body", WRONG_SHAPES)
def test_wrong_shaped_status_is_one_typed_error_naming_the_endpoint(body: Any) -> None:
    clock = Clock()
    with pytest.raises(InvalidResponseError) as caught:
        run(wait_flow(ctx(clock), JobHandle("j1"), PollOptions(retry_count=0), Observers()),
            lambda req: body, clock)
    assert "/v4/jobs/j1" in str(caught.value) and caught.value.path == "/v4/jobs/j1"


@pytest.mark.parametrize("body", [[{"title": "x"}], {"jobs": "none"}, {"jobs": [["j"]]},
                                  {"jobs": [{"id": "a", "title": 5, "statuses": []}]}])
def test_wrong_shaped_jobs_list_is_one_typed_error(body: Any) -> None:
    clock = Clock()
    with pytest.raises(InvalidResponseError, match="/v4/jobs"):
        run(find_by_key_flow(ctx(clock), "job", "k"), lambda req: body, clock)


@pytest.mark.parametrize("answer_body", [[{"id": "new1"}], None, {"message": "ok"}, "started"])
def test_start_answered_with_the_wrong_shape_finds_the_job_instead_of_orphaning_it(answer_body: Any) -> None:
    clock = Clock()
    created: list[dict[str, Any]] = []
    starts = []

    def answer(req: ApiRequest) -> Any:
        if req.path == "/v4/jobs/start":
            starts.append(req)
            created.append(job("Queued", "new1", req.body["title"]))
            return answer_body
        return {"jobs": list(reversed(created))}

    handle, _ = run(start_flow(ctx(clock), JobSpec(command="x"), "key1", Observers()), answer, clock)
    assert handle.job_id == "new1" and len(starts) == 1


def test_lost_start_answer_waits_for_a_lagging_jobs_list_instead_of_starting_twice() -> None:
    clock = Clock()
    created: list[tuple[float, dict[str, Any]]] = []

    def answer(req: ApiRequest) -> Any:
        if req.path == "/v4/jobs/start":
            created.append((clock.now, job("Queued", f"new{len(created)}", req.body["title"])))
            return TransportError("reset after the request was sent")
        # Domino's list shows a new job only 3 s after it was created.
        return {"jobs": [j for at, j in reversed(created) if clock.now >= at + 3]}

    handle, _ = run(start_flow(ctx(clock), JobSpec(command="x"), "key1", Observers()), answer, clock)
    assert len(created) == 1 and handle.job_id == "new0"
    assert LOST_START_LOOKUPS[-1] >= 10, "the window covers a lag of several seconds"


def test_rate_limited_start_is_sent_again_after_one_look() -> None:
    clock = Clock()
    starts = []

    def answer(req: ApiRequest) -> Any:
        if req.path == "/v4/jobs/start":
            starts.append(clock.now)
            if len(starts) == 1:
                return RateLimitedError("slow down", status_code=429, retry_after=2.0)
            return job("Queued", "new1")
        return {"jobs": []}

    handle, _ = run(start_flow(ctx(clock), JobSpec(command="x"), "key1", Observers()), answer, clock)
    assert handle.job_id == "new1" and len(starts) == 2 and starts[1] - starts[0] < 5


def test_pre_start_lookups_share_the_operations_retry_budget() -> None:
    clock = Clock()
    failures = {"/v4/gateway/projects/findProjectByOwnerAndName": 2, "/v4/jobs": 2}

    def answer(req: ApiRequest) -> Any:
        if failures.get(req.path, 0) > 0:
            failures[req.path] -= 1
            return ServerError("flaky", status_code=503)
        if req.path == "/v4/gateway/projects/findProjectByOwnerAndName":
            return {"id": "pid"}
        if req.path == "/v4/jobs":
            return {"jobs": []}
        return job("Queued", "new1")

    context = ctx(clock)
    context.project_id = None
    handle, steps = run(start_flow(context, JobSpec(command="x"), "key1", Observers()), answer, clock)
    assert handle.job_id == "new1"
    assert sum(isinstance(s, Sleep) for s in steps) == 4, "each failure waited, none gave up"

    always = {"/v4/jobs": 100}
    failures.update(always)
    with pytest.raises(ServerError):
        run(start_flow(ctx(clock), JobSpec(command="x"), "key2", Observers()), answer, clock)


def test_interrupt_stop_fetches_the_output_printed_before_the_stop() -> None:
    clock, seen = Clock(), Seen()
    state = {"stdout": "a\n", "stopped": False}

    def answer(req: ApiRequest) -> Any:
        if req.path == "/v4/jobs/stop":
            state["stopped"] = True
            state["stdout"] = "a\nb printed before the stop\n"
            return None
        if "stdout" in req.path:
            return {"stdout": state["stdout"]}
        return job("Stopped" if state["stopped"] else "Running")

    observers = Observers([seen])
    logs = LogStream(ctx(clock), JobHandle("j1"), PollOptions(), observers)
    run(logs.fetch(final=False), answer, clock)
    assert seen.lines == ["a"]
    run(interrupt_stop_flow(ctx(clock), JobHandle("j1"), PollOptions(), KeyboardInterrupt(),
                            observers, logs), answer, clock)
    assert seen.lines == ["a", "b printed before the stop"]
    assert any("stopped (Stopped)" in n for n in seen.notices)


def test_get_flow_reads_v1_runs_through_the_same_validation() -> None:
    clock = Clock()
    with pytest.raises(InvalidResponseError, match="/runs/r1"):
        run(get_flow(ctx(clock), JobHandle("r1", kind="run")), lambda req: {"id": "r1", "status": {}}, clock)


def test_requests_of_a_wait_carry_what_is_left_of_max_poll_time() -> None:
    """So the transport's own retries of one request cannot outlast the wait."""
    from domino_orchestrate.core.flows import BoundedRequest

    clock, stopped = Clock(), []
    seen: list[tuple[float, Any]] = []
    answer = outage_answer(stopped)

    def recording(req: ApiRequest) -> Any:
        seen.append((clock.now, req))
        return answer(req)

    options = PollOptions(max_poll_time=30, retry_count=10_000)
    with pytest.raises(PollTimeoutError):
        run(wait_flow(ctx(clock), JobHandle("j1"), options, Observers()), recording, clock)
    polls = [(at, req) for at, req in seen if req.path == "/v4/jobs/j1" and at < 30]
    assert len(polls) > 3
    for at, req in polls:
        assert isinstance(req, BoundedRequest) and req.remaining == pytest.approx(30 - at)


def test_giving_up_after_retry_count_says_the_job_may_still_be_running() -> None:
    clock, seen = Clock(), Seen()
    outcomes = iter([job("Running")] + [TransportError("refused")] * 3)

    def answer(req: ApiRequest) -> Any:
        return {"stdout": ""} if "stdout" in req.path else next(outcomes)

    with pytest.raises(TransportError):
        run(wait_flow(ctx(clock), JobHandle("j1"), PollOptions(retry_count=2), Observers([seen])),
            answer, clock)
    assert any("after 3 consecutive errors" in n and "may still be running" in n for n in seen.notices)


def test_start_that_never_appears_is_sent_again_only_after_the_lookup_window() -> None:
    clock = Clock()
    starts: list[float] = []

    def answer(req: ApiRequest) -> Any:
        if req.path == "/v4/jobs/start":
            starts.append(clock.now)
            return ServerError("rejected before creating", status_code=503) if len(starts) == 1 \
                else job("Queued", "new1")
        return {"jobs": []}

    handle, _ = run(start_flow(ctx(clock), JobSpec(command="x"), "key1", Observers()), answer, clock)
    assert handle.job_id == "new1" and len(starts) == 2
    assert starts[1] - starts[0] >= LOST_START_LOOKUPS[-1]
