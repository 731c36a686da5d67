"""Chaos through Prefect: ``start_domino_job`` + ``wait_for_domino_job`` tasks, submitted
concurrently in one flow, against a sandbox that fails 20 % of the API requests (every fault kind),
and a flow-run process SIGKILLed mid-wait whose flow run is then run again."""

from __future__ import annotations

import logging
import re
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from domino_orchestrate.sandbox import SandboxServer

TAG = "pf"


class StreamedLines(logging.Handler):
    """The job lines the integration's run-logger observer (``RunLoggerLines``) logged: a record
    is one line, or a fetch's many lines of one stream under a ``"N lines of Domino stdout:"``
    header (the core's ``LineBatcher``), split back into lines here so that every line is
    counted once and a header that miscounts fails the test."""

    _HEADER = re.compile(r"(?:\[\w+\] )?([\d,]+) lines? of Domino (stdout|stderr|setup)\b.*:$")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.malformed: list[str] = []  # (an assert here would be swallowed by the observer)
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.funcName != "_emit" or not record.pathname.endswith("_common.py"):
            return
        text = record.getMessage()
        head, *rest = text.split("\n")
        header = self._HEADER.match(head)
        with self._guard:
            if header is None and not rest:
                self.lines.append(head)
            elif header is not None and int(header.group(1).replace(",", "")) == len(rest):
                self.lines.extend(rest)
            else:  # several lines without a header, or a header that miscounts them
                self.malformed.append(text)


@pytest.mark.chaos
@pytest.mark.timeout(3600)
def test_prefect_jobs_under_faults(run_event_check: Any, srv: SandboxServer, chaos: Any, lineage_file: Path,
                                   prefect_api: str, domino_env: None) -> None:
    """N start/wait task pairs submitted to a thread pool in one flow: each wait task ends in
    its right state (every 4th job exits 3), one Domino start per job, the run logger got exactly
    each job's stdout lines, one START plus one terminal lineage event per Domino job."""
    from prefect import flow
    from prefect.task_runners import ThreadPoolTaskRunner

    from domino_orchestrate.prefect import DominoCredentials, start_domino_job, wait_for_domino_job

    n = chaos.jobs
    creds = DominoCredentials(host=srv.url, api_key=srv.api_key, project=chaos.project,
                              max_retries=chaos.max_retries)
    fast = {"poll_freq": 0.5, "initial_interval": 0.2, "stop_timeout": 15.0}

    @flow(name="chaos_prefect", task_runner=ThreadPoolTaskRunner(max_workers=16))
    def chaos_prefect() -> list[dict[str, Any]]:
        waits = []
        for i in range(n):
            handle = start_domino_job.submit(creds, chaos.command(TAG, i), title=chaos.title(TAG, i))
            waits.append(wait_for_domino_job.submit(creds, handle, poll_options=fast))
        outcomes = []
        for future in waits:
            future.wait()
            state = future.state
            outcomes.append({
                "type": state.type.value,
                "summary": state.result() if state.is_completed() else None,
                "error": None if state.is_completed() else str(state.result(raise_on_failure=False)),
            })
        return outcomes

    capture = StreamedLines()
    task_logger = logging.getLogger("prefect.task_runs")
    task_logger.addHandler(capture)
    srv.set_faults(rate=chaos.fault_rate, seed=3307, slow_seconds=1.0)
    try:
        outcomes = chaos_prefect()
    finally:
        srv.set_faults(rate=0.0)
        task_logger.removeHandler(capture)

    for i, outcome in enumerate(outcomes):
        if chaos.exit_code(i):
            assert outcome["type"] == "FAILED", (i, outcome)
            assert "ended Failed" in outcome["error"], outcome
        else:
            assert outcome["type"] == "COMPLETED", (i, outcome)
            assert outcome["summary"]["status"] == "Succeeded", outcome
    assert capture.malformed == []
    jobs = chaos.check_jobs(srv, TAG, n, chaos.group_lines(TAG, capture.lines))
    for i, outcome in enumerate(outcomes):
        if outcome["summary"]:
            assert outcome["summary"]["job_id"] == jobs[i].job_id
        else:
            assert f"Domino job {jobs[i].job_id} ended Failed" in outcome["error"]
    events = chaos.check_lineage(lineage_file, jobs)
    for event in events:  # success and failure events of this orchestrator, against the spec
        run_event_check.validate(event)


@pytest.mark.chaos
@pytest.mark.timeout(600)
def test_prefect_flow_process_killed_mid_wait_then_rerun(srv: SandboxServer, chaos: Any,
                                                         prefect_api: str, tmp_path: Path) -> None:
    """A process running the flow run ``chaos_kill_flow`` (start task + wait task, see
    worker_prefect.py) is SIGKILLed while the Domino job runs. Prefect cannot notice that by
    itself here (no worker/heartbeat service in the test), so the second process does what it
    would: marks the still-``Running`` flow run ``Crashed``, reschedules it (``AwaitingRetry``, as
    a retry does) and executes *the same flow run id* again with ``prefect.flow_engine.run_flow``
    (run_count 2). No explicit idempotency key: the task's key comes from the root flow run id and
    the call's place in the flow, so the new attempt's start task must reattach to the one job,
    which then succeeds. 20 % faults throughout."""
    env = chaos.clean_env({
        "PREFECT_API_URL": prefect_api, "DOMINO_API_HOST": srv.url,
        "DOMINO_USER_API_KEY": srv.api_key,
        "CHAOS_COMMAND": "echo started; sleep 4; echo done", "CHAOS_TITLE": "chaos-pf-kill",
    })
    argv = [sys.executable, str(chaos.workers / "worker_prefect.py"), str(tmp_path / "flow-run-id")]
    srv.set_faults(rate=chaos.fault_rate, seed=78, slow_seconds=1.0)
    job_id = chaos.kill_when_running(srv, argv, env, tmp_path / "first.log", "chaos-pf-kill")
    flow_run_id = (tmp_path / "flow-run-id").read_text().strip()
    result = chaos.run_worker(argv, env, tmp_path / "second.log")
    srv.set_faults(rate=0.0)

    assert result["flow_run_id"] == flow_run_id
    assert result["state_before"] == "RUNNING"  # the dead process left it running
    assert result["state"] == "COMPLETED" and result["run_count"] == 2
    assert result["attached"] is True
    assert result["handle_job_id"] == result["job_id"] == job_id
    assert result["status"] == "Succeeded"
    assert f"Reattached to Domino job {job_id}" in (tmp_path / "second.log").read_text()
    assert chaos.starts_per_title(srv) == {"chaos-pf-kill": 1}
    with chaos.watcher(srv) as client:
        (snap,) = client.list_jobs()
    assert snap.job_id == job_id and snap.status.value == "Succeeded"
    assert srv.output(job_id)[0] == b"started\ndone\n"
