"""The fast layer of the lifecycle rules (the deployment tests in tests/deploy/airflow prove them
in a real Airflow): what Airflow's clear generation is, when a recorded job is reused, a sensor's
trigger never stops the job it watches, a re-created trigger repeats no line."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(120)


def _context(max_tries: int, try_number: int = 1, map_index: int = -1) -> dict[str, Any]:
    ti = SimpleNamespace(dag_id="d", task_id="t", run_id="r", map_index=map_index,
                         max_tries=max_tries, try_number=try_number)
    return {"ti": ti}


def _operator(command: str = "python train.py", retries: int = 2) -> Any:
    from domino_orchestrate.airflow import DominoJobOperator

    return DominoJobOperator(task_id="t", command=command, retries=retries)


def test_clear_generation_follows_max_tries_not_the_try_number(domino_conn: Any) -> None:
    """Airflow: max_tries == retries until a clear sets it to try_number + retries; a retry
    changes only try_number. So a retry keeps the key and a clear changes it."""
    from domino_orchestrate.airflow.operators import clear_generation

    op = _operator(retries=2)
    first = op.idempotency_key(_context(max_tries=2, try_number=1))
    retry = op.idempotency_key(_context(max_tries=2, try_number=2))
    cleared = op.idempotency_key(_context(max_tries=4, try_number=3))  # cleared after try 2
    cleared_again = op.idempotency_key(_context(max_tries=5, try_number=4))
    assert first == retry
    assert len({first, cleared, cleared_again}) == 3
    assert clear_generation(_context(max_tries=4)["ti"], 2) == 2
    assert clear_generation(SimpleNamespace(), 2) == 0  # no max_tries known: first generation
    # what is started and where is part of the key as well
    assert _operator("python other.py").idempotency_key(_context(2)) != first
    assert op.idempotency_key(_context(2, map_index=1)) != first


def test_a_recorded_job_is_reused_only_under_the_core_rule(domino_conn: Any, af: Any) -> None:
    """task_state_store's handle: another generation → fresh; a stopping job → fresh; running or
    succeeded with the same key → reattach / reuse."""
    from domino_orchestrate.airflow.operators import NOT_REUSABLE

    op = _operator(retries=0)
    context = _context(max_tries=0)
    client = af.sandbox_client(domino_conn)
    old = client.start_job("echo earlier", idempotency_key="not-this-generation")
    assert op.get_job_status(old.to_dict(), context) == NOT_REUSABLE
    assert not op.is_job_active(NOT_REUSABLE) and not op.is_job_succeeded(NOT_REUSABLE)
    for status in ("StopRequested", "Stopping", "Stopped", "Failed", "Error"):
        assert not op.is_job_active(status), status
        assert not op.is_job_succeeded(status), status
    assert op.is_job_active("Running") and op.is_job_active("Queued")
    assert op.is_job_succeeded("Succeeded")
    mine = client.start_job("python train.py", idempotency_key=op.idempotency_key(context))
    assert op.get_job_status(mine.to_dict(), context) in {"Queued", "Preparing", "Running",
                                                           "Succeeded", "Finishing"}


def _trigger(sandbox: Any, job_id: str, **kwargs: Any) -> Any:
    from domino_orchestrate.airflow.triggers import DominoJobTrigger
    from domino_orchestrate.core import JobHandle, PollOptions

    handle = JobHandle(job_id=job_id, project="demo/quick-start")
    options = PollOptions(poll_freq=0.5, initial_interval=0.2, stop_timeout=15)
    return DominoJobTrigger("domino_default", handle.to_dict(), options.to_dict(),
                            project="demo/quick-start", **kwargs)


def test_a_sensor_trigger_killed_leaves_the_job_running(domino_conn: Any, af: Any,
                                                        tmp_path: Any) -> None:
    client = af.sandbox_client(domino_conn)
    go = tmp_path / "go"
    job = client.start_job(f"echo watched; while [ ! -f {go} ]; do sleep 0.2; done")
    _wait_running(client, job)
    asyncio.run(_trigger(domino_conn, job.job_id, owns_job=False).on_kill())
    assert str(client.get_job(job).status) == "Running"
    asyncio.run(_trigger(domino_conn, job.job_id).on_kill())  # the operator's trigger owns it
    assert str(client.get_job(job).status) == "Stopped"


def _wait_running(client: Any, job: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while str(client.get_job(job).status) != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_recreated_trigger_repeats_no_line(domino_conn: Any, af: Any, tmp_path: Any,
                                             capfd: Any) -> None:
    """The first trigger logs some lines and is cancelled (triggerer restart); the second one,
    given the recorded count (the XCom in a deployment), logs only the rest and says so."""
    client = af.sandbox_client(domino_conn)
    go = tmp_path / "go"
    job = client.start_job(f"for i in 1 2 3; do echo early-$i; done; "
                           f"while [ ! -f {go} ]; do sleep 0.2; done; echo late-1")
    record = SimpleNamespace(count=0)

    def recording(trigger: Any) -> Any:
        async def before() -> int:
            return record.count

        async def save(count: int) -> None:
            record.count = count

        trigger._lines_logged_before = before
        trigger._record_lines_logged = save
        return trigger

    async def first_until_cancelled() -> None:
        run = recording(_trigger(domino_conn, job.job_id)).run()
        task = asyncio.ensure_future(run.__anext__())
        deadline = asyncio.get_running_loop().time() + 30
        while record.count < 3:
            assert asyncio.get_running_loop().time() < deadline, record.count
            await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(first_until_cancelled())
    assert record.count == 3
    first = capfd.readouterr()
    assert "early-3" in first.out + first.err
    go.touch()
    event = asyncio.run(recording(_trigger(domino_conn, job.job_id)).run().__anext__())
    assert event.payload["status"] == "success"
    second = capfd.readouterr()
    text = second.out + second.err
    assert "late-1" in text and "early-1" not in text, text
    assert "Log resynchronised" in text and record.count == 4


def test_deferrable_sensor_timeout_names_its_timeout_and_leaves_the_job_running(
        domino_conn: Any, af: Any, capfd: Any, tmp_path: Any) -> None:
    from airflow.sdk import DAG

    from domino_orchestrate.airflow import DominoJobSensor

    client = af.sandbox_client(domino_conn)
    go = tmp_path / "go"
    job = client.start_job(f"echo watched-long; while [ ! -f {go} ]; do sleep 0.2; done")
    with DAG("domino_sensor_timeout", schedule=None) as dag:
        DominoJobSensor(task_id="watch", job_id=job.job_id, poke_interval=0.5, timeout=3,
                        deferrable=True)
    dr = af.run_dag(dag)
    captured = capfd.readouterr()
    out = captured.out + captured.err
    assert str(af.task_instances(dr)["watch"].state) == "failed"
    assert "AirflowSensorTimeout" in out and "within timeout (3s" in out, out[-3000:]
    assert "Raise timeout if it needs longer" in out and "max_poll_time" not in out
    assert str(client.get_job(job).status) == "Running"  # a sensor only watches
    go.touch()


def test_a_cleared_task_is_a_new_lineage_run_and_a_retry_is_not() -> None:
    from datetime import datetime, timezone

    from domino_orchestrate.core.lineage import lineage_run_id

    op = _operator(retries=1)

    def run_id(max_tries: int, try_number: int) -> str:
        context = {**_context(max_tries=max_tries, try_number=try_number),
                   "dag_run": SimpleNamespace(logical_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
                                              clear_number=0)}
        return lineage_run_id(op.lineage_info(context))

    assert run_id(1, 1) == run_id(1, 2)  # automatic retry: the same job, the same lineage run
    assert run_id(3, 3) != run_id(1, 1)  # cleared after try 2: a fresh job, a new lineage run
