"""Chaos suite set-up: sizes, a faulty in-process sandbox, file-based lineage, an isolated Airflow
home, a Prefect test API, and the checks every orchestrator's chaos test shares.

``DOMINO_CHAOS_FULL=1`` (``make chaos``) runs 200 jobs per orchestrator; CI runs a small number.
Test modules cannot import this file (``--import-mode=importlib``), so the shared checks are handed
out by the ``chaos`` fixture.

Airflow reads its configuration once, on import, so its environment is set here at import time —
unless ``tests/airflow/conftest.py`` (which does the same) already ran or Airflow is already
imported; the root ``airflow_db`` fixture creates that home's DB.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from domino_orchestrate.sandbox import SandboxServer

FULL = bool(os.environ.get("DOMINO_CHAOS_FULL"))
#: Jobs per orchestrator.
JOBS = 200 if FULL else 8
PROJECT = "chaos/p"
FAULT_RATE = 0.2
#: Transport retries per request for every integration (their max_retries setting; none of them
#: takes a core RetryPolicy object). 0.2**9 makes an exhausted request practically impossible.
MAX_RETRIES = 8
WORKERS = Path(__file__).resolve().parent
TERMINAL = {"COMPLETE", "FAIL", "ABORT"}


# tests/conftest.py gives each worker its own AIRFLOW_HOME before Airflow is imported.


# --- what every chaos test checks --------------------------------------------------------------


def exit_code(i: int) -> int:
    """Every 4th job fails with exit 3, the others succeed."""
    return 3 if i % 4 == 0 else 0


def command(tag: str, i: int) -> str:
    """A job printing 3..9 unique lines in two bursts (so stdout is streamed across polls)."""
    lines = 3 + i % 7
    half = lines // 2
    return (f"for n in $(seq 1 {half}); do echo {tag}{i}-line$n; done; sleep 0.3; "
            f"for n in $(seq {half + 1} {lines}); do echo {tag}{i}-line$n; done; "
            f"exit {exit_code(i)}")


def title(tag: str, i: int) -> str:
    return f"chaos-{tag}-{i}"


def index_of(tag: str, job_title: str) -> int:
    """``chaos-<tag>-<i> [do:<key>]`` → i."""
    match = re.fullmatch(rf"chaos-{tag}-(\d+)", job_title.split(" [do:")[0])
    assert match, job_title
    return int(match.group(1))


def starts_per_title(srv: SandboxServer) -> dict[str, int]:
    """Starts by title without the ``[do:<key>]`` suffix the core adds."""
    per_title: dict[str, int] = defaultdict(int)
    for job_title, count in srv.stats()["starts_by_title"].items():
        per_title[job_title.split(" [do:")[0]] += count
    return dict(per_title)


def injected(srv: SandboxServer) -> int:
    faults = srv.stats().get("faults")
    if isinstance(faults, dict):
        counts = faults.get("injected", faults)
        return sum(v for v in counts.values() if isinstance(v, int))
    return 0


def sandbox_jobs(srv: SandboxServer, tag: str) -> dict[int, Any]:
    """The sandbox's jobs of this test, keyed by job index (faults must be off)."""
    from domino_orchestrate.core import DominoClient

    with DominoClient(srv.url, PROJECT, api_key=srv.api_key) as client:
        jobs = client.list_jobs(page_size=1000)
    out: dict[int, Any] = {}
    for snap in jobs:
        i = index_of(tag, snap.title or "")
        assert i not in out, f"two sandbox jobs for job {i}"
        out[i] = snap
    return out


def stdout_lines(srv: SandboxServer, job_id: str) -> list[str]:
    return srv.output(job_id)[0].decode().splitlines()


def group_lines(tag: str, lines: list[str]) -> dict[int, list[str]]:
    """Streamed lines grouped by the job that printed them (``<tag><i>-line<n>``)."""
    out: dict[int, list[str]] = defaultdict(list)
    for line in lines:
        match = re.match(rf"{tag}(\d+)-line\d+$", line)
        assert match, f"unexpected streamed line {line!r}"
        out[int(match.group(1))].append(line)
    return dict(out)


def check_jobs(srv: SandboxServer, tag: str, n: int, streamed: dict[int, list[str]]) -> dict[int, Any]:
    """Right final Domino state, one start per job, streamed stdout == the job's real stdout."""
    assert injected(srv) > 0, "no fault was injected"
    per_title = starts_per_title(srv)
    assert per_title == {title(tag, i): 1 for i in range(n)}, per_title
    jobs = sandbox_jobs(srv, tag)
    assert sorted(jobs) == list(range(n))
    for i, snap in jobs.items():
        assert snap.status.value == ("Failed" if exit_code(i) else "Succeeded"), (i, snap)
        real = stdout_lines(srv, snap.job_id)
        assert len(real) == 3 + i % 7, (i, real)
        assert streamed.get(i, []) == real, (i, streamed.get(i), real)
    return jobs


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def domino_job_id(event: dict[str, Any]) -> str | None:
    tags = (((event.get("run") or {}).get("facets") or {}).get("tags") or {}).get("tags") or []
    for tag in tags:
        if tag.get("key") == "domino.job_id":
            return str(tag.get("value"))
    return None


def check_lineage(path: Path, jobs: dict[int, Any]) -> list[dict[str, Any]]:
    """No (eventType, runId) pair twice in the whole file, and per Domino job exactly one START
    and one terminal event of the right kind from domino-orchestrate (the orchestrator's own
    OpenLineage integration, e.g. Airflow's task events, may tag the job id too: not counted)."""
    everything = read_events(path)
    pairs = Counter((e["eventType"], e["run"]["runId"]) for e in everything)
    assert not [p for p, c in pairs.items() if c > 1], pairs
    events = [e for e in everything
              if domino_job_id(e) and "/domino-orchestrate/" in str(e.get("producer"))]
    by_job: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_job[str(domino_job_id(event))].append(event)
    assert set(by_job) == {snap.job_id for snap in jobs.values()}, (sorted(by_job), jobs)
    for i, snap in jobs.items():
        mine = by_job[snap.job_id]
        kinds = Counter(e["eventType"] for e in mine)
        assert kinds["START"] == 1 and kinds["RUNNING"] <= 1, (i, kinds)
        terminal = [e["eventType"] for e in mine if e["eventType"] in TERMINAL]
        assert terminal == ["FAIL" if exit_code(i) else "COMPLETE"], (i, kinds)
        assert len({e["run"]["runId"] for e in mine}) == 1, (i, mine)
    return events


class Chaos:
    """Shared constants and checks (a fixture: test modules cannot import conftest)."""

    full = FULL
    jobs = JOBS
    project = PROJECT
    fault_rate = FAULT_RATE
    max_retries = MAX_RETRIES
    workers = WORKERS
    command = staticmethod(command)
    title = staticmethod(title)
    exit_code = staticmethod(exit_code)
    index_of = staticmethod(index_of)
    group_lines = staticmethod(group_lines)
    check_jobs = staticmethod(check_jobs)
    check_lineage = staticmethod(check_lineage)
    read_events = staticmethod(read_events)
    domino_job_id = staticmethod(domino_job_id)
    starts_per_title = staticmethod(starts_per_title)
    stdout_lines = staticmethod(stdout_lines)

    @staticmethod
    def wait_for(predicate: Any, timeout: float = 60.0, every: float = 0.1) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(every)
        raise AssertionError(f"condition not met within {timeout}s")

    @staticmethod
    def watcher(srv: SandboxServer) -> Any:
        """A test-side client that rides out the injected faults."""
        from domino_orchestrate.core import DominoClient, RetryPolicy

        return DominoClient(srv.url, PROJECT, api_key=srv.api_key, retry_policy=RetryPolicy(
            max_retries=12, initial_wait=0.05, max_wait=0.5, max_retry_after=1.0))

    @staticmethod
    def executions(srv: SandboxServer, job_title: str) -> list[Any]:
        """The sandbox's executions titled ``job_title`` (read in process: never faulted)."""
        return [e for e in srv.ctx.store.all() if (e.title or "").split(" [do:")[0] == job_title]

    @staticmethod
    def kill_when_running(srv: SandboxServer, argv: list[str], env: dict[str, str], log: Path,
                          job_title: str, timeout: float = 150.0) -> str:
        """Start a worker process; once its Domino job runs and has printed ``started``, SIGKILL
        the worker (its whole process group: no handler, no ``finally``, no atexit runs).
        Returns the job id; the job must still be running afterwards (nobody stopped it)."""
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                def running() -> str | None:
                    if proc.poll() is not None:
                        raise AssertionError(f"worker exited early ({proc.returncode}):\n"
                                             + log.read_text(errors="replace")[-4000:])
                    for ex in Chaos.executions(srv, job_title):
                        if ex.status == "Running" and b"started" in srv.output(ex.id)[0]:
                            return str(ex.id)
                    return None

                job_id = str(Chaos.wait_for(running, timeout, 0.05))
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        time.sleep(1.0)  # a cleanup that did run would have stopped the job by now
        (ex,) = Chaos.executions(srv, job_title)
        assert ex.id == job_id and ex.status == "Running", f"the job did not survive: {ex.status}"
        assert b"done" not in srv.output(job_id)[0]
        return job_id

    @staticmethod
    def run_worker(argv: list[str], env: dict[str, str], log: Path,
                   timeout: float = 180.0) -> dict[str, Any]:
        """Run a worker process to its end; its ``CHAOS-RESULT`` JSON."""
        with open(log, "wb") as out:
            proc = subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=timeout, start_new_session=True, check=False)
        text = log.read_text(errors="replace")
        assert proc.returncode == 0, text[-6000:]
        results = [line for line in text.splitlines() if line.startswith("CHAOS-RESULT ")]
        assert len(results) == 1, text[-6000:]
        return dict(json.loads(results[0][len("CHAOS-RESULT "):]))

    @staticmethod
    def clean_env(extra: dict[str, str]) -> dict[str, str]:
        """This process's environment without Airflow/Prefect/Domino/lineage settings, plus
        ``extra`` (for worker subprocesses)."""
        prefixes = ("AIRFLOW", "PREFECT", "DAGSTER", "DOMINO_", "OPENLINEAGE")
        env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
        env.update(extra)
        return env


@pytest.fixture
def chaos() -> type[Chaos]:
    return Chaos


# --- resources ---------------------------------------------------------------------------------


@pytest.fixture
def srv() -> Iterator[SandboxServer]:
    """A fresh sandbox (faults off; each test turns them on)."""
    with SandboxServer(projects={PROJECT: None}, phase_delay=0.05) as server:
        yield server


@pytest.fixture
def lineage_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """OpenLineage to a JSON-lines file (appending) with a private spool."""
    from domino_orchestrate.core.lineage import transports

    for key in list(os.environ):
        if key.startswith(("OPENLINEAGE", "DOMINO_ORCHESTRATE_")):
            monkeypatch.delenv(key)
    path = tmp_path / "events.jsonl"
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "file")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", str(path))
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__APPEND", "true")
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_SPOOL", str(tmp_path / "spool"))
    transports._emitters.clear()
    yield path
    transports._emitters.clear()


@pytest.fixture
def domino_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ambient Domino settings (credentials come from each test's connection/resource)."""
    for key in list(os.environ):
        if key.startswith("DOMINO_") and not key.startswith(("DOMINO_ORCHESTRATE_", "DOMINO_CHAOS")):
            monkeypatch.delenv(key)
