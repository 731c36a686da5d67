"""A real Prefect deployment for the tests in this folder, started once per session.

``prefect server start`` (temporary PREFECT_HOME, SQLite, a free port, telemetry off), a ``process``
work pool, ``prefect worker start`` and the flows of ``deployed_flows.py`` deployed from a
temporary source folder — each server and worker in its own process group, torn down by group.
Tests drive it through the Prefect API (create flow runs from deployments, set Cancelling, read
flow runs and their logs) and check the sandbox's record of the Domino jobs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import LogSort
from prefect.states import Cancelling

from domino_orchestrate.core import DominoClient, JobSnapshot
from domino_orchestrate.sandbox.server import SandboxServer

HERE = Path(__file__).parent
POOL = "domino-deploy-pool"
PROJECTS = ("demo/quick-start", "demo/other")
#: Quiet, lean server and worker: no telemetry, no UI, only the services the tests use, and a
#: worker that picks up runs and cancellations within a second.
LEAN_ENV = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_UI_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_CANCELLATION_CLEANUP_LOOP_SECONDS": "2",
    "PREFECT_WORKER_QUERY_SECONDS": "1",
    "PREFECT_WORKER_PREFETCH_SECONDS": "1",
    "PREFECT_WORKER_CANCELLATION_POLL_SECONDS": "1",
    "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.3",
    "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
}


#: A port another process bound first stops the server; start it again on another port.
SERVER_START_ATTEMPTS = 3


class _PortTaken(AssertionError):
    """The server exited because its port was bound by someone else."""


def _healthy(server: subprocess.Popen[bytes], api_url: str, log: Path) -> bool:
    if server.poll() is not None:
        text = log.read_text(errors="replace")
        if "already in use" in text.lower():
            raise _PortTaken(f"prefect server could not bind {api_url}:\n{text[-3000:]}")
        raise AssertionError(f"prefect server exited: {text}")
    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _stop_group(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left of it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # flow-run processes the worker left behind
    proc.wait(timeout=10)


_DEPLOY = textwrap.dedent("""
    import sys
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from domino_orchestrate.prefect import DominoCredentials

    source, pool, host, api_key = sys.argv[1:5]
    sys.path.insert(0, source)
    import deployed_flows

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    DominoCredentials(host=host, api_key=api_key, project="demo/quick-start").save("sandbox")
    for name, obj in deployed_flows.DEPLOYMENTS.items():
        flow.from_source(source=source, entrypoint=f"deployed_flows.py:{obj.fn.__name__}").deploy(
            name=obj.name, work_pool_name=pool, print_next_steps=False, ignore_warnings=True)
""")


class PrefectDeployment:
    """The running deployment and what the tests ask of it."""

    def __init__(self, api_url: str, sandbox: SandboxServer, home: Path) -> None:
        self.api_url = api_url
        self.sandbox = sandbox
        self.home = home
        self.client = SyncPrefectClient(api_url)
        self.client.__enter__()
        #: Flow runs a test started early for a later one (name → run), to overlap start-ups.
        self.kicked_off: dict[str, Any] = {}

    def close(self) -> None:
        self.client.__exit__(None, None, None)

    @staticmethod
    def unique(tag: str) -> str:
        return f"{tag}-{uuid.uuid4().hex[:8]}"

    @staticmethod
    def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        return wait_for(predicate, timeout, what)

    # --- Prefect ---
    def trigger(self, deployment: str, **parameters: Any) -> FlowRun:
        """A flow run of ``deployment`` (``flow/deployment``), as the UI's "Run" creates it."""
        found = self.client.read_deployment_by_name(deployment)
        return self.client.create_flow_run_from_deployment(found.id, parameters=parameters)

    def flow_run(self, flow_run_id: Any) -> FlowRun:
        return self.client.read_flow_run(flow_run_id)

    def cancel(self, flow_run_id: Any) -> None:
        """What the UI's "Cancel" does."""
        self.client.set_flow_run_state(flow_run_id, Cancelling(), force=True)

    def wait_final(self, flow_run_id: Any, timeout: float = 120.0) -> FlowRun:
        return wait_for(lambda: _final(self.flow_run(flow_run_id)), timeout,
                        what=f"flow run {flow_run_id} to end")

    def tree(self, flow_run_id: Any) -> list[Any]:
        """The flow run and every flow run below it (subflows, run_deployment children)."""
        ids, frontier = [flow_run_id], [flow_run_id]
        while frontier:
            children = self.client.read_flow_runs(flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=frontier)))
            frontier = [child.id for child in children]
            ids.extend(frontier)
        return ids

    def logs(self, flow_run_id: Any) -> list[str]:
        """The flow-run logs (flow, tasks, subflows) as the UI shows them."""
        ids = self.tree(flow_run_id)
        messages: list[str] = []
        while True:  # the API answers at most 200 entries at a time
            page = self.client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)),
                sort=LogSort.TIMESTAMP_ASC, limit=200, offset=len(messages))
            messages += [entry.message for entry in page]
            if len(page) < 200:
                return messages

    def logs_once(self, flow_run_id: Any, done: Callable[[str], bool],
                  timeout: float = 60.0) -> str:
        """The flow-run logs as text once ``done(text)`` holds: a flow-run process ships its last
        lines after its final state, so a final flow run can still lack them for a moment."""
        text = ""

        def settled() -> bool:
            nonlocal text
            text = "\n".join(self.logs(flow_run_id))
            return done(text)

        try:
            wait_for(settled, timeout, what=f"flow run {flow_run_id}'s logs")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the logs so far:\n{text}") from None
        return text

    def worker_log(self) -> str:
        """The worker's console: where an operator sees a flow-run process exit or get killed."""
        return (self.home / "worker.log").read_text(errors="replace")

    # --- Domino (the sandbox's own record) ---
    def jobs(self, title: str) -> list[JobSnapshot]:
        found: list[JobSnapshot] = []
        for project in PROJECTS:
            with DominoClient(self.sandbox.url, project, api_key=self.sandbox.api_key) as domino:
                found += [j for j in domino.list_jobs(page_size=100) if j.title and title in j.title]
        return found

    def running(self, title: str) -> list[JobSnapshot]:
        return [j for j in self.jobs(title) if j.status.value == "Running"]


def _final(run: FlowRun) -> FlowRun | None:
    return run if run.state is not None and run.state.is_final() else None


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


@pytest.fixture(scope="session")
def prefect_deployment(server_port: Callable[[], int]) -> Iterator[PrefectDeployment]:
    home = Path(tempfile.mkdtemp(prefix="prefect-deploy-"))
    source = home / "source"
    source.mkdir()
    shutil.copy(HERE / "deployed_flows.py", source / "deployed_flows.py")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "DOMINO_"))}  # nothing inherited from the test run
    env.update(LEAN_ENV)
    env.update({
        "PREFECT_HOME": str(home / "home"),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "results"),
    })
    bin_dir = Path(sys.executable).parent
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Any] = []

    def spawn(name: str, *args: str) -> subprocess.Popen[bytes]:
        out = open(home / f"{name}.log", "wb")  # noqa: SIM115 - closed at teardown
        logs.append(out)
        proc = subprocess.Popen([str(bin_dir / "prefect"), *args], env=env, cwd=home,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(proc)
        return proc

    sandbox = SandboxServer(projects={p: None for p in PROJECTS}).start()
    deployment: PrefectDeployment | None = None
    try:
        for attempt in range(1, SERVER_START_ATTEMPTS + 1):
            port = server_port()
            api_url = env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
            server = spawn("server", "server", "start", "--host", "127.0.0.1", "--port", str(port))
            try:
                wait_for(functools.partial(_healthy, server, api_url, home / "server.log"), 180,
                         "prefect server to answer")
                break
            except _PortTaken:
                _stop_group(server)
                procs.remove(server)
                if attempt == SERVER_START_ATTEMPTS:
                    raise
        subprocess.run([sys.executable, "-c", _DEPLOY, str(source), POOL, sandbox.url,
                        sandbox.api_key], env=env, cwd=home, check=True, timeout=180,
                       capture_output=True)
        spawn("worker", "worker", "start", "--pool", POOL, "--limit", "30")
        deployment = PrefectDeployment(api_url, sandbox, home)
        yield deployment
    except subprocess.CalledProcessError as exc:
        raise AssertionError(
            f"deploying failed:\n{exc.stdout.decode()}\n{exc.stderr.decode()}") from exc
    finally:
        if deployment is not None:
            deployment.close()
        for proc in reversed(procs):
            _stop_group(proc)
        for out in logs:
            out.close()
        sandbox.stop()
        shutil.rmtree(home, ignore_errors=True)
