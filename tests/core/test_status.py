"""JobStatus: every Domino string, terminal/success sets, unknown strings never crash."""

import pytest

from domino_orchestrate.core import JobStatus

TERMINAL = {"Succeeded", "Failed", "Stopped", "Error"}


@pytest.mark.parametrize("member", list(JobStatus))
def test_every_member_classifies_consistently(member: JobStatus) -> None:
    assert member.is_terminal == (member.value in TERMINAL)
    assert member.is_success == (member.value == "Succeeded")
    assert member.is_failure == (member.value in TERMINAL - {"Succeeded"})


@pytest.mark.parametrize("raw", ["Stopped", "Error", "Failed"])
def test_error_and_stopped_are_failures_unlike_python_domino(raw: str) -> None:
    status = JobStatus.parse(raw)
    assert status.is_terminal and status.is_failure and not status.is_success


@pytest.mark.parametrize("raw", ["Teleporting", "", None, 42])
def test_unknown_is_non_terminal(raw: object) -> None:
    assert JobStatus.parse(raw) is JobStatus.UNKNOWN
    assert not JobStatus.UNKNOWN.is_terminal


def test_parse_is_case_insensitive_and_exact_for_known_values() -> None:
    assert JobStatus.parse("succeeded") is JobStatus.SUCCEEDED
    assert JobStatus.parse("StopAndDiscardRequested") is JobStatus.STOP_AND_DISCARD_REQUESTED
