"""Fixtures for lineage tests: a clean lineage environment, the OpenLineage schema validator, a
real HTTP receiver on 127.0.0.1 (Databand bulk endpoint), and a real MLflow server."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ..conftest import port_for_a_server

_PREFIXES = ("OPENLINEAGE", "DOMINO_ORCHESTRATE_", "MLFLOW_")


@pytest.fixture(autouse=True)
def clean_lineage_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Path]:
    """No lineage configuration at all: no env, no openlineage.yml in cwd or HOME; a private
    spool. Restores env vars that openlineage-python itself adds (it aliases OPENLINEAGE_URL)."""
    from domino_orchestrate.core.lineage import transports

    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith(_PREFIXES):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    spool = tmp_path / "spool"
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_SPOOL", str(spool))
    # A job's end does not wait for a backend a test keeps down (tests of the wait set it).
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_DELIVERY_WAIT", "0")
    transports._emitters.clear()
    yield spool
    transports._emitters.clear()
    for key in list(os.environ):
        if key.startswith(_PREFIXES) and key not in saved:
            del os.environ[key]



# --- the file transport ----------------------------------------------------------------------


# ``lineage_file``: the root conftest's fixture (the file transport).


def read_events(path: Path) -> list[dict[str, Any]]:
    """The events in a ``lineage_file`` (none before the first is written)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- HTTP receiver ---------------------------------------------------------------------------


def free_port() -> int:
    """A free port for a server bound later, or again after a stop (a backend that goes down and
    comes back): below the kernel's ephemeral range, so no other socket takes it meanwhile."""
    return port_for_a_server()


class Receiver:
    """A real Databand-like bulk endpoint on 127.0.0.1. ``start()``/``stop()`` can repeat on the
    same port (a backend that is down and then up); ``status`` forces an HTTP error code."""

    def __init__(self, token: str = "dbnd-token-1234", port: int | None = None) -> None:
        self.token = token
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/v1/tracking/open-lineage/abc/events/bulk"
        self.posts: list[dict[str, Any]] = []
        self.status = 200
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [event for post in self.posts for event in post["events"]]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                entry: dict[str, Any] = {
                    "path": self.path, "headers": dict(self.headers.items()), "raw": raw,
                    "events": [],
                }
                ok = self.headers.get("Authorization") == f"Bearer {receiver.token}"
                if ok and receiver.status == 200:
                    entry["events"] = json.loads(gzip.decompress(raw))
                with receiver._lock:
                    receiver.posts.append(entry)
                self.send_response(receiver.status if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver().start()
    yield rec
    rec.stop()


@pytest.fixture
def make_receiver() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(**kwargs: Any) -> Receiver:
        rec = Receiver(**kwargs)
        made.append(rec)
        return rec

    yield make
    for rec in made:
        rec.stop()


# --- MLflow server -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` (SQLite backend) on a free port; stopped by PID.
    ``LINEAGE_TEST_MLFLOW_URL`` reuses one already running (while working on these tests)."""
    pytest.importorskip("mlflow")
    if os.environ.get("LINEAGE_TEST_MLFLOW_URL"):
        yield os.environ["LINEAGE_TEST_MLFLOW_URL"]
        return
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    if not mlflow_bin.exists():
        pytest.skip("mlflow CLI not installed in this environment")
    base = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log_path = base / "server.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [str(mlflow_bin), "server", "--backend-store-uri", f"sqlite:///{base / 'mlflow.db'}",
             "--default-artifact-root", str(base / "artifacts"), "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"],
            stdout=log_file, stderr=subprocess.STDOUT, cwd=base, start_new_session=True,
            # MLflow 3's job runner adds about eight busy huey processes the sink never uses.
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        import requests

        # Two Python processes each import all of MLflow (~10 s of CPU each): minutes on a busy
        # 2-core machine.
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited early:\n{log_path.read_text()[-3000:]}")
            try:
                if requests.get(url + "/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=5)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def databand(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    """The Databand stand-in, configured as the lineage destination (URL and token env)."""
    use_databand(monkeypatch, receiver)
    return receiver


def use_databand(monkeypatch: pytest.MonkeyPatch, rec: Receiver) -> None:
    """Send lineage to ``rec`` as Databand's bulk endpoint."""
    monkeypatch.setenv("DOMINO_ORCHESTRATE_DATABAND_URL", rec.url)
    monkeypatch.setenv("DOMINO_ORCHESTRATE_DATABAND_TOKEN", rec.token)


# --- a sandbox whose jobs log to the MLflow server -------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "project"
MLFLOW_PROJECT = "alice/churn"
MLFLOW_EXPERIMENT = "runs-close"


@pytest.fixture(scope="session")
def mlflow_sandbox(mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A sandbox running ``examples/project`` whose jobs see what Domino jobs see, plus the
    MLflow URI (as Domino sets one) and experiment: ``injob.mlflow_run()`` works in them."""
    from unittest import mock

    from domino_orchestrate.sandbox.server import SandboxServer

    project = tmp_path_factory.mktemp("project")
    shutil.copytree(EXAMPLES, project, dirs_exist_ok=True)
    # A job step that reports datasets, a metric and a param to the orchestrator (Pipes message).
    (project / "report.py").write_text(
        "from domino_orchestrate.injob import report\n"
        "report(inputs=['s3://raw/events'], outputs=['s3://curated/model'],"
        " metrics={'auc': 0.91}, params={'model': 'gbm'})\n")
    job_env = {
        "MLFLOW_TRACKING_URI": mlflow_server,
        "DOMINO_ORCHESTRATE_MLFLOW_EXPERIMENT": MLFLOW_EXPERIMENT,
        "DOMINO_ORCHESTRATE_MLFLOW_WAIT": "20",
    }
    with mock.patch.dict(os.environ, job_env):  # the job processes' environment
        srv = SandboxServer(projects={MLFLOW_PROJECT: str(project)}).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def mlflow_env(mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The orchestrator side records into the MLflow server (experiment ``MLFLOW_EXPERIMENT``)."""
    monkeypatch.setenv("DOMINO_ORCHESTRATE_MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("DOMINO_ORCHESTRATE_MLFLOW_EXPERIMENT", MLFLOW_EXPERIMENT)
    return mlflow_server
