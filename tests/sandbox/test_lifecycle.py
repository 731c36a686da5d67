"""Execution lifecycle: statuses in order, exit codes, Error, stop, and the v1 runner rules."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from domino_orchestrate.sandbox import SandboxServer

TERMINAL = {"Succeeded", "Failed", "Stopped", "Error"}


def _observe(api: Any, job_id: str, timeout: float = 15) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.job(job_id)
        seen.append(job)
        if job["statuses"]["isCompleted"]:
            return seen
        time.sleep(0.02)
    raise AssertionError("job did not finish")


def test_sleep_goes_through_every_state(api_for: Any) -> None:
    # A long phase delay makes Queued, Preparing and Finishing observable.
    with SandboxServer(api_key="k", phase_delay=0.3) as srv:
        api = api_for(srv)
        job = api.start_job("sleep 1")
        seen = _observe(api, job["id"])
        order: list[str] = []
        for j in seen:
            status = j["statuses"]["executionStatus"]
            if not order or order[-1] != status:
                order.append(status)
            # isCompleted is true exactly in terminal states, outputCommitId only once ended
            assert j["statuses"]["isCompleted"] == (status in TERMINAL)
            assert bool(j["commitDetails"]["outputCommitId"]) == (status in TERMINAL)
        assert order == ["Queued", "Preparing", "Running", "Finishing", "Succeeded"]
        run = api.run(job["id"])
        assert run["isCompleted"] and run["outputCommitId"] and run["status"] == "Succeeded"


def test_nonzero_exit_is_failed(api: Any) -> None:
    job = api.wait_status(api.start_job("exit 3")["id"])
    assert job["statuses"]["executionStatus"] == "Failed"
    assert job["commitDetails"]["outputCommitId"]
    assert "3" in job["runFailureMessage"]


@pytest.mark.parametrize(
    ("start", "command"),
    [
        ("v4", "definitely-not-a-command-xyz --flag"),
        ("v1", "no-such-binary-xyz"),
        ("v4", "./missing-file"),
    ],
)
def test_unlaunchable_command_is_error(api: Any, start: str, command: str) -> None:
    job_id = api.start_job(command)["id"] if start == "v4" else api.start_run([command])["runId"]
    job = api.wait_status(job_id)
    assert job["statuses"]["executionStatus"] == "Error"
    assert job["statuses"]["isCompleted"] is True
    assert api.run(job_id)["outputCommitId"]
    assert "text-danger" in api.stdout(job_id)["stdout"]


def test_not_executable_file_is_error(api: Any, sandbox: SandboxServer) -> None:
    run_id = api.start_run(["job.sh.txt"])["runId"]  # no such file -> Error
    assert api.wait_status(run_id)["statuses"]["executionStatus"] == "Error"
    # a file that exists but lacks the x bit, via v4 (shell) and v1 (exec)
    job_id = api.start_job("./tool")["id"]
    assert api.wait_status(job_id)["statuses"]["executionStatus"] == "Error"
    run_id = api.start_run(["./tool"])["runId"]
    assert api.wait_status(run_id)["statuses"]["executionStatus"] == "Error"
    assert "Permission denied" in api.stdout(run_id)["stdout"]


def test_stop_kills_process_group(api: Any, sandbox: SandboxServer) -> None:
    # The shell starts a background child too: stop must take down the whole tree.
    job = api.start_job("sleep 60 & sleep 60; wait")
    api.wait_status(job["id"], lambda j: j["statuses"]["executionStatus"] == "Running")
    info = sandbox.execution_info(job["id"])
    pid = info["pid"]
    deadline = time.monotonic() + 5
    tree: list[psutil.Process] = []
    while time.monotonic() < deadline and len(tree) < 2:
        tree = psutil.Process(pid).children(recursive=True)
        time.sleep(0.02)
    assert len(tree) >= 2
    resp = api.post(
        "/v4/jobs/stop",
        json={"projectId": api.project_id, "jobId": job["id"], "commitResults": True},
    )
    assert resp.status_code == 200
    final = api.wait_status(job["id"])
    assert final["statuses"]["executionStatus"] == "Stopped"
    assert final["commitDetails"]["outputCommitId"]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    # Orphans may linger as zombies if PID 1 doesn't reap them, but nothing may still run.
    for child in tree:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    # stopping again is a harmless no-op
    again = api.post("/v4/jobs/stop", json={"projectId": api.project_id, "jobId": job["id"]})
    assert again.status_code == 200
    assert api.job(job["id"])["statuses"]["executionStatus"] == "Stopped"


def test_stop_ignoring_sigterm_gets_killed(api: Any) -> None:
    job = api.start_job("trap '' TERM; sleep 30")
    api.wait_status(job["id"], lambda j: j["statuses"]["executionStatus"] == "Running")
    t0 = time.monotonic()
    api.post("/v4/jobs/stop", json={"projectId": api.project_id, "jobId": job["id"]})
    final = api.wait_status(job["id"])
    assert final["statuses"]["executionStatus"] == "Stopped"
    assert time.monotonic() - t0 < 5


def test_stop_while_queued(api_for: Any) -> None:
    with SandboxServer(api_key="k", phase_delay=2.0) as srv:
        api = api_for(srv)
        job = api.start_job("echo never")
        api.post("/v4/jobs/stop", json={"projectId": api.project_id, "jobId": job["id"]})
        final = api.wait_status(job["id"], timeout=1.5)
        assert final["statuses"]["executionStatus"] == "Stopped"
        assert final["stageTime"]["runStartTime"] is None
        assert srv.execution_info(job["id"])["pid"] is None


def test_run_stop_via_v1_is_visible_in_v1(api: Any) -> None:
    run_id = api.start_run(["sleep", "30"])["runId"]
    api.wait_status(run_id, lambda j: j["statuses"]["executionStatus"] == "Running")
    api.post("/v4/jobs/stop", json={"projectId": api.project_id, "jobId": run_id})
    api.wait_status(run_id)
    run = api.run(run_id)
    assert run["status"] == "Stopped" and run["isCompleted"] and run["outputCommitId"]


def test_v1_runner_rules(api: Any, sandbox: SandboxServer) -> None:
    py = api.start_run(["main.py", "a", "b"])["runId"]
    sh = api.start_run(["job.sh", "c"])["runId"]
    direct = api.post(
        "/v1/projects/demo/quick-start/runs",
        json={"command": ["echo direct | tr a-z A-Z"], "isDirect": True},
    ).json()["runId"]
    exe = api.start_run(["echo", "plain", "exe"])["runId"]
    for rid in (py, sh, direct, exe):
        assert api.wait_status(rid)["statuses"]["executionStatus"] == "Succeeded"
    assert sandbox.output(py)[0].startswith(b"hello from main a b\nrun " + py.encode())
    assert sandbox.output(sh)[0].startswith(b"bash ") and b"args:c" in sandbox.output(sh)[0]
    assert sandbox.output(direct)[0] == b"DIRECT\n"
    assert sandbox.output(exe)[0] == b"plain exe\n"
    info = sandbox.execution_info(py)
    assert info["argv"][0].endswith("python") or "python" in info["argv"][0]
    assert not info["useShell"] and sandbox.execution_info(direct)["useShell"]


def test_v4_py_command_and_env(api: Any, sandbox: SandboxServer) -> None:
    job = api.start_job("main.py z", overrideHardwareTierId="large-k8s")
    assert api.wait_status(job["id"])["statuses"]["executionStatus"] == "Succeeded"
    assert sandbox.output(job["id"])[0].startswith(b"hello from main z\n")
    env_job = api.start_job(
        "echo $DOMINO_RUN_ID $DOMINO_PROJECT_OWNER $DOMINO_PROJECT_NAME "
        "$DOMINO_STARTING_USERNAME $DOMINO_HARDWARE_TIER_ID",
        overrideHardwareTierId="large-k8s",
    )
    api.wait_status(env_job["id"])
    out = sandbox.output(env_job["id"])[0].decode().split()
    assert out == [env_job["id"], "demo", "quick-start", "sandbox-user", "large-k8s"]


def test_failed_v1_py(api: Any) -> None:
    run_id = api.start_run(["fail.py"])["runId"]
    assert api.wait_status(run_id)["statuses"]["executionStatus"] == "Failed"
    assert api.run(run_id)["status"] == "Failed"


def test_each_execution_gets_its_own_copy(api: Any, sandbox: SandboxServer) -> None:
    a = api.start_job("echo one > marker.txt; cat marker.txt")["id"]
    api.wait_status(a)
    b = api.start_job("cat marker.txt")["id"]
    assert api.wait_status(b)["statuses"]["executionStatus"] == "Failed"  # not shared
    assert Path(sandbox.execution_info(a)["workdir"], "main.py").exists()
