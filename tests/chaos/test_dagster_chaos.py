"""Chaos through Dagster: a job of ``domino_job_op`` steps run with ``execute_in_process`` against a
sandbox that fails 20 % of the API requests (every fault kind), and a run worker SIGKILLed
mid-wait whose run is then re-executed from failure."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from domino_orchestrate.sandbox import SandboxServer

TAG = "dg"
#: User messages of the integration that are not job stdout.
OWN_MESSAGES = ("Started Domino ", "Reattached to Domino ", "Domino job ")


@pytest.mark.chaos
@pytest.mark.timeout(3600)
def test_dagster_jobs_under_faults(run_event_check: Any, srv: SandboxServer, chaos: Any, lineage_file: Path,
                                   domino_env: None) -> None:
    """N independent ``domino_job_op`` steps in one run: each step succeeds or fails as its job
    (every 4th exits 3), one Domino start per step, each step's ``context.log`` messages are
    exactly the job's stdout lines, one START plus one terminal lineage event per Domino job."""
    from dagster import DagsterInstance, job

    from domino_orchestrate.dagster import DominoResource, domino_job_op

    n = chaos.jobs
    ops = [domino_job_op(f"step_{i}", chaos.command(TAG, i), title=chaos.title(TAG, i))
           for i in range(n)]

    @job
    def chaos_dagster() -> None:
        for step in ops:
            step()

    domino = DominoResource(host=srv.url, project=chaos.project, api_key=srv.api_key,
                            poll_freq=0.5, initial_interval=0.2, stop_timeout=15,
                            max_retries=chaos.max_retries)
    srv.set_faults(rate=chaos.fault_rate, seed=3313, slow_seconds=1.0)
    with DagsterInstance.ephemeral() as instance:
        try:
            result = chaos_dagster.execute_in_process(resources={"domino": domino},
                                                      instance=instance, raise_on_error=False)
        finally:
            srv.set_faults(rate=0.0)
        logs = instance.all_logs(result.run_id)

    outcome = {e.step_key: e.event_type_value for e in result.all_events
               if e.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE")}
    assert outcome == {f"step_{i}": "STEP_FAILURE" if chaos.exit_code(i) else "STEP_SUCCESS"
                       for i in range(n)}
    streamed: dict[int, list[str]] = {}
    for entry in logs:
        if entry.dagster_event is None and entry.step_key:
            i = int(entry.step_key.removeprefix("step_"))
            if not entry.user_message.startswith(OWN_MESSAGES):
                streamed.setdefault(i, []).append(entry.user_message)
    jobs = chaos.check_jobs(srv, TAG, n, streamed)
    for i, snap in jobs.items():
        if not chaos.exit_code(i):
            assert result.output_for_node(f"step_{i}")["job_id"] == snap.job_id
    events = chaos.check_lineage(lineage_file, jobs)
    for event in events:  # success and failure events of this orchestrator, against the spec
        run_event_check.validate(event)


@pytest.mark.chaos
@pytest.mark.timeout(600)
def test_dagster_run_worker_killed_mid_wait_then_reexecuted(srv: SandboxServer, chaos: Any,
                                                            tmp_path: Path) -> None:
    """A run worker executing ``chaos_kill_job`` (one ``domino_job_op`` step, in-process executor,
    persistent DAGSTER_HOME; see worker_dagster.py) is SIGKILLed while the Domino job runs: the run
    stays STARTED. The next process reports it failed (what run monitoring does for a dead
    worker) and re-executes it from failure; no explicit key: the step's key comes from the
    re-execution chain, so the step must reattach to the one job and succeed. 20 % faults
    throughout."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = chaos.clean_env({
        "DAGSTER_HOME": str(home), "DOMINO_API_HOST": srv.url, "DOMINO_USER_API_KEY": srv.api_key,
        "CHAOS_COMMAND": "echo started; sleep 4; echo done", "CHAOS_TITLE": "chaos-dg-kill",
    })
    worker = str(chaos.workers / "worker_dagster.py")
    srv.set_faults(rate=chaos.fault_rate, seed=79, slow_seconds=1.0)
    job_id = chaos.kill_when_running(srv, [sys.executable, worker, "first"], env,
                                     tmp_path / "first.log", "chaos-dg-kill")
    result = chaos.run_worker([sys.executable, worker, "reexecute"], env, tmp_path / "second.log")
    srv.set_faults(rate=0.0)

    assert result["parent_status_before"] == "STARTED"  # nothing marked the dead run
    assert result["success"] is True and result["run_id"] != result["parent_run_id"]
    output = result["output"]
    assert output["job_id"] == job_id and output["attached"] is True
    assert output["status"] == "Succeeded"
    assert chaos.starts_per_title(srv) == {"chaos-dg-kill": 1}
    with chaos.watcher(srv) as client:
        (snap,) = client.list_jobs()
    assert snap.job_id == job_id and snap.status.value == "Succeeded"
    assert srv.output(job_id)[0] == b"started\ndone\n"
