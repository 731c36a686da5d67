"""The CLI (`python -m domino_orchestrate.sandbox`), `SandboxProcess` and the pytest fixtures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from domino_orchestrate.sandbox import SandboxProcess, SandboxServer, main


def test_cli_first_line_and_sigterm(tmp_path: Path) -> None:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "hello.py").write_text("print('hi')\n")
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "domino_orchestrate.sandbox",
            "--port",
            "0",
            "--api-key",
            "cli",
            "--project",
            f"me/proj={folder}",
            "--data-dir",
            str(data),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().rstrip("\n")
        assert first.startswith("Domino sandbox listening on http://127.0.0.1:")
        url = first.removeprefix("Domino sandbox listening on ")
        assert int(url.rsplit(":", 1)[1]) > 0
        assert proc.stdout.readline().strip() == "API key: cli"
        headers = {"X-Domino-Api-Key": "cli"}
        run = requests.post(
            f"{url}/v1/projects/me/proj/runs",
            json={"command": ["hello.py"]},
            headers=headers,
            timeout=10,
        ).json()
        for _ in range(200):
            st = requests.get(f"{url}/v4/jobs/{run['runId']}", headers=headers, timeout=10).json()
            if st["statuses"]["isCompleted"]:
                break
            time.sleep(0.02)
        assert st["statuses"]["executionStatus"] == "Succeeded"
        assert (data / "executions" / run["runId"] / "stdout.raw").read_bytes() == b"hi\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    assert data.exists()  # a user-given data dir is kept


def test_cli_rejects_bad_project(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--project", "no-slash"])
    assert main(["--port", "0", "--project", "a/b=/definitely/not/here"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_sandbox_process_stops_its_jobs() -> None:
    with SandboxProcess(api_key="sp", phase_delay=0.01) as sp:
        assert sp.url.startswith("http://127.0.0.1:")
        pid = requests.get(
            f"{sp.url}/v4/gateway/projects/findProjectByOwnerAndName",
            params={"ownerName": "demo", "projectName": "quick-start"},
            headers={"X-Domino-Api-Key": "sp"},
            timeout=10,
        ).json()["id"]
        job = requests.post(
            f"{sp.url}/v4/jobs/start",
            json={"projectId": pid, "commandToRun": "sleep 60", "title": "sp"},
            headers={"X-Domino-Api-Key": "sp"},
            timeout=10,
        ).json()
        deadline = time.monotonic() + 10
        children: list[psutil.Process] = []
        while time.monotonic() < deadline and not children:
            children = psutil.Process(sp.pid).children(recursive=True)
            time.sleep(0.05)
        assert children
        assert sp.stats()["starts_by_title"] == {"sp": 1}
        assert sp.set_faults(rate=0.0, kinds=["500"])["kinds"] == ["500"]
        assert sp.output(job["id"]) == (b"", b"")
    assert sp.proc is not None and sp.proc.returncode == 0
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_server_stop_terminates_processes_and_cleans_up() -> None:
    srv = SandboxServer(api_key="k").start()
    data_dir = srv.data_dir
    pid = srv.project_id("demo/quick-start")
    job = requests.post(
        f"{srv.url}/v4/jobs/start",
        json={"projectId": pid, "commandToRun": "sleep 60"},
        headers={"X-Domino-Api-Key": "k"},
        timeout=10,
    ).json()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not srv.ctx.supervisor.live_pids():
        time.sleep(0.02)
    (child_pid,) = srv.ctx.supervisor.live_pids()
    srv.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(child_pid, 0)
    assert not data_dir.exists()
    assert srv.ctx.store.get(job["id"]).status == "Stopped"
    with pytest.raises(requests.ConnectionError):
        requests.get(srv.url + "/version", timeout=2)


def test_function_fixture(domino_sandbox: SandboxServer) -> None:
    resp = requests.get(
        domino_sandbox.url + "/version",
        headers={"X-Domino-Api-Key": domino_sandbox.api_key},
        timeout=10,
    )
    assert resp.json()["version"] == "5.10.0"
    assert domino_sandbox.projects == {"demo/quick-start": None}


def test_session_fixture(domino_sandbox_session: SandboxServer) -> None:
    assert domino_sandbox_session.url.startswith("http://127.0.0.1:")
    assert requests.get(domino_sandbox_session.url + "/version", timeout=10).status_code == 401
