"""Every DominoError crosses a process boundary (Prefect run_deployment, process pools) intact."""

from __future__ import annotations

import pickle

import pytest

from domino_orchestrate.core import JobSnapshot
from domino_orchestrate.core.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidResponseError,
    JobFailedError,
    JobNotFoundError,
    PollTimeoutError,
    RateLimitedError,
    ServerError,
    StopNotConfirmedError,
    TransportError,
)

SNAPSHOT = JobSnapshot.from_v4(
    {"id": "j1", "statuses": {"executionStatus": "Failed", "isCompleted": True}},
    "http://d/jobs/a/b/j1",
)

ERRORS = [
    ConfigurationError("bad option"),
    TransportError("no answer", method="GET", path="/v4/jobs/j1", sent=False),
    ServerError("boom", status_code=502, method="GET", path="/v4/jobs/j1", excerpt="<html>"),
    AuthenticationError("who", status_code=401, method="GET", path="/version"),
    JobNotFoundError("gone", status_code=404, method="GET", path="/v4/jobs/j1"),
    InvalidResponseError("html", status_code=200, method="GET", path="/v4/jobs/j1"),
    RateLimitedError("slow down", status_code=429, retry_after=3.5, method="POST", path="/x"),
    JobFailedError(SNAPSHOT, ["last line"]),
    PollTimeoutError("j1", waited_s=12.0, last_status="Running", stop_confirmed=True,
                     stdout_tail=["tail"]),
    StopNotConfirmedError("j1", last_status="Stopping", waited_s=60.0),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_round_trip_keeps_type_message_and_fields(error: Exception) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy).keys() == vars(error).keys()
    for name, value in vars(error).items():
        assert getattr(copy, name) == value, name


def test_job_failed_error_keeps_status_and_tail_after_round_trip() -> None:
    copy = pickle.loads(pickle.dumps(JobFailedError(SNAPSHOT, ["x", "y"])))
    assert copy.job_id == "j1" and copy.status.value == "Failed" and copy.stdout_tail == ["x", "y"]
