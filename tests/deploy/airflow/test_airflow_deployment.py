"""Airflow 3.3 as users run it (scheduler, dag-processor, triggerer, api-server; LocalExecutor),
driven through its REST API v2, checked against the sandbox's record of Domino jobs.

Each test names the action a user takes and the promise it checks: a clear reruns (a new job), an
automatic retry reattaches (no new job), mark failed / mark success / a timeout stop the job and
say so in the task log, a sensor only watches, the job link works while the task runs, a
triggerer restart repeats no line.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# One deployment per session (a session fixture): every test on one xdist worker. The first test
# also pays for starting Airflow (1-3 minutes on a busy 2-core machine).
pytestmark = [pytest.mark.deploy, pytest.mark.xdist_group("airflow-deploy"),
              pytest.mark.timeout(480)]

Gate = Callable[[str], Path]


def _tag(request: pytest.FixtureRequest) -> str:
    return f"{request.node.name.replace('[', '-').replace(']', '')}-{time.monotonic_ns()}"


def _statuses(jobs: list[dict[str, Any]]) -> list[str]:
    return [job["status"] for job in jobs]


@pytest.mark.parametrize("dag_id", ["deploy_sync", "deploy_sync_not_durable"])
def test_clear_of_a_succeeded_task_runs_a_fresh_job(airflow_deployment: Any,
                                                    request: pytest.FixtureRequest,
                                                    dag_id: str) -> None:
    """A clear is a deliberate rerun: try 2 starts a new Domino job, never reports the old one
    (with task_state_store, durable=True, and without it)."""
    af, tag = airflow_deployment, _tag(request)
    run = af.trigger(dag_id, {"tag": tag, "before": 1})
    af.wait_ti(dag_id, run, "job", {"success"})
    # Clear a finished run, as a user does: a clear racing the scheduler's own finalisation of
    # the run can leave the cleared task in a run already marked success, never scheduled.
    af.wait_run(dag_id, run, {"success"})
    assert len(af.jobs(tag=tag)) == 1

    af.clear(dag_id, run, ["job"])
    ti = af.wait_ti(dag_id, run, "job", {"success", "failed"}, try_number=2)
    assert ti["state"] == "success"
    jobs = af.jobs(tag=tag)
    assert _statuses(jobs) == ["Succeeded", "Succeeded"], jobs
    log = af.wait_log(dag_id, run, "job", f"Started Domino job {jobs[1]['id']}", try_number=2)
    assert "skipping resubmission" not in log


def test_backfill_reprocessing_a_completed_run_runs_a_fresh_job(
        airflow_deployment: Any, request: pytest.FixtureRequest) -> None:
    """Backfill with reprocess_behavior="completed" clears the run: a new job, not the old one."""
    af, tag, day = airflow_deployment, _tag(request), "2024-01-01T00:00:00Z"
    run = af.trigger("deploy_backfill", {"tag": tag}, logical_date=day)
    af.wait_run("deploy_backfill", run, {"success"})  # a backfill skips runs still in flight
    assert len(af.jobs(tag=tag)) == 1

    af.backfill("deploy_backfill", day, {"tag": tag}, reprocess="completed")
    ti = af.wait_ti("deploy_backfill", run, "job", {"success", "failed"}, try_number=2)
    assert ti["state"] == "success"
    assert _statuses(af.jobs(tag=tag)) == ["Succeeded", "Succeeded"]


def test_clear_of_a_deferred_task_stops_the_old_job_and_runs_a_fresh_one(
        airflow_deployment: Any, request: pytest.FixtureRequest, gate: Gate) -> None:
    """The cleared trigger stops its job; try 2 starts its own instead of adopting the dying one
    (the job is slow to stop, so try 2 starts while it is still Stopping)."""
    af, tag, release = airflow_deployment, _tag(request), gate("defer-clear")
    run = af.trigger("deploy_defer", {"tag": tag, "gate": str(release), "slow_stop": True})
    af.wait_ti("deploy_defer", run, "job", {"deferred"})
    af.wait_jobs(lambda jobs: _statuses(jobs) == ["Running"], tag)

    af.clear("deploy_defer", run, ["job"])
    jobs = af.wait_jobs(lambda jobs: len(jobs) == 2 and jobs[0]["status"] == "Stopped", tag)
    release.touch()
    ti = af.wait_ti("deploy_defer", run, "job", {"success", "failed"}, try_number=2)
    # try 2 itself succeeds (adopting the dying job would fail it and need a try 3)
    assert (ti["state"], ti["try_number"]) == ("success", 2), af.log("deploy_defer", run, "job")
    assert _statuses(af.jobs(tag=tag)) == ["Stopped", "Succeeded"]
    af.wait_log("deploy_defer", run, "job", f"Started Domino job {jobs[1]['id']}", try_number=2)


def test_retry_after_a_worker_crash_reattaches_to_the_running_job(
        airflow_deployment: Any, request: pytest.FixtureRequest, gate: Gate) -> None:
    """kill -9 of the task process: the automatic retry follows the same job; none is added.
    While the sync task runs, the "Domino job" link already points at the job."""
    af, tag, release = airflow_deployment, _tag(request), gate("crash")
    run = af.trigger("deploy_sync", {"tag": tag, "gate": str(release)})
    ti = af.wait_ti("deploy_sync", run, "job", {"running"})
    jobs = af.wait_jobs(lambda jobs: _statuses(jobs) == ["Running"], tag)
    link = af.links("deploy_sync", run, "job").get("Domino job")
    assert link and link.endswith(jobs[0]["id"]), link

    os.kill(int(ti["pid"]), signal.SIGKILL)
    af.wait_ti("deploy_sync", run, "job", {"running"}, try_number=2)
    release.touch()
    ti = af.wait_ti("deploy_sync", run, "job", {"success", "failed"}, try_number=2)
    assert ti["state"] == "success", af.log("deploy_sync", run, "job")
    assert _statuses(af.jobs(tag=tag)) == ["Succeeded"]
    af.wait_log("deploy_sync", run, "job", f"Attached to Domino job {jobs[0]['id']}", try_number=2)


@pytest.mark.parametrize(("dag_id", "new_state", "map_index"), [
    ("deploy_sync", "failed", -1),
    ("deploy_defer", "success", -1),
    ("deploy_mapped", "failed", 1),
])
def test_marking_a_running_task_stops_its_job(
        airflow_deployment: Any, request: pytest.FixtureRequest, gate: Gate,
        dag_id: str, new_state: str, map_index: int) -> None:
    """Mark failed / mark success from the API stops the task's Domino job, and the task log
    shows the stop and its confirmation."""
    af, tag, release = airflow_deployment, _tag(request), gate(dag_id)
    run = af.trigger(dag_id, {"tag": tag, "gate": str(release)})
    expected = 2 if map_index >= 0 else 1
    af.wait_jobs(lambda jobs: _statuses(jobs) == ["Running"] * expected, tag)
    af.wait_ti(dag_id, run, "job", {"running", "deferred"}, map_index=map_index)
    # Its trigger or sync wait is following the job (a deferred task marked before a triggerer
    # picked its trigger up is never told: Airflow calls no on_kill then).
    af.wait_log(dag_id, run, "job", f"job {tag} begins", map_index=map_index)

    af.set_state(dag_id, run, "job", new_state, map_index=map_index)
    jobs = af.wait_jobs(lambda jobs: "Stopped" in _statuses(jobs), tag)
    if map_index >= 0:  # only the marked map index is stopped; its sibling keeps running
        time.sleep(1)
        assert sorted(_statuses(af.jobs(tag=tag))) == ["Running", "Stopped"]
        stopped = next(job for job in jobs if job["status"] == "Stopped")
        assert f" m{map_index}" in stopped["command"]
    release.touch()
    stopped_id = jobs[0]["id"] if map_index < 0 else stopped["id"]
    log = af.wait_log(dag_id, run, "job", f"Domino job {stopped_id} stopped", map_index=map_index)
    assert f"stopping Domino job {stopped_id}" in log


def test_execution_timeout_stops_the_job_and_names_the_knob(
        airflow_deployment: Any, request: pytest.FixtureRequest, gate: Gate) -> None:
    """execution_timeout fires in the sync and the deferrable form: the job is stopped, the task
    fails with AirflowTaskTimeout and the message names execution_timeout, not max_poll_time."""
    af, tag = airflow_deployment, _tag(request)
    run = af.trigger("deploy_timeout", {"tag": tag, "gate": str(gate("never"))})
    for task_id in ("sync", "defer"):
        ti = af.wait_ti("deploy_timeout", run, task_id, {"success", "failed"})
        assert ti["state"] == "failed"
    assert _statuses(af.wait_jobs(
        lambda jobs: len(jobs) == 2 and all(j["status"] == "Stopped" for j in jobs), tag
    )) == ["Stopped", "Stopped"]
    for task_id in ("sync", "defer"):
        # The error is the task's last line: wait for it rather than read the log once.
        log = af.wait_log("deploy_timeout", run, task_id, "Raise execution_timeout if it needs")
        assert "AirflowTaskTimeout: " in log, log
        assert "Raise execution_timeout if it needs longer" in log, log
        assert "max_poll_time" not in log, log


def test_a_sensor_only_watches_marking_it_failed_never_stops_the_job(
        airflow_deployment: Any, request: pytest.FixtureRequest, gate: Gate) -> None:
    """Both sensor forms (poke, deferrable) watch a job started elsewhere; killing them leaves
    the job running."""
    from domino_orchestrate.core import DominoClient

    af, tag, release = airflow_deployment, _tag(request), gate("sensor")
    command = f"echo 'job {tag} begins'; while [ ! -e '{release}' ]; do sleep 0.2; done"
    with DominoClient(af.sandbox.url, "demo/quick-start", api_key=af.sandbox.api_key) as client:
        job_id = client.start_job(command).job_id
    run = af.trigger("deploy_sensor", {"job_id": job_id})
    af.wait_ti("deploy_sensor", run, "poke", {"running", "up_for_reschedule"})
    af.wait_ti("deploy_sensor", run, "defer", {"deferred"})
    af.wait_log("deploy_sensor", run, "defer", f"job {tag} begins")  # its trigger follows the job
    af.set_state("deploy_sensor", run, "poke", "failed")
    af.set_state("deploy_sensor", run, "defer", "failed")
    af.wait_log("deploy_sensor", run, "defer", "invoking on_kill")  # Airflow's own line
    af.wait_log("deploy_sensor", run, "defer", "is left running")  # the trigger's on_kill ran
    time.sleep(3)  # a window for a wrong stop to show up (nothing else marks its absence)
    assert _statuses(af.jobs(tag=tag)) == ["Running"]
    release.touch()
    assert _statuses(af.wait_jobs(lambda jobs: _statuses(jobs) == ["Succeeded"], tag)) \
        == ["Succeeded"]


def test_a_triggerer_restart_repeats_no_line_of_the_task_log(
        airflow_deployment: Any, request: pytest.FixtureRequest, gate: Gate) -> None:
    """The trigger is re-created on the restarted triggerer and follows the same job: every
    stdout line appears once in the task log, and the job was neither stopped nor duplicated."""
    af, tag, release = airflow_deployment, _tag(request), gate("restart")
    run = af.trigger("deploy_defer", {"tag": tag, "gate": str(release), "before": 4, "after": 2})
    af.wait_ti("deploy_defer", run, "job", {"deferred"})
    af.wait_log("deploy_defer", run, "job", "before-4")

    af.stop_service("triggerer")
    af.start_service("triggerer")
    # The re-created trigger follows the job before it prints the rest (not a fixed sleep: the
    # restarted triggerer takes its triggers over later on a loaded machine).
    af.wait_log("deploy_defer", run, "job", "Log resynchronised: the triggerer was restarted")
    release.touch()
    ti = af.wait_ti("deploy_defer", run, "job", {"success", "failed"}, timeout=240)
    assert ti["state"] == "success"
    log = af.wait_log("deploy_defer", run, "job", "job ends").splitlines()
    for line in ("before-1", "before-4", "after-1", "after-2", "job ends"):
        assert log.count(line) == 1, (line, log)
    assert _statuses(af.jobs(tag=tag)) == ["Succeeded"]
