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


# --- issue 13: isCompleted is honoured, whitespace and case are normalised -----------------------


@pytest.mark.parametrize("raw,member", [("Succeeded ", "Succeeded"), ("  failed", "Failed"),
                                        ("stop_requested", "StopRequested"),
                                        ("Stop And Discard Requested", "StopAndDiscardRequested")])
def test_reformatted_known_statuses_are_recognised(raw: str, member: str) -> None:
    assert JobStatus.parse(raw).value == member


@pytest.mark.parametrize("raw", ["Completed", None, "Succeeded-ish"])
def test_completed_flag_makes_an_unknown_status_terminal_but_never_a_success(raw: object) -> None:
    from domino_orchestrate.core import JobSnapshot

    snap = JobSnapshot.from_v4({"id": "j", "statuses": {"executionStatus": raw, "isCompleted": True}})
    assert snap.is_terminal and not snap.is_success
    assert snap.status_label == (raw or "unknown")
    running = JobSnapshot.from_v4({"id": "j", "statuses": {"executionStatus": raw, "isCompleted": False}})
    assert not running.is_terminal
    run = JobSnapshot.from_v1({"id": "r", "status": raw, "isCompleted": True})
    assert run.is_terminal and not run.is_success


@pytest.mark.parametrize("body", [[], None, "x", {"statuses": {}}, {"id": "j", "statuses": "Running"},
                                  {"id": "j", "statuses": {"executionStatus": 3}},
                                  {"id": ["j"]}])
def test_wrong_shapes_are_a_clear_value_error(body: object) -> None:
    from domino_orchestrate.core import JobSnapshot

    with pytest.raises(ValueError, match=r"expected|must be"):
        JobSnapshot.from_v4(body)


def test_a_completed_flag_that_is_not_a_boolean_leaves_the_verdict_to_the_status() -> None:
    from domino_orchestrate.core import JobSnapshot

    snap = JobSnapshot.from_v4({"id": "j", "statuses": {"executionStatus": "Running", "isCompleted": "yes"}})
    assert snap.completed is None and not snap.is_terminal


def test_a_known_status_is_trusted_over_the_completed_flag() -> None:
    from domino_orchestrate.core import JobSnapshot

    snap = JobSnapshot.from_v4({"id": "j", "statuses": {"executionStatus": "Finishing", "isCompleted": True}})
    assert not snap.is_terminal, "Finishing may still end Succeeded: keep following"
