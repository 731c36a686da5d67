"""A real Airflow 3.3 deployment against the sandbox, started once per test session.

``airflow api-server``, ``airflow scheduler`` (LocalExecutor), ``airflow dag-processor`` and
``airflow triggerer`` run as separate processes, each in its own process group, with a temporary
AIRFLOW_HOME, a SQLite metadata DB (Airflow 3.3 accepts SQLite with the LocalExecutor), the DAGs of
``dags/``, the ``config/airflow_local_settings.py`` that makes SQLite hold up under four concurrent
processes on a loaded machine (see that file), and a ``domino_default`` connection pointing at an
in-process sandbox. Tests drive it only through the REST API v2 (trigger, clear, patch state, read
logs) and assert on the sandbox's record of jobs and on the task logs. Teardown kills each process
group.

The first test starts once every process heartbeats (``/api/v2/monitor/health``) and every DAG is
parsed. The REST client retries a 5xx or a lost connection a few times, but only where repeating
the call cannot act twice: reads, a trigger (it names its ``dag_run_id``: 409 then means the first
attempt got through), a backfill answered 503 (Airflow rolled that one back), and any call whose
500 names the audit-log INSERT that Airflow makes before it acts.

``DOMINO_DEPLOY_PYTHONPATH`` (optional) is prepended to the deployment's PYTHONPATH: point it at
a directory holding another ``domino_orchestrate`` package to run these tests against older code.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
PROJECT = "demo/quick-start"
STOP_GRACE = 12.0
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
# /api/v2/monitor/health's name for each service that heartbeats
HEALTH_KEYS = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0)  # 5 attempts over ~15 s, then the call fails with the answers
DAG_IDS = ("deploy_sync", "deploy_sync_not_durable", "deploy_defer", "deploy_timeout",
           "deploy_mapped", "deploy_sensor", "deploy_backfill")


#: A port another process bound first stops a server; start the deployment again on others.
START_ATTEMPTS = 3


class PortTaken(RuntimeError):
    """A server of the deployment exited because its port was bound by someone else."""


class AirflowDeployment:
    """The running deployment: its processes, its REST API and the sandbox it talks to.

    ``port_for_a_server`` picks the ports its servers bind (the root conftest's ``server_port``).
    """

    def __init__(self, home: Path, sandbox: Any, port_for_a_server: Callable[[], int]) -> None:
        self.home = home
        self.sandbox = sandbox
        self._port_for_a_server = port_for_a_server
        self.port = port_for_a_server()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env = self._env()
        self._api: httpx.Client | None = None

    # --- processes -----------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        # The root conftest points AIRFLOW_* at the in-process test home: start from a clean slate.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AIRFLOW", "DOMINO_", "OPENLINEAGE"))}
        home = self.home
        env.update({
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            # SQLite busy timeout (and BEGIN IMMEDIATE for savepoints): config/airflow_local_settings
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "airflow_local_settings.connect_args",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC":
                "airflow_local_settings.connect_args_async",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__WORKERS": "1",
            # A 500 names its database error (e.g. "database is locked"), not just a lookup id.
            "AIRFLOW__API__EXPOSE_STACKTRACE": "True",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__CORE__FERNET_KEY": "",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            # A restarted triggerer takes over its predecessor's triggers this soon.
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "5",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            # Log servers of our own: on the defaults (8793, 8794) a second deployment on the machine
            # answers the api-server's log reads (JWT signature errors) or keeps ours from starting.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self._port_for_a_server()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self._port_for_a_server()),
            "AIRFLOW__OPENLINEAGE__DISABLED": "True",
            "AIRFLOW_CONN_DOMINO_DEFAULT": json.dumps({
                "conn_type": "domino", "host": self.sandbox.url,
                "password": self.sandbox.api_key, "extra": {"project": PROJECT},
            }),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        })
        extra = os.environ.get("DOMINO_DEPLOY_PYTHONPATH")
        if extra:
            env["PYTHONPATH"] = extra
        return env

    def start(self, timeout: float = 240.0) -> AirflowDeployment:
        for folder in ("dags", "config"):
            (self.home / folder).mkdir(parents=True, exist_ok=True)
            for source in (HERE / folder).glob("*.py"):
                shutil.copy(source, self.home / folder / source.name)
        subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
        for name in SERVICES:
            self.start_service(name)
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                if httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                # uvicorn may log the failed bind and go on running without a socket
                api_out = (self.home / "api-server.out").read_text(errors="replace")
                if "address already in use" in api_out.lower():
                    raise PortTaken(f"airflow api-server could not bind {self.url}:\n"
                                    f"{api_out[-3000:]}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"api-server not healthy; see {self.home}/*.out")
            time.sleep(0.5)
        token = httpx.get(f"{self.url}/auth/token", timeout=30).json()["access_token"]
        self._api = httpx.Client(base_url=f"{self.url}/api/v2", timeout=90,
                                 headers={"Authorization": f"Bearer {token}"})
        self.wait_healthy(tuple(HEALTH_KEYS), since=None, deadline=deadline)
        while True:  # every test DAG parsed and unpaused
            found = {d["dag_id"] for d in self.get("/dags", params={"limit": 100})["dags"]}
            if set(DAG_IDS) <= found:
                break
            self._check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"DAGs not parsed (have {sorted(found)}); see {self.home}")
            time.sleep(1)
        return self

    def start_service(self, name: str, timeout: float = 120.0) -> None:
        """Start ``airflow <name>``; once the deployment runs, return when it heartbeats."""
        started = time.time()
        out = open(self.home / f"{name}.out", "ab")  # noqa: SIM115 - lives as long as the process
        self.procs[name] = subprocess.Popen(
            [str(BIN / "airflow"), name], env=self.env, cwd=self.home,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        out.close()
        if self._api is not None and name in HEALTH_KEYS:  # a restart during a test
            self.wait_healthy((name,), since=started, deadline=time.monotonic() + timeout)

    def health(self) -> dict[str, Any]:
        return dict(self.get("/monitor/health"))

    def wait_healthy(self, names: tuple[str, ...], since: float | None, deadline: float) -> None:
        """Until each service in ``names`` is healthy (with a heartbeat after ``since``, epoch s)."""
        from datetime import datetime

        pending = set(names)
        while True:
            health = self.health()
            for name in list(pending):
                info = health.get(HEALTH_KEYS[name]) or {}
                beat = next((v for k, v in info.items() if k.endswith("_heartbeat")), None)
                if info.get("status") == "healthy" and beat and (
                        since is None or datetime.fromisoformat(beat).timestamp() > since):
                    pending.discard(name)
            if not pending:
                return
            self._check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"airflow {sorted(pending)} not healthy: {health};"
                                   f" see {self.home}/*.out")
            time.sleep(0.5)

    def stop_service(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        except ProcessLookupError:
            pass
        with contextlib.suppress(ProcessLookupError):  # children that outlived the leader
            os.killpg(proc.pid, signal.SIGKILL)

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.home / f"{name}.out").read_text(errors="replace")[-3000:]
                error = PortTaken if "address already in use" in tail.lower() else RuntimeError
                raise error(f"airflow {name} exited ({proc.returncode}):\n{tail}")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM every process group at once, SIGKILL what is left after ``grace`` seconds."""
        if self._api is not None:
            self._api.close()
        procs = list(self.procs.values())
        self.procs.clear()
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    # --- REST API v2 ---------------------------------------------------------------------------
    @property
    def api(self) -> httpx.Client:
        assert self._api is not None, "deployment not started"
        return self._api

    def request(self, method: str, path: str,
                retry_on: Callable[[int | None], bool] = lambda _status: False,
                **kwargs: Any) -> httpx.Response:
        """One REST call, its status unchecked. Repeated (after RETRY_DELAYS) while
        ``retry_on(status)`` holds (``None`` for a failed connection): pass it only where repeating
        the call cannot act twice; a 500 from before the action is repeated for every call.
        Gives up with an AssertionError listing every answer."""
        answers: list[str] = []
        for delay in (*RETRY_DELAYS, None):
            try:
                resp = self.api.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if not retry_on(None):
                    raise
                answers.append(f"{type(exc).__name__}: {exc}")
            else:
                if not retry_on(resp.status_code) and not _failed_before_acting(resp):
                    return resp
                answers.append(f"{resp.status_code} {resp.reason_phrase}: {_why(resp)}")
            if delay is None:
                break
            print(f"airflow api: {method} {path} -> {answers[-1]}; again in {delay} s",
                  file=sys.stderr)
            time.sleep(delay)
            self._check_alive()
        raise AssertionError(f"airflow api: {method} {path} failed {len(answers)} times, giving up:"
                             f" {answers}; see {self.home}/api-server.out")

    def get(self, path: str, **kwargs: Any) -> Any:
        resp = self.request("GET", path, retry_on=_server_failed, **kwargs)
        resp.raise_for_status()
        return resp.json()

    def trigger(self, dag_id: str, conf: dict[str, Any], logical_date: str | None = None) -> str:
        """A manual run under a run id of our own, so a repeated POST cannot start a second run."""
        run_id = f"manual__deploy_{secrets.token_hex(6)}"
        resp = self.request("POST", f"/dags/{dag_id}/dagRuns", retry_on=_server_failed,
                            json={"dag_run_id": run_id, "logical_date": logical_date,
                                  "conf": conf})
        if resp.status_code == 409:  # an attempt whose answer was lost created it? (else: raise)
            existing = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}",
                                    retry_on=_server_failed)
            if existing.status_code == 200 and existing.json()["conf"] == conf:
                return run_id
        resp.raise_for_status()
        assert resp.json()["dag_run_id"] == run_id, resp.json()
        return run_id

    def wait_run(self, dag_id: str, run_id: str, states: set[str], timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while (state := self.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"]) not in states:
            if time.monotonic() > deadline:
                raise AssertionError(f"DAG run {dag_id}/{run_id} is {state}, not {states}")
            time.sleep(0.5)

    def backfill(self, dag_id: str, day: str, conf: dict[str, Any], reprocess: str) -> Any:
        """A backfill; repeated only after a 503 ("Database is locked"), which Airflow answers
        once it has removed the partial backfill, so that the caller may try again."""
        resp = self.request("POST", "/backfills", retry_on=lambda status: status == 503, json={
            "dag_id": dag_id, "from_date": day, "to_date": day, "dag_run_conf": conf,
            "reprocess_behavior": reprocess, "max_active_runs": 1,
        })
        resp.raise_for_status()  # a 409 after a 503: Airflow left the partial backfill behind
        return resp.json()

    def ti(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        if map_index >= 0:
            path += f"/{map_index}"
        return dict(self.get(path))

    def wait_ti(self, dag_id: str, run_id: str, task_id: str, states: set[str | None],
                timeout: float = 240.0, map_index: int = -1,
                try_number: int | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            ti = self.ti(dag_id, run_id, task_id, map_index)
            if ti["state"] in states and (try_number is None or ti["try_number"] >= try_number):
                return ti
            if time.monotonic() > deadline:
                self._check_alive()
                raise AssertionError(f"{dag_id}/{task_id} is {ti['state']} (try {ti['try_number']}),"
                                     f" not {states}:\n{self.log(dag_id, run_id, task_id)}")
            time.sleep(0.5)

    def clear(self, dag_id: str, run_id: str, task_ids: list[str | list[str | int]]) -> Any:
        resp = self.api.post(f"/dags/{dag_id}/clearTaskInstances", json={
            "dry_run": False, "dag_run_id": run_id, "task_ids": task_ids,
            "only_failed": False, "reset_dag_runs": True,
        })
        resp.raise_for_status()
        return resp.json()

    def set_state(self, dag_id: str, run_id: str, task_id: str, state: str,
                  map_index: int = -1) -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        if map_index >= 0:
            path += f"/{map_index}"
        resp = self.api.patch(path, json={"new_state": state})
        resp.raise_for_status()
        return resp.json()

    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int | None = None,
            map_index: int = -1) -> str:
        """The task log as the UI shows it (worker + triggerer parts), one event per line."""
        if try_number is None:
            try_number = int(self.ti(dag_id, run_id, task_id, map_index)["try_number"])
        content = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/"
                           f"{try_number}", params={"map_index": map_index, "full_content": True},
                           headers={"Accept": "application/json"}).get("content") or []
        lines = []
        for item in content:
            if not isinstance(item, dict):
                lines.append(str(item))
                continue
            lines.append(str(item.get("event", "")))
            for error in item.get("error_detail") or ():  # the exception the task failed with
                lines.append(f"{error.get('exc_type')}: {error.get('exc_value')}")
        return "\n".join(lines)

    def wait_log(self, dag_id: str, run_id: str, task_id: str, text: str, timeout: float = 120.0,
                 try_number: int = 1, map_index: int = -1) -> str:
        """The task log once it contains ``text`` (AssertionError with the log after ``timeout``).

        Read a log this way, not once after a final state: the task and the triggerer write
        their lines to the log files asynchronously, so a finished task's log can lag its state."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.log(dag_id, run_id, task_id, try_number, map_index)
            if text in log:
                return log
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the log of {dag_id}/{task_id}:\n{log}")
            time.sleep(0.5)

    def links(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        data = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links")
        return dict(data.get("extra_links") or data)

    # --- the sandbox's record ------------------------------------------------------------------
    def jobs(self, title: str | None = None, tag: str | None = None) -> list[dict[str, Any]]:
        """Every job the sandbox started, oldest first (``title`` prefix / command ``tag``)."""
        from domino_orchestrate.core import DominoClient

        with DominoClient(self.sandbox.url, PROJECT, api_key=self.sandbox.api_key) as client:
            found = []
            for snap in client.list_jobs(page_size=500):
                info = self.sandbox.execution_info(snap.job_id)
                command = " ".join(info.get("argv") or [])
                if title and not (snap.title or "").startswith(title):
                    continue
                if tag and f"job {tag} begins" not in command:
                    continue
                found.append({"id": snap.job_id, "status": snap.raw_status, "title": snap.title,
                              "command": command})
        return list(reversed(found))

    def wait_jobs(self, predicate: Callable[[list[dict[str, Any]]], bool], tag: str,
                  timeout: float = 180.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            jobs = self.jobs(tag=tag)
            if predicate(jobs):
                return jobs
            if time.monotonic() > deadline:
                raise AssertionError(f"sandbox jobs for {tag}: {jobs}")
            time.sleep(0.3)


def _why(resp: httpx.Response) -> str:
    """The cause an error answer gives: the database error if it names one."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300]
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, dict) and detail.get("orig_error"):
        return f"{detail.get('reason')}: {detail['orig_error']}"[:300]
    return str(detail)[:300]


def _failed_before_acting(resp: httpx.Response) -> bool:
    """A 500 from the audit-log write that precedes every POST/PATCH: nothing was done yet (see
    config/airflow_local_settings.py), so any call may be repeated."""
    if resp.status_code != 500:
        return False
    try:
        detail = resp.json().get("detail")
    except (ValueError, AttributeError):
        return False
    return isinstance(detail, dict) and str(detail.get("statement", "")).startswith(
        "INSERT INTO log ")


def _server_failed(status: int | None) -> bool:
    """A 5xx answer or no answer at all."""
    return status is None or status >= 500


@pytest.fixture(scope="session")
def airflow_deployment(server_port: Callable[[], int]) -> Iterator[AirflowDeployment]:
    from domino_orchestrate.sandbox.server import SandboxServer

    homes: list[Path] = []
    try:
        # A job that ignores SIGTERM stays Stopping for STOP_GRACE seconds (then SIGKILL).
        with SandboxServer(phase_delay=0.05, stop_grace=STOP_GRACE) as sandbox:
            for attempt in range(1, START_ATTEMPTS + 1):
                homes.append(Path(tempfile.mkdtemp(prefix="airflow-deploy-")))
                deployment = AirflowDeployment(homes[-1], sandbox, server_port)
                try:
                    deployment.start()
                    break
                except PortTaken:
                    deployment.stop()
                    if attempt == START_ATTEMPTS:
                        raise
                except BaseException:
                    deployment.stop()
                    raise
            try:
                yield deployment
            finally:
                deployment.stop()
    finally:  # also after a failed or interrupted start
        for home in homes:
            if os.environ.get("DOMINO_DEPLOY_KEEP_HOME"):
                print(f"Airflow deployment home kept at {home}")
            else:
                shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def gate(tmp_path: Path) -> Callable[[str], Path]:
    """``gate(name)``: a file path a job waits for; create it to let the job finish."""
    def make(name: str) -> Path:
        return tmp_path / f"gate-{name}"
    return make
