"""Issue 12 under a real Dagster deployment (``dagster dev``: webserver + daemon + code server,
SQLite DAGSTER_HOME), driven through GraphQL the way the UI drives it: launch, terminate,
force-terminate, ``dagster/max_runtime``, re-execute FROM_FAILURE and ALL_STEPS, a run worker
SIGTERM with an automatic run retry. Every assertion is on the sandbox's record of Domino jobs
(how many, which status) or on the run's event log as GraphQL returns it."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the fixture's type, from this folder's conftest (not importable at runtime)
    from conftest import DagsterDeployment

pytestmark = [pytest.mark.deploy, pytest.mark.xdist_group("dagster-deployment")]

RUNNING = "Running"


def wait_for_job(deploy: DagsterDeployment, dagster_job: str, known: set[str],
                 text: bytes = b"started", timeout: float = 240.0) -> str:
    """The new Domino job of ``dagster_job`` once its stdout shows ``text`` (the run worker and
    a step process start first: each imports Dagster, a minute on a loaded 2-core machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job_id in set(deploy.jobs(dagster_job)) - known:
            if text in deploy.sandbox.output(job_id)[0]:
                return job_id
        time.sleep(0.3)
    raise AssertionError(f"no new Domino job of {dagster_job} printed {text!r} in {timeout}s")


def wait_job_status(deploy: DagsterDeployment, dagster_job: str, job_id: str,
                    timeout: float = 90.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status = deploy.jobs(dagster_job)[job_id]
        if status not in ("Queued", "Pending", "Preparing", "Running", "StopRequested",
                          "Stopping") or time.monotonic() > deadline:
            return status
        time.sleep(0.3)


@dataclass
class Stopped:
    run_id: str
    job_id: str
    run_status: str
    job_status: str
    jobs: dict[str, str]


def terminate_while_running(deploy: DagsterDeployment, dagster_job: str, *, force: bool = False,
                            max_runtime: bool = False) -> Stopped:
    """Launch ``dagster_job``, wait for its Domino job to print, terminate it (or let
    ``dagster/max_runtime`` fire), and wait for the run to finish."""
    known = set(deploy.jobs(dagster_job))
    run_id = deploy.launch(dagster_job)
    job_id = wait_for_job(deploy, dagster_job, known)
    if max_runtime:
        # Set once the job runs, already exceeded: the run monitoring daemon terminates the run
        # on its next check, however long the start took on a loaded machine.
        deploy.add_run_tags(run_id, {"dagster/max_runtime": "1"})
    else:
        deploy.terminate(run_id, force=force)
    run_status = deploy.wait_status(run_id)
    job_status = wait_job_status(deploy, dagster_job, job_id)
    # The step reports the stop after confirming it; under force-terminate the run is already
    # CANCELED by then, so give the event log time to catch up (the tests say what is missing).
    with contextlib.suppress(AssertionError):
        deploy.wait_for_message(run_id, f"Domino job {job_id} stopped", timeout=90)
    new = {k: v for k, v in deploy.jobs(dagster_job).items() if k not in known}
    return Stopped(run_id, job_id, run_status, job_status, new)


def assert_stopped_and_logged(deploy: DagsterDeployment, stopped: Stopped) -> None:
    assert stopped.jobs == {stopped.job_id: "Stopped"}, "the terminate left the Domino job running"
    assert b"never" not in deploy.sandbox.output(stopped.job_id)[0]
    messages = deploy.messages(stopped.run_id)
    # The stop and its confirmation, where the user looks: the run's event log (GraphQL).
    assert any(f"stopping Domino job {stopped.job_id}" in m for m in messages), messages
    assert f"Domino job {stopped.job_id} stopped (Stopped)" in messages, messages


# --- terminate, force-terminate, max_runtime: every form stops the Domino job ----------------


@pytest.fixture(scope="module")
def terminated_multiprocess(dagster_deployment: DagsterDeployment) -> Stopped:
    return terminate_while_running(dagster_deployment, "long_multiprocess")


def test_terminate_multiprocess_executor_stops_the_job(
    dagster_deployment: DagsterDeployment, terminated_multiprocess: Stopped
) -> None:
    assert terminated_multiprocess.run_status == "CANCELED"
    assert_stopped_and_logged(dagster_deployment, terminated_multiprocess)


def test_output_printed_after_the_last_fetch_reaches_the_event_log(
    dagster_deployment: DagsterDeployment, terminated_multiprocess: Stopped
) -> None:
    """The job prints 'cleanup-done' on SIGTERM, i.e. after the stop was requested: a final
    stdout fetch after the stop must deliver it to the event log."""
    stopped = terminated_multiprocess
    assert b"cleanup-done" in dagster_deployment.sandbox.output(stopped.job_id)[0]
    user = dagster_deployment.user_messages(stopped.run_id)
    assert ("INFO", "cleanup-done") in user, user


def test_terminate_in_process_executor_stops_the_job(dagster_deployment: DagsterDeployment) -> None:
    stopped = terminate_while_running(dagster_deployment, "long_in_process")
    assert stopped.run_status == "CANCELED"
    assert_stopped_and_logged(dagster_deployment, stopped)


def test_force_terminate_stops_the_job(dagster_deployment: DagsterDeployment) -> None:
    stopped = terminate_while_running(dagster_deployment, "long_multiprocess", force=True)
    assert stopped.run_status == "CANCELED"
    assert_stopped_and_logged(dagster_deployment, stopped)


def test_terminate_stops_the_job_even_if_the_steps_interrupt_is_lost(
    dagster_deployment: DagsterDeployment,
) -> None:
    stopped = terminate_while_running(dagster_deployment, "long_deaf")
    assert stopped.run_status == "CANCELED"
    assert_stopped_and_logged(dagster_deployment, stopped)


def test_max_runtime_tag_stops_the_job(dagster_deployment: DagsterDeployment) -> None:
    stopped = terminate_while_running(dagster_deployment, "long_max_runtime", max_runtime=True)
    assert stopped.run_status in ("FAILURE", "CANCELED")
    assert any("maximum runtime" in m for m in dagster_deployment.messages(stopped.run_id))
    assert_stopped_and_logged(dagster_deployment, stopped)


# --- re-execution: a deliberate rerun starts fresh, from failure reattaches --------------------


def failed_build(deploy: DagsterDeployment) -> tuple[str, str]:
    """A run whose Domino job succeeded but whose step then failed: (run id, Domino job id)."""
    known = set(deploy.jobs("build_then_fail_once"))
    run_id = deploy.launch("build_then_fail_once")
    assert deploy.wait_status(run_id) == "FAILURE"
    new = {k: v for k, v in deploy.jobs("build_then_fail_once").items() if k not in known}
    ((job_id, status),) = new.items()
    assert status == "Succeeded"
    return run_id, job_id


@pytest.fixture(scope="module")
def failed_parent(dagster_deployment: DagsterDeployment) -> tuple[str, str]:
    return failed_build(dagster_deployment)


def test_reexecute_all_steps_starts_a_new_job(
    dagster_deployment: DagsterDeployment, failed_parent: tuple[str, str]
) -> None:
    """Issue 12: "Re-execute all steps" of a failed run reused the job that run started."""
    deploy = dagster_deployment
    parent, first_job = failed_parent
    rerun = deploy.reexecute(parent, "ALL_STEPS")
    assert deploy.wait_status(rerun) == "SUCCESS"
    jobs = deploy.jobs("build_then_fail_once")
    (second_job,) = [k for k in jobs if k != first_job and f"Started Domino job {k}: "
                     in " ".join(deploy.messages(rerun))]
    assert jobs[second_job] == "Succeeded"
    assert not any(m.startswith("Reattached to Domino job") for m in deploy.messages(rerun))


def test_reexecute_from_failure_reattaches_to_the_succeeded_job(
    dagster_deployment: DagsterDeployment, failed_parent: tuple[str, str]
) -> None:
    """The same failed run, re-executed from failure: its job succeeded unseen by the step, so
    the retry reattaches and starts none."""
    deploy = dagster_deployment
    parent, first_job = failed_parent
    before = set(deploy.jobs("build_then_fail_once"))
    retry = deploy.reexecute(parent, "FROM_FAILURE")
    assert deploy.wait_status(retry) == "SUCCESS"
    assert set(deploy.jobs("build_then_fail_once")) == before, "the retry started a second job"
    assert any(m.startswith(f"Reattached to Domino job {first_job}")
               for m in deploy.messages(retry))


def forget_job(deploy: DagsterDeployment, job_id: str) -> None:
    """Make a job disappear from the sandbox, as one deleted or purged in Domino does (404)."""
    store = deploy.sandbox.ctx.store
    with store.lock:
        execution = store._executions.pop(job_id)
        store._by_project[execution.project.id].remove(execution)


def test_reexecute_from_failure_after_the_job_was_deleted_starts_a_new_one(
    dagster_deployment: DagsterDeployment,
) -> None:
    """Issue 12: the recorded job answered 404 and every from-failure retry died with
    JobNotFoundError."""
    deploy = dagster_deployment
    parent, first_job = failed_build(deploy)
    forget_job(deploy, first_job)
    retry = deploy.reexecute(parent, "FROM_FAILURE")
    assert deploy.wait_status(retry) == "SUCCESS", deploy.messages(retry)[-10:]
    messages = deploy.messages(retry)
    assert any(f"{first_job} recorded by an earlier attempt no longer exists" in m
               for m in messages), messages
    jobs = deploy.jobs("build_then_fail_once")
    (fresh,) = [k for k in jobs if f"Started Domino job {k}: " in " ".join(messages)]
    assert fresh != first_job and jobs[fresh] == "Succeeded"


# --- graceful worker shutdown: the documented on_worker_shutdown setting --------------------


def run_worker_pid(deploy: DagsterDeployment, run_id: str, timeout: float = 90.0) -> int:
    """The run worker's pid, from the engine event Dagster logs when it starts it."""
    prefix = "Started process for run (pid: "
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in deploy.messages(run_id):
            if message.startswith(prefix):
                return int(message[len(prefix):].split(")")[0])
        time.sleep(0.5)
    raise AssertionError(f"no run worker pid in {deploy.messages(run_id)}")


def test_run_worker_sigterm_leaves_the_job_for_the_run_retry(
    dagster_deployment: DagsterDeployment,
) -> None:
    """on_worker_shutdown='leave_running': SIGTERM to the run worker (a node drain) leaves the
    Domino job running; the automatic run retry (from failure) reattaches to it: one job."""
    deploy = dagster_deployment
    known = set(deploy.jobs("long_drained"))
    run_id = deploy.launch("long_drained")
    job_id = wait_for_job(deploy, "long_drained", known)
    os.kill(run_worker_pid(deploy, run_id), signal.SIGTERM)
    assert deploy.wait_status(run_id) == "FAILURE"
    # Left alone: still running (or already done, on a slow machine), never stopped.
    assert deploy.jobs("long_drained")[job_id] in (RUNNING, "Succeeded")
    deploy.wait_for_message(run_id, "left running (on_worker_shutdown='leave_running')")
    deadline = time.monotonic() + 120  # the retry daemon's next tick, on a busy machine
    while len(deploy.runs_in_group(run_id)) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    retries = [r["runId"] for r in deploy.runs_in_group(run_id) if r["runId"] != run_id]
    assert len(retries) == 1, f"the run retry daemon did not retry the run: {retries}"
    retry = retries[0]
    assert deploy.wait_status(retry) == "SUCCESS", deploy.messages(retry)[-10:]
    new = {k: v for k, v in deploy.jobs("long_drained").items() if k not in known}
    assert new == {job_id: "Succeeded"}
    assert "drained-job-done" in deploy.messages(retry)


# --- the example, loaded the way its docstring says ---------------------------------------------


def test_example_definitions_run_under_dagster_dev(dagster_deployment: DagsterDeployment) -> None:
    """``dagster dev -f examples/dagster/definitions.py`` with DOMINO_API_HOST and
    DOMINO_USER_API_KEY set: materializing all three assets runs three Domino jobs, the failing
    one fails the run with its last lines in the event log."""
    deploy = dagster_deployment
    run_id = deploy.launch("__ASSET_JOB", location="definitions.py",
                           assets=["features", "train_model", "broken_report"])
    assert deploy.wait_status(run_id) == "FAILURE"
    jobs = deploy.jobs_titled("demo ")
    titles = {ex.title.split(" [do:")[0]: ex.status for ex in deploy.sandbox.ctx.store.all()
              if ex.id in jobs and ex.title}
    assert titles == {"demo features": "Succeeded", "demo training": "Succeeded",
                      "demo report (fails on purpose)": "Failed"}
    messages = deploy.messages(run_id)
    assert "model saved" in messages
    assert ("WARNING", "ValueError: no data for today") in deploy.user_messages(run_id)
    (error,) = deploy.step_errors(run_id)
    assert "ended Failed" in error and "ValueError: no data for today" in error
