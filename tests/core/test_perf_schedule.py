"""The wait's poll schedule (issue 18's small misses), stepped with a fake clock, no I/O.

- A 2 s job's end is seen within a second (there is a poll between 2 and 3 s after the start).
- A job started just now is not polled at once, and a 20 s job (ending ~20.3 s after its start)
  costs no more requests than python-domino's loop: 6 status polls + 1 stdout fetch there (plus
  /version, the project and the start: 10); here 6 polls + 2 stdout fetches (one live, one
  final) + the start (the project id is known): 9, streaming included.
- No gap between polls is longer than poll_freq, and a reattached job is polled at once.
"""

from __future__ import annotations

from domino_orchestrate.core import DominoConfig, JobHandle, PollOptions
from domino_orchestrate.core.api import ApiRequest, Sleep
from domino_orchestrate.core.flows import Context, PollSchedule, wait_flow
from domino_orchestrate.core.observe import Observers


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def follow(ends_at: float, handle: JobHandle) -> tuple[list[float], list[float], int]:
    """Follow a job that ends ``ends_at`` s after the wait began: (poll times, naps, fetches)."""
    clock = Clock()
    config = DominoConfig.resolve("http://d", "o/p", api_key="k", env={})
    flow = wait_flow(Context(config, clock=clock, project_id="pid"), handle, PollOptions(),
                     Observers())
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


def test_a_just_started_job_is_not_polled_at_once_and_a_twenty_second_job_costs_no_more() -> None:
    for _ in range(20):
        polls, naps, fetches = follow(20.3, STARTED)
        assert polls[0] >= 0.9, "the first poll waits for the schedule"
        assert len(polls) == 6 and fetches == 2, (polls, fetches)
        assert polls[-1] - 20.3 <= 1.0
        assert max(naps) <= 5.0


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
