"""Flows the Prefect deployment tests deploy (copied to a temporary source folder, deployed from
there to a ``process`` work pool, run by a real worker).

Credentials come from the saved ``DominoCredentials`` block named ``sandbox``; the worker has no
``DOMINO_*`` variables, so a credentials parameter that did not resolve to the saved block fails.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import flow, get_run_logger, unmapped
from prefect.deployments import run_deployment
from prefect.runtime import flow_run
from prefect.task_runners import ProcessPoolTaskRunner

from domino_orchestrate.core import JobFailedError
from domino_orchestrate.prefect import (
    start_domino_job,
    start_domino_job_async,
    wait_for_domino_job,
    wait_for_domino_job_async,
)
from domino_orchestrate.prefect.flows import run_domino_job

CREDS = "sandbox"
FAST = {"poll_freq": 0.5, "initial_interval": 0.2, "stop_timeout": 20.0}
LONG = "echo started; sleep 120"

__all__ = ["run_domino_job"]  # deployed as is: the prebuilt flow, credentials given in the UI


@flow
def cancellable(title: str, mode: str) -> None:
    """Long jobs waited for in the forms ``mode`` names; the tests cancel the flow run.

    ``threads``: one job waited for by ``.submit()``, one by ``.map()`` (both in worker threads)
    while the main thread follows a third in a subflow. ``sequential``: a task called directly.
    ``run_deployment``: a child flow run of this deployment in ``sequential`` mode.
    """
    if mode == "threads":
        submitted = wait_for_domino_job.submit(
            CREDS, start_domino_job(CREDS, LONG, title=f"{title}-submit"), poll_options=FAST)
        mapped = wait_for_domino_job.map(
            CREDS, start_domino_job.map(CREDS, [LONG], title=[f"{title}-map"]),
            poll_options=unmapped(FAST))
        run_domino_job(CREDS, LONG, title=f"{title}-subflow", poll_options=FAST)
        submitted.result()
        mapped.result()
    elif mode == "sequential":
        handle = start_domino_job(CREDS, LONG, title=f"{title}-sequential")
        wait_for_domino_job(CREDS, handle, poll_options=FAST)
    elif mode == "run_deployment":
        run_deployment("cancellable/cancellable",
                       parameters={"title": f"{title}-child", "mode": "sequential"})
    else:
        raise ValueError(f"unknown mode {mode!r}")


@flow
async def cancellable_async(title: str) -> None:
    handles = await asyncio.gather(
        *(start_domino_job_async(CREDS, LONG, title=f"{title}-async_gather-{i}")
          for i in range(2)))
    await asyncio.gather(
        *(wait_for_domino_job_async(CREDS, handle, poll_options=FAST) for handle in handles))


@flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
def cancellable_process(title: str) -> None:
    handles = [start_domino_job(CREDS, LONG, title=f"{title}-process_pool-{i}") for i in range(2)]
    waits = [wait_for_domino_job.submit(CREDS, h, poll_options=FAST) for h in handles]
    [future.result() for future in waits]


@flow(timeout_seconds=10)
def timing_out(title: str) -> None:
    starts = start_domino_job.map(CREDS, [LONG, LONG], title=[f"{title}-0", f"{title}-1"])
    wait_for_domino_job.map(CREDS, starts, poll_options=unmapped(FAST)).result()


@flow(retries=1, retry_delay_seconds=0)
def mapped_retry(title: str) -> list[dict[str, Any]]:
    """The same command mapped over two projects; the first attempt fails after every job has
    started, and calls the projects in the other order than the retry does."""
    projects = ["demo/quick-start", "demo/other"]
    if flow_run.run_count > 1:
        projects.reverse()
    commands = [f"sleep 3; echo {title}-a", f"sleep 3; echo {title}-b"]
    pairs = [(command, project) for command in commands for project in projects]
    starts = start_domino_job.map(CREDS, [c for c, _ in pairs], title=title,
                                  project=[p for _, p in pairs])
    handles = [future.result() for future in starts]
    if flow_run.run_count == 1:
        raise RuntimeError("worker lost after the starts")
    return [wait_for_domino_job(CREDS, h, poll_options=FAST) for h in handles]


def _report(where: str, exc: BaseException) -> None:
    status = getattr(exc, "status", None)
    get_run_logger().error("%s: %s status=%s tail=%s", where, type(exc).__name__,
                           getattr(status, "value", status), getattr(exc, "stdout_tail", None))


@flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
def failing_in_process(title: str) -> None:
    handle = start_domino_job(CREDS, f"echo boom-{title}; exit 3", title=title)
    try:
        wait_for_domino_job.submit(CREDS, handle, poll_options=FAST).result()
    except JobFailedError as exc:
        _report("process pool", exc)
        raise


@flow
def failing_child(title: str) -> None:
    run_domino_job(CREDS, f"echo boom-{title}; exit 3", title=title, poll_options=FAST)


@flow
def failing_parent(title: str) -> None:
    child = run_deployment("failing-child/failing-child", parameters={"title": title})
    assert child.state is not None
    exc = child.state.result(raise_on_failure=False)
    if isinstance(exc, BaseException):
        _report("run_deployment", exc)


DEPLOYMENTS = {
    "cancellable": cancellable,
    "cancellable-async": cancellable_async,
    "cancellable-process": cancellable_process,
    "timing-out": timing_out,
    "mapped-retry": mapped_retry,
    "failing-in-process": failing_in_process,
    "failing-child": failing_child,
    "failing-parent": failing_parent,
    "run-domino-job": run_domino_job,
}
