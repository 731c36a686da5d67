"""One Dagster deployment per test session, run the way users run it: ``dagster dev`` (webserver +
daemon + code server) with a temporary DAGSTER_HOME (SQLite storage, run monitoring and run
retries on), loading ``deploy_defs.py`` against a sandbox started here. Tests drive it only
through its GraphQL API and read the sandbox's record of jobs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from domino_orchestrate.sandbox.server import SandboxServer

HERE = Path(__file__).resolve().parent
#: The example the README points to, loaded as a second code location exactly as its docstring says.
EXAMPLE = HERE.parents[2] / "examples" / "dagster" / "definitions.py"
LOCATIONS = {"deploy_defs.py": HERE / "deploy_defs.py", "definitions.py": EXAMPLE}
DAGSTER_BIN = Path(sys.executable).with_name("dagster")
START_TIMEOUT = 240.0

INSTANCE_YAML = """\
run_monitoring:
  enabled: true
  poll_interval_seconds: 1
run_retries:
  enabled: true
  max_retries: 0
run_coordinator:
  module: dagster._core.run_coordinator.queued_run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
telemetry:
  enabled: false
"""

FINISHED = ("SUCCESS", "FAILURE", "CANCELED")


@dataclass
class DagsterDeployment:
    url: str
    home: Path
    markers: Path
    log_file: Path
    #: code location name -> repository name
    repositories: dict[str, str]
    sandbox: SandboxServer

    # --- GraphQL ---
    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        resp = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables},
                          timeout=60)
        resp.raise_for_status()
        body = resp.json()
        assert not body.get("errors"), body["errors"]
        return dict(body["data"])

    def launch(self, job_name: str, tags: dict[str, str] | None = None, *,
               location: str = "deploy_defs.py", assets: list[str] | None = None) -> str:
        selector: dict[str, Any] = {
            "repositoryLocationName": location, "repositoryName": self.repositories[location],
            "jobName": job_name}
        if assets is not None:
            selector["assetSelection"] = [{"path": [name]} for name in assets]
        data = self.graphql(LAUNCH, params={
            "selector": selector,
            "executionMetadata": {"tags": [{"key": k, "value": v}
                                           for k, v in (tags or {}).items()]},
        })["launchRun"]
        assert data["__typename"] == "LaunchRunSuccess", data
        return str(data["run"]["runId"])

    def reexecute(self, run_id: str, strategy: str) -> str:
        data = self.graphql(REEXECUTE, parent=run_id, strategy=strategy)["launchPipelineReexecution"]
        assert data["__typename"] == "LaunchRunSuccess", data
        return str(data["run"]["runId"])

    def terminate(self, run_id: str, *, force: bool = False) -> None:
        policy = "MARK_AS_CANCELED_IMMEDIATELY" if force else "SAFE_TERMINATE"
        data = self.graphql(TERMINATE, runId=run_id, policy=policy)["terminateRun"]
        assert data["__typename"] == "TerminateRunSuccess", data

    def add_run_tags(self, run_id: str, tags: dict[str, str]) -> None:
        """Tag a running run (GraphQL has no mutation for it: Dagster's own instance API, on the
        deployment's DAGSTER_HOME)."""
        from dagster import DagsterInstance
        from dagster._core.instance.ref import InstanceRef

        with DagsterInstance.from_ref(InstanceRef.from_dir(str(self.home))) as instance:
            instance.add_run_tags(run_id, tags)

    def run(self, run_id: str) -> dict[str, Any]:
        data = self.graphql(RUN, runId=run_id)["runOrError"]
        assert data["__typename"] == "Run", data
        return dict(data)

    def runs_in_group(self, run_id: str) -> list[dict[str, Any]]:
        data = self.graphql(RUN_GROUP, runId=run_id)["runGroupOrError"]
        return list(data.get("runs") or [])

    def wait_status(self, run_id: str, statuses: tuple[str, ...] = FINISHED,
                    timeout: float = 180.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            status = str(self.run(run_id)["status"])
            if status in statuses:
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} still {status} after {timeout}s; "
                                     f"messages: {self.messages(run_id)[-15:]}")
            time.sleep(0.5)

    def events(self, run_id: str) -> list[dict[str, Any]]:
        """Every event of the run's event log as GraphQL returns it (the ``LOGS`` fields)."""
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            data = self.graphql(LOGS, runId=run_id, cursor=cursor)["logsForRun"]
            assert data["__typename"] == "EventConnection", data
            found.extend(data["events"])
            if not data["hasMore"]:
                return found
            cursor = data["cursor"]

    def messages(self, run_id: str) -> list[str]:
        """Every message of the run's event log, as the UI's log view shows them."""
        return [str(e.get("message") or "") for e in self.events(run_id)]

    def step_errors(self, run_id: str) -> list[str]:
        """The error messages of the run's step failures (what the UI shows for a failed step)."""
        return [str(e["error"]["message"]) for e in self.events(run_id)
                if e["__typename"] == "ExecutionStepFailureEvent" and e.get("error")]

    def user_messages(self, run_id: str) -> list[tuple[str, str]]:
        """(level, message) of what steps sent to ``context.log`` (LogMessageEvent)."""
        return [(str(e["level"]), str(e["message"])) for e in self.events(run_id)
                if e["__typename"] == "LogMessageEvent"]

    def wait_for_message(self, run_id: str, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in m for m in self.messages(run_id)):
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the event log of {run_id} after {timeout}s")
            time.sleep(0.5)

    # --- the sandbox's record ---
    def jobs(self, dagster_job: str) -> dict[str, str]:
        """Domino job id -> status of every job the sandbox started for a Dagster job."""
        return self.jobs_titled(f"dagster {dagster_job}.")

    def jobs_titled(self, prefix: str) -> dict[str, str]:
        """Domino job id -> status of every job whose title starts with ``prefix``."""
        return {ex.id: ex.status for ex in self.sandbox.ctx.store.all()
                if (ex.title or "").startswith(prefix)}


LAUNCH = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
  }
}"""

REEXECUTE = """
mutation($parent: String!, $strategy: ReexecutionStrategy!) {
  launchPipelineReexecution(reexecutionParams: {parentRunId: $parent, strategy: $strategy}) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
  }
}"""

TERMINATE = """
mutation($runId: String!, $policy: TerminateRunPolicy) {
  terminateRun(runId: $runId, terminatePolicy: $policy) {
    __typename
    ... on TerminateRunFailure { message }
    ... on PythonError { message }
  }
}"""

RUN = """
query($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status parentRunId rootRunId tags { key value } }
  }
}"""

RUN_GROUP = """
query($runId: ID!) {
  runGroupOrError(runId: $runId) {
    __typename
    ... on RunGroup { runs { runId status parentRunId tags { key value } } }
  }
}"""

LOGS = """
query($runId: ID!, $cursor: String) {
  logsForRun(runId: $runId, afterCursor: $cursor) {
    __typename
    ... on EventConnection {
      cursor hasMore
      events {
        __typename
        ... on MessageEvent { message level stepKey timestamp }
        ... on ExecutionStepFailureEvent { error { message } }
        ... on MaterializationEvent {
          assetKey { path }
          metadataEntries { label ... on IntMetadataEntry { intValue }
                                  ... on TextMetadataEntry { text } }
        }
        ... on AssetCheckEvaluationEvent { evaluation { checkName success } }
      }
    }
    ... on PythonError { message }
  }
}"""

REPOSITORIES = """
{
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } jobs { name } } }
  }
}"""


def _stop_group(proc: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    """SIGTERM the deployment's process group (dagster dev shuts its children down), then
    SIGKILL whatever is left of the group."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


#: A port another process bound first makes the webserver exit; start again on another port.
START_ATTEMPTS = 3


class PortTaken(RuntimeError):
    """``dagster dev`` exited because its webserver's port was bound by someone else."""


@pytest.fixture(scope="session")
def dagster_deployment(server_port: Callable[[], int]) -> Iterator[DagsterDeployment]:
    with tempfile.TemporaryDirectory(prefix="dagster-deploy-") as tmp, SandboxServer(
            stop_grace=5.0,  # a loaded CI machine may not schedule the job's TERM trap within 1 s
    ) as sandbox:
        root = Path(tmp)
        home, markers = root / "home", root / "markers"
        home.mkdir()
        markers.mkdir()
        (home / "dagster.yaml").write_text(INSTANCE_YAML)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DOMINO_", "DAGSTER_", "OPENLINEAGE"))}
        env.update({
            "DAGSTER_HOME": str(home), "DOMINO_API_HOST": sandbox.url,
            "DOMINO_USER_API_KEY": sandbox.api_key, "DOMINO_DEPLOY_MARKERS": str(markers),
            "DAGSTER_DISABLE_TELEMETRY": "1", "PYTHONUNBUFFERED": "1",
        })
        log_file = root / "dagster-dev.log"
        files = [arg for path in LOCATIONS.values() for arg in ("-f", str(path))]
        for attempt in range(1, START_ATTEMPTS + 1):
            port = server_port()
            with open(log_file, "wb") as log_out:  # an earlier attempt's "in use" is not ours
                proc = subprocess.Popen(
                    [str(DAGSTER_BIN), "dev", *files, "-h", "127.0.0.1", "-p", str(port)],
                    cwd=tmp, env=env, stdout=log_out, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                deployment = _wait_ready(proc, f"http://127.0.0.1:{port}", home, markers,
                                         log_file, sandbox)
                break
            except PortTaken:
                _stop_and_check(proc)
                if attempt == START_ATTEMPTS:
                    raise
            except BaseException:
                _stop_and_check(proc)
                raise
        try:
            yield deployment
        finally:
            _stop_and_check(proc)


def _stop_and_check(proc: subprocess.Popen[bytes]) -> None:
    """Stop the deployment's process group and check that none of it is left running."""
    _stop_group(proc)
    deadline = time.monotonic() + 15  # SIGKILLed members may take a moment to go
    while (leftovers := _group_members(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not leftovers, f"processes left running: {leftovers}"


def _group_members(pgid: int) -> list[str]:
    # Zombies are dead already (a container without an init may never reap them).
    out = subprocess.run(["ps", "-eo", "pid=,pgid=,stat=,args="], capture_output=True,
                         text=True).stdout
    return [line for line in out.splitlines()
            if line.split()[1:2] == [str(pgid)] and not line.split()[2].startswith("Z")]


def _wait_ready(proc: subprocess.Popen[bytes], url: str, home: Path, markers: Path,
                log_file: Path, sandbox: SandboxServer) -> DagsterDeployment:
    deadline = time.monotonic() + START_TIMEOUT
    last: Any = None
    while time.monotonic() < deadline:
        exited = proc.poll() is not None
        log = log_file.read_text(errors="replace")
        if "address already in use" in log.lower():  # the webserver's port: exited or not
            raise PortTaken(f"dagster dev could not bind {url}:\n{log[-3000:]}")
        if exited:
            raise RuntimeError(f"dagster dev exited ({proc.returncode}):\n{log}")
        try:
            resp = httpx.post(f"{url}/graphql", json={"query": REPOSITORIES}, timeout=10)
            last = resp.json()
            repos = last["data"]["repositoriesOrError"]
            found = {node["location"]["name"]: node["name"] for node in repos.get("nodes") or ()}
            if set(found) == set(LOCATIONS):
                return DagsterDeployment(url, home, markers, log_file, found, sandbox)
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"dagster dev not ready after {START_TIMEOUT}s ({last}):\n"
                       f"{log_file.read_text()[-5000:]}")
