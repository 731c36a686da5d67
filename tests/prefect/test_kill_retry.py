"""Kill-safety and retry-safety: a task timeout, max_poll_time, an asyncio cancel and a SIGTERM
(what Prefect's runner sends when a flow run is cancelled) all stop the Domino job; task retries,
subflow retries and parent flow-run retries reattach to the job already started."""

from __future__ import annotations

import asyncio
import contextvars
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import prefect.runtime as prefect_runtime
import pytest
from prefect import flow, unmapped
from prefect.client.orchestration import get_client
from prefect.states import Cancelling

from domino_orchestrate.core import JobHandle
from domino_orchestrate.prefect import (
    DominoCredentials,
    _common,
    run_domino_job,
    start_domino_job,
    start_domino_job_async,
    wait_for_domino_job,
    wait_for_domino_job_async,
)

#: A timed-out flow ends long before its 60 s job would: its stop takes a poll interval and the
#: sandbox's stop. Measured 4.5-7 s at load 10 on 2 cores: this leaves a machine at load 8 that
#: margin four times over and is still far from the 60 s a wait that did not stop the job takes.
ENDS_WITHIN = 30.0


def _title(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}"


def _only_job(h: Any, domino: Any, title: str) -> Any:
    jobs = h.jobs_titled(domino, title)
    assert len(jobs) == 1, jobs
    return jobs[0]


def _wait_stopped(h: Any, domino: Any, title: str) -> None:
    job = _only_job(h, domino, title)
    # The stop was confirmed before the task ended: the job is already terminal.
    assert domino.get_job(job.job_id).status.value == "Stopped"


# --- stopping ----------------------------------------------------------------------------------


def test_task_timeout_stops_job(creds: DominoCredentials, h: Any, domino: Any) -> None:
    title = _title("tmo")

    @flow
    def pipeline() -> None:
        handle = start_domino_job(creds, "echo started; sleep 60", title=title)
        wait_for_domino_job.with_options(timeout_seconds=2)(creds, handle, poll_options=h.fast())

    started = time.monotonic()
    state = pipeline(return_state=True)
    assert state.is_failed()
    assert time.monotonic() - started < ENDS_WITHIN
    with pytest.raises(TimeoutError):
        state.result()
    _wait_stopped(h, domino, title)
    # The stop and its confirmation are in the flow run's logs, not only the worker console.
    job = _only_job(h, domino, title)
    logs = "\n".join(h.read_logs(state.state_details.flow_run_id))
    assert f"stopping Domino job {job.job_id}" in logs
    assert f"Domino job {job.job_id} stopped (Stopped)" in logs


def test_max_poll_time_stops_job(creds: DominoCredentials, h: Any, domino: Any) -> None:
    title = _title("mpt")
    state = run_domino_job(creds, "sleep 60", title=title, max_poll_time=1.5,
                           poll_options=h.fast(), return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match="did not finish within"):
        state.result()
    _wait_stopped(h, domino, title)


async def test_async_task_timeout_stops_job(creds: DominoCredentials, h: Any, domino: Any) -> None:
    title = _title("atmo")

    @flow
    async def pipeline() -> None:
        handle = await start_domino_job_async(creds, "sleep 60", title=title)
        await wait_for_domino_job_async.with_options(timeout_seconds=2)(
            creds, handle, poll_options=h.fast())

    state = await pipeline(return_state=True)
    assert state.is_failed()
    await asyncio.to_thread(_wait_stopped, h, domino, title)


async def test_asyncio_cancel_of_async_flow_stops_job(creds: DominoCredentials, h: Any,
                                                      domino: Any) -> None:
    title = _title("acancel")

    @flow
    async def pipeline() -> None:
        handle = await start_domino_job_async(creds, "echo go; sleep 60", title=title)
        await wait_for_domino_job_async(creds, handle, poll_options=h.fast())

    running = asyncio.create_task(pipeline())

    def job_running() -> bool:
        jobs = h.jobs_titled(domino, title)
        return bool(jobs) and jobs[0].status.value == "Running"

    await asyncio.to_thread(h.wait_for, job_running, 30.0)
    await asyncio.sleep(0.5)
    running.cancel()
    with pytest.raises(BaseException):  # noqa: B017 - Prefect may re-raise as CancelledError or a crash
        await running
    await asyncio.to_thread(_wait_stopped, h, domino, title)


_SCRIPTS = {
    "sync": textwrap.dedent("""
        import sys
        from prefect import flow
        from domino_orchestrate.prefect import DominoCredentials, run_domino_job

        @flow
        def cancellable(title: str) -> None:
            run_domino_job(DominoCredentials(project="demo/quick-start"), "echo go; sleep 60",
                           title=title, poll_options={"poll_freq": 0.5, "initial_interval": 0.2})

        cancellable(sys.argv[1])
    """),
    "async": textwrap.dedent("""
        import asyncio, sys
        from prefect import flow
        from domino_orchestrate.prefect import DominoCredentials, run_domino_job_async

        @flow
        async def cancellable(title: str) -> None:
            await run_domino_job_async(
                DominoCredentials(project="demo/quick-start"), "echo go; sleep 60", title=title,
                poll_options={"poll_freq": 0.5, "initial_interval": 0.2})

        asyncio.run(cancellable(sys.argv[1]))
    """),
}


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_sigterm_of_flow_process_stops_job(kind: str, prefect_api: str, sandbox: Any, h: Any,
                                           domino: Any, tmp_path: Path) -> None:
    """Prefect's runner cancels a flow run by sending SIGTERM to its process (TerminationSignal);
    the credentials come from the Domino env vars, as inside a deployment."""
    title = _title(f"sigterm-{kind}")
    script = tmp_path / "cancellable.py"
    script.write_text(_SCRIPTS[kind])
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "DOMINO_API_HOST": sandbox.url,
           "DOMINO_USER_API_KEY": sandbox.api_key}
    proc = subprocess.Popen([sys.executable, str(script), title], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def job_running() -> bool:
            jobs = h.jobs_titled(domino, title)
            return bool(jobs) and jobs[0].status.value == "Running"

        h.wait_for(job_running, 60.0)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    text = out.decode(errors="replace")
    assert sandbox.api_key not in text
    _wait_stopped(h, domino, title)


# --- retries -----------------------------------------------------------------------------------


def test_task_retry_reattaches(creds: DominoCredentials, h: Any, sandbox: Any,
                               mocker: Any) -> None:
    """The start task fails right after starting the job; its retry finds that job."""
    title = _title("tretry")
    real = _common.write_link_artifact
    calls: list[JobHandle] = []

    def flaky(handle: JobHandle) -> None:
        calls.append(handle)
        if len(calls) == 1:
            raise RuntimeError("lost after start")
        real(handle)

    mocker.patch.object(_common, "write_link_artifact", side_effect=flaky)

    @flow
    def pipeline() -> dict[str, Any]:
        handle = start_domino_job.with_options(retries=1)(creds, "sleep 1; echo done", title=title)
        return wait_for_domino_job(creds, handle, poll_options=h.fast())

    assert pipeline()["status"] == "Succeeded"
    assert [c.attached for c in calls] == [False, True]
    assert calls[0].job_id == calls[1].job_id
    assert h.starts(sandbox, title) == 1


def _fail_first_wait(mocker: Any) -> list[int]:
    real = _common.wait_sync
    calls: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("worker lost while waiting")
        return real(*args, **kwargs)

    mocker.patch.object(_common, "wait_sync", side_effect=flaky)
    return calls


def test_subflow_retry_reattaches(creds: DominoCredentials, h: Any, sandbox: Any,
                                  mocker: Any) -> None:
    title = _title("fretry")
    calls = _fail_first_wait(mocker)
    summary = run_domino_job.with_options(retries=1)(
        creds, "sleep 1; echo done", title=title, poll_options=h.fast())
    assert summary["status"] == "Succeeded"
    assert len(calls) == 2
    assert h.starts(sandbox, title) == 1


def test_parent_flow_retry_reattaches(creds: DominoCredentials, h: Any, sandbox: Any,
                                      mocker: Any) -> None:
    """A parent flow-run retry creates a new subflow run; the job is still found."""
    title = _title("pretry")
    calls = _fail_first_wait(mocker)

    @flow(retries=1)
    def parent() -> dict[str, Any]:
        return run_domino_job(creds, "sleep 1; echo done", title=title, poll_options=h.fast())

    assert parent()["status"] == "Succeeded"
    assert len(calls) == 2
    assert h.starts(sandbox, title) == 1


def test_two_identical_calls_start_two_jobs(creds: DominoCredentials, h: Any,
                                            sandbox: Any) -> None:
    """Idempotency must not merge two deliberate calls with the same arguments."""
    title = _title("twice")

    @flow
    def pipeline() -> list[str]:
        a = start_domino_job(creds, "echo same", title=title)
        b = start_domino_job(creds, "echo same", title=title)
        return [a.job_id, b.job_id]

    ids = pipeline()
    assert len(set(ids)) == 2
    assert h.starts(sandbox, title) == 2


# --- a flow run that ends while its tasks wait in other threads ----------------------------------


def _in_thread(fn: Any) -> threading.Thread:
    """Run ``fn`` in a thread that sees this test's Prefect settings (a context variable)."""
    thread = threading.Thread(target=contextvars.copy_context().run, args=(fn,), daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("late_confirmation", [False, True], ids=["prompt", "late-confirmation"])
def test_cancel_stops_jobs_waited_for_in_submitted_tasks(
        creds: DominoCredentials, h: Any, domino: Any, monkeypatch: pytest.MonkeyPatch,
        mocker: Any, late_confirmation: bool) -> None:
    """The UI's Cancel sets the flow run Cancelling; Prefect interrupts only the flow's main
    thread (and here no worker SIGTERMs anything): jobs waited for by ``.submit()`` are stopped
    by the flow-run watch, and the stop is in the flow run's logs.

    ``late_confirmation``: the waiting tasks see their jobs Stopped before the watch's stop call
    returns (as on a loaded machine); the flow run must still not end before the confirmation is
    logged (in a deployment its process exits then, and the line was lost)."""
    # No worker here to SIGTERM the flow: act on Cancelling after 1 s instead of 5.
    monkeypatch.setattr(_common, "CANCELLING_GRACE", 1.0, raising=False)
    if late_confirmation:
        from domino_orchestrate.core import DominoClient

        real_stop = DominoClient.stop_job

        def confirmed_late(self: Any, *args: Any, **kwargs: Any) -> Any:
            final = real_stop(self, *args, **kwargs)
            if threading.current_thread().name.startswith("domino-stop-"):  # the watch's stop
                time.sleep(3)
            return final

        mocker.patch.object(DominoClient, "stop_job", confirmed_late)
    title = _title("cancel-submit")
    flow_run_ids: list[Any] = []

    @flow
    def pipeline() -> None:
        flow_run_ids.append(prefect_runtime.flow_run.id)
        handles = [start_domino_job(creds, "echo go; sleep 60", title=f"{title}-{i}")
                   for i in range(2)]
        futures = [wait_for_domino_job.submit(creds, handle, poll_options=h.fast())
                   for handle in handles]
        [future.result() for future in futures]

    def cancel_when_running() -> None:
        h.wait_for(lambda: len([j for j in h.jobs_titled(domino, title)
                                if j.status.value == "Running"]) == 2, 60.0)
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(flow_run_ids[0], Cancelling(), force=True)

    canceller = _in_thread(cancel_when_running)
    started = time.monotonic()
    pipeline(return_state=True)
    canceller.join(5)
    assert time.monotonic() - started < ENDS_WITHIN + 10  # the cancel waits for both jobs to run
    jobs = h.jobs_titled(domino, title)
    assert len(jobs) == 2
    assert {domino.get_job(j.job_id).status.value for j in jobs} == {"Stopped"}
    logs = "\n".join(h.read_logs(flow_run_ids[0]))
    for job in jobs:
        assert f"is Cancelling): stopping Domino job {job.job_id}" in logs
        assert f"Domino job {job.job_id} stopped (Stopped)" in logs


def test_flow_timeout_stops_jobs_waited_for_in_mapped_tasks(creds: DominoCredentials, h: Any,
                                                            domino: Any) -> None:
    title = _title("flow-timeout")

    @flow(timeout_seconds=4)
    def pipeline() -> None:
        starts = start_domino_job.map(unmapped(creds), ["echo go; sleep 60"] * 2,
                                      title=[f"{title}-0", f"{title}-1"])
        wait_for_domino_job.map(unmapped(creds), starts, poll_options=unmapped(h.fast())).result()

    started = time.monotonic()
    state = pipeline(return_state=True)
    assert state.is_failed()
    assert time.monotonic() - started < ENDS_WITHIN
    jobs = h.jobs_titled(domino, title)
    assert len(jobs) == 2
    assert {domino.get_job(j.job_id).status.value for j in jobs} == {"Stopped"}
    logs = "\n".join(h.read_logs(state.state_details.flow_run_id))
    assert "timed out after 4 s (the flow's timeout_seconds)" in logs


def test_flow_retry_finds_one_command_started_in_two_projects_in_any_order(
        creds: DominoCredentials, h: Any, sandbox: Any) -> None:
    """The key holds the project: a retry that calls the projects in the other order still
    reattaches to both jobs; a new flow run (a deliberate rerun) starts both afresh."""
    title = _title("two-projects")

    @flow(retries=1, retry_delay_seconds=0)
    def pipeline() -> list[str]:
        projects = ["demo/quick-start", "demo/other"]
        if prefect_runtime.flow_run.run_count > 1:
            projects.reverse()
        handles = [start_domino_job(creds, "sleep 1; echo done", title=title, project=project)
                   for project in projects]
        if prefect_runtime.flow_run.run_count == 1:
            raise RuntimeError("lost after the starts")
        return [wait_for_domino_job(creds, handle, poll_options=h.fast())["job_id"]
                for handle in handles]

    first = pipeline()
    assert h.starts(sandbox, title) == 2
    second = pipeline()
    assert h.starts(sandbox, title) == 4
    assert not set(first) & set(second)


def test_flow_retry_with_persisted_results_restarts_a_failed_job(creds: DominoCredentials, h: Any,
                                                                 sandbox: Any) -> None:
    """With results persisted, Prefect would answer the retried start from its cache (attempt 1's
    handle of a job that failed). Start tasks bypass the cache: the identity rule starts anew."""
    from prefect.settings import PREFECT_RESULTS_PERSIST_BY_DEFAULT, temporary_settings

    title = _title("persisted")

    @flow(retries=1, retry_delay_seconds=0)
    def pipeline() -> None:
        handle = start_domino_job(creds, "echo fails; exit 1", title=title)
        wait_for_domino_job(creds, handle, poll_options=h.fast())

    with temporary_settings({PREFECT_RESULTS_PERSIST_BY_DEFAULT: True}):
        state = pipeline(return_state=True)
    assert state.is_failed()
    assert h.starts(sandbox, title) == 2
