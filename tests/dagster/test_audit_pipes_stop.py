"""Audit of issue 16 (``PipesDominoClient``: "same idempotent start, reattach, stop on terminate,
timeouts as ``DominoResource``", ``forward_termination``): a Pipes job past its ``max_poll_time``
is stopped and fails the step; a terminated step stops its Pipes job, unless
``forward_termination=False`` leaves it running.

(No ``from __future__ import annotations``: Dagster reads the context annotation.)
"""

from typing import Any

import pytest
from dagster import AssetExecutionContext, DagsterInstance, Failure, asset, materialize

from domino_orchestrate.core import JobStatus
from domino_orchestrate.dagster import DominoResource, PipesDominoClient
from domino_orchestrate.sandbox.server import SandboxServer

from .test_dagster_integration import interrupt_once_started, watcher

PROJECT = "demo/quick-start"
#: A Pipes job that never reports anything: the client must still stop it.
SLOW = "echo started; sleep 30; echo never-printed"


def pipes_asset(name: str, **run_kwargs: Any) -> Any:
    @asset(name=name)
    def slow(context: AssetExecutionContext, domino_pipes: PipesDominoClient) -> Any:
        return domino_pipes.run(context=context, command=SLOW,
                                **run_kwargs).get_materialize_result()

    return slow


def test_a_pipes_job_past_its_max_poll_time_is_stopped_and_fails_the_step(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance,
) -> None:
    slow = pipes_asset("slow", poll_overrides={"max_poll_time": 1.5})
    with pytest.raises(Failure) as raised:
        materialize([slow], instance=instance,
                    resources={"domino_pipes": PipesDominoClient(domino=domino)})
    assert "did not finish within" in str(raised.value.description)
    (snap,) = watcher(srv).list_jobs()
    assert snap.status is JobStatus.STOPPED
    assert b"never-printed" not in srv.output(snap.job_id)[0]


@pytest.mark.parametrize(("forward_termination", "expected"),
                         [(True, JobStatus.STOPPED), (False, JobStatus.RUNNING)])
def test_a_terminated_step_stops_its_pipes_job_unless_told_not_to(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance, mocker: Any,
    forward_termination: bool, expected: JobStatus,
) -> None:
    state = interrupt_once_started(srv, mocker)
    client = PipesDominoClient(domino=domino, forward_termination=forward_termination)
    result = materialize([pipes_asset("terminated")], instance=instance, raise_on_error=False,
                         resources={"domino_pipes": client})
    assert state["raised"] and not result.success
    (snap,) = watcher(srv).list_jobs()
    assert snap.status is expected
    if expected is JobStatus.RUNNING:
        watcher(srv).stop_job(snap.job_id)
