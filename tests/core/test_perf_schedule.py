"""The wait's poll schedule and request budget (issue 18's small misses), stepped with a fake
clock, no I/O.

- A 2 s job's end is seen within a second (one early poll, between 2 and 3 s after the start).
- The wait never sends more requests than python-domino's loop for the same job, live stdout
  fetches included: it polls at once and then every poll_freq until the job has ended, so a job
  ending T s after its start costs it 1 + ceil(T / poll_freq) polls (plus one stdout fetch at the
  end, as the wait's final fetch). Checked for every end time from 0.1 s to 130 s.
- Output still streams live in a long job, and no gap between polls is longer than poll_freq
  except the one tick that pays for a live fetch (2 x poll_freq).
"""

from __future__ import annotations

import math

from domino_orchestrate.core import DominoConfig, JobHandle, PollOptions
from domino_orchestrate.core.api import ApiRequest, Sleep
from domino_orchestrate.core.flows import Context, PollSchedule, RequestBudget, wait_flow
from domino_orchestrate.core.observe import Observers


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def follow(ends_at: float, handle: JobHandle, options: PollOptions | None = None,
           fetched_at: list[float] | None = None) -> tuple[list[float], list[float], int]:
    """Follow a job that ends ``ends_at`` s after the wait began: (poll times, naps, fetches)."""
    clock = Clock()
    config = DominoConfig.resolve("http://d", "o/p", api_key="k", env={})
    flow = wait_flow(Context(config, clock=clock, project_id="pid"), handle,
                     options or PollOptions(), Observers())
    polls: list[float] = []
    naps: list[float] = []
    fetches = 0
    try:
        step = next(flow)
        while True:
            if isinstance(step, Sleep):
                naps.append(step.seconds)
                clock.now += step.seconds
                step = flow.send(None)
                continue
            assert isinstance(step, ApiRequest)
            if step.path.endswith("/stdout"):
                fetches += 1
                if fetched_at is not None:
                    fetched_at.append(clock.now)
                step = flow.send({"stdout": "a line\n"})
                continue
            polls.append(clock.now)
            done = clock.now >= ends_at
            status = "Succeeded" if done else "Running"
            step = flow.send({"id": handle.job_id, "statuses": {"executionStatus": status,
                                                                 "isCompleted": done}})
    except StopIteration:
        pass
    return polls, naps, fetches


STARTED = JobHandle("j1", idempotency_key="k1")


def test_a_two_second_job_is_seen_within_a_second() -> None:
    for _ in range(20):  # the schedule's phase is jittered
        polls, _, _ = follow(2.05, STARTED)
        assert polls[-1] - 2.05 <= 1.0, polls


def official_polls(ends_at: float, poll_freq: float = 5.0) -> int:
    """python-domino's status polls for a job ending ``ends_at`` s after its start: at once, then
    every poll_freq until one sees it ended (domino-api.md §3.2, polling2)."""
    return 1 + math.ceil(ends_at / poll_freq)


def test_a_just_started_job_is_not_polled_at_once_and_a_twenty_second_job_costs_no_more() -> None:
    for _ in range(20):
        polls, naps, fetches = follow(20.3, STARTED)
        assert polls[0] >= 0.9, "the first poll waits for the schedule"
        assert len(polls) + fetches - 1 <= official_polls(20.3), (polls, fetches)
        assert polls[-1] - 20.3 <= 1.0
        assert max(naps) <= 5.0 + 1e-6


def test_never_more_requests_than_the_official_client_for_any_job_length() -> None:
    # Before the budget a 60 s job cost 14 polls + 5 live fetches against python-domino's 14 polls.
    for stream_logs in (True, False):
        for tenth in range(1, 1300):
            ends_at = tenth / 10 + 0.03
            polls, _, fetches = follow(ends_at, STARTED, PollOptions(stream_logs=stream_logs))
            ours = len(polls) + fetches - 1  # the final fetch matches python-domino's
            assert ours <= official_polls(ends_at), (ends_at, polls, fetches)


def test_a_reattached_wait_costs_no_more_either() -> None:
    for tenth in range(0, 700, 3):
        ends_at = tenth / 10 - 1.0  # it may have ended before the wait began
        polls, _, fetches = follow(ends_at, JobHandle("j1"))
        assert len(polls) + fetches - 1 <= 1 + max(0, math.ceil(ends_at / 5.0)), (ends_at, polls)


def test_output_still_streams_live_in_a_long_job() -> None:
    fetched: list[float] = []
    polls, naps, fetches = follow(60.3, STARTED, fetched_at=fetched)
    live = [at for at in fetched if at < 60.3]
    assert live and live[0] <= 40.0, fetched  # a line printed early shows well before the end
    assert len(polls) + fetches - 1 <= official_polls(60.3)
    # Only the tick paying for a live fetch is skipped: no gap longer than 2 x poll_freq, and
    # the job's end is seen within poll_freq of it everywhere else.
    assert max(naps) <= 10.0 + 1e-6
    # (the last such tick may pay for a fetch the job's end made unnecessary)
    assert sum(nap > 5.0 + 1e-6 for nap in naps) <= len(live) + 1


def test_stream_logs_false_never_skips_a_tick() -> None:
    for ends_at in (2.05, 5.2, 20.3, 60.3, 300.3):
        polls, naps, fetches = follow(ends_at, STARTED, PollOptions(stream_logs=False))
        assert fetches == 1 and max(naps) <= 5.0 + 1e-6
        assert polls[-1] - ends_at <= 5.0


def test_an_explicit_log_interval_is_the_users_pace() -> None:
    fetched: list[float] = []
    follow(60.3, STARTED, PollOptions(log_interval=5.0), fetched_at=fetched)
    assert len([at for at in fetched if at < 60.3]) >= 10, fetched


def test_the_budget_rule() -> None:
    budget = RequestBudget(5.0)
    budget.just_started()
    assert budget.earliest_poll() == 0.0  # one poll fits before the first poll_freq
    budget.sent = 1
    budget.running_at(2.5)
    assert not budget.fetch_fits() and budget.earliest_poll() == 5.0
    assert budget.earliest_poll(funding=True) == 10.0  # one tick without a poll pays for a fetch
    budget.sent = 2
    budget.running_at(10.7)
    assert budget.fetch_fits()


def test_a_reattached_job_is_polled_at_once() -> None:
    polls, _, _ = follow(0.0, JobHandle("j1", idempotency_key="k1", attached=True))
    assert polls == [0.0]
    polls, _, _ = follow(0.0, JobHandle("j1"))  # watching a job by id
    assert polls == [0.0]


def test_no_gap_is_longer_than_poll_freq() -> None:
    for freq in (0.5, 5.0, 60.0):
        schedule = PollSchedule(PollOptions(poll_freq=freq))
        elapsed, points = 0.0, []
        while elapsed < 10 * freq:
            nap = schedule.nap(elapsed)
            assert 0 < nap <= freq
            elapsed += nap
            points.append(elapsed)
        assert points == sorted(points)
