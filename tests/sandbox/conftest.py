"""Shared helpers for the sandbox tests: a per-module sandbox and a small authenticated client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from domino_orchestrate.sandbox import SandboxServer

API_KEY = "test-key"
PROJECT = "demo/quick-start"
P1 = f"/v1/projects/{PROJECT}"


class Api:
    """requests against one sandbox, authenticated with the API key."""

    def __init__(self, srv: SandboxServer) -> None:
        self.srv = srv
        self.url = srv.url
        self.session = requests.Session()
        self.session.headers["X-Domino-Api-Key"] = srv.api_key
        self.project_id = srv.project_id(PROJECT)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.session.get(self.url + path, timeout=10, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.session.post(self.url + path, timeout=10, **kw)

    def start_job(self, command: str, **body: Any) -> dict[str, Any]:
        payload = {"projectId": self.project_id, "commandToRun": command, **body}
        resp = self.post("/v4/jobs/start", json=payload)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def start_run(self, command: list[str], **body: Any) -> dict[str, Any]:
        resp = self.post(f"{P1}/runs", json={"command": command, "isDirect": False, **body})
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def job(self, job_id: str) -> dict[str, Any]:
        resp = self.get(f"/v4/jobs/{job_id}")
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def run(self, run_id: str) -> dict[str, Any]:
        resp = self.get(f"{P1}/runs/{run_id}")
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def stdout(self, run_id: str) -> dict[str, Any]:
        resp = self.get(f"{P1}/run/{run_id}/stdout")
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def wait_status(
        self,
        job_id: str,
        until: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 15,
    ) -> dict[str, Any]:
        until = until or (lambda j: bool(j["statuses"]["isCompleted"]))
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if until(job):
                return job
            assert time.monotonic() < deadline, f"timed out; last state {job['statuses']}"
            time.sleep(0.02)


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    (root / "main.py").write_text(
        "import os, sys\nprint('hello from main', *sys.argv[1:])\n"
        "print('run', os.environ['DOMINO_RUN_ID'])\n"
        "sys.exit(int(os.environ.get('EXIT_CODE', '0')))\n"
    )
    (root / "fail.py").write_text("import sys\nprint('about to fail')\nsys.exit(4)\n")
    (root / "job.sh").write_text('echo "bash $BASH_VERSION args:$*"\n')
    (root / "tool").write_text("#!/bin/sh\necho tool\n")  # deliberately not executable
    return root


@pytest.fixture(scope="module")
def sandbox(project_dir: Path) -> Iterator[SandboxServer]:
    with SandboxServer(projects={PROJECT: project_dir, "other/proj": None}, api_key=API_KEY) as srv:
        yield srv


@pytest.fixture(scope="module")
def api(sandbox: SandboxServer) -> Api:
    return Api(sandbox)


@pytest.fixture
def api_for() -> Callable[[SandboxServer], Api]:
    """Build an `Api` for a sandbox a test starts itself (conftest can't be imported by name)."""
    return Api
