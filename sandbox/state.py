"""The sandbox's in-memory model: projects, executions and the thread-safe store holding them.

What lives here: the data records (`Project`, `Execution`, `HardwareTier`), id generation,
the status vocabulary and the `ExecutionStore`. What must not: process handling (see
`processes.py`), HTTP (see `app.py`) and JSON shapes (see `views.py`).

Locking rule: every read or write of a mutable `Execution` field from more than one thread goes
through `ExecutionStore.lock`. The supervisor thread is the only writer of lifecycle fields; HTTP
handlers only create executions and raise the `stop_requested` flag.
"""

from __future__ import annotations

import itertools
import os
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# domino-api.md §2.4: the terminal set; `isCompleted` is true exactly for these.
TERMINAL_STATUSES = frozenset({"Succeeded", "Failed", "Stopped", "Error"})
ALL_STATUSES = (
    "Queued",
    "Preparing",
    "Running",
    "StopRequested",
    "Stopping",
    "Finishing",
    "Succeeded",
    "Failed",
    "Stopped",
    "Error",
)

_oid_counter = itertools.count(secrets.randbelow(1 << 24))
_oid_lock = threading.Lock()


def new_object_id() -> str:
    """A 24-hex id shaped like a MongoDB ObjectId (domino-api.md §2.2: run ids are ObjectIds)."""
    with _oid_lock:
        count = next(_oid_counter) & 0xFFFFFF
    return f"{int(time.time()) & 0xFFFFFFFF:08x}{secrets.token_hex(5)}{count:06x}"


def new_commit_id() -> str:
    """A 40-hex git-like commit id."""
    return secrets.token_hex(20)


def now_ms() -> int:
    """The time now, in epoch milliseconds (Domino's timestamps)."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class HardwareTier:
    """A hardware tier the sandbox offers (id, name, size; one is the default)."""

    id: str
    name: str
    cores: float
    memory_gib: float
    is_default: bool = False


HARDWARE_TIERS: tuple[HardwareTier, ...] = (
    HardwareTier("small-k8s", "Small", 1.0, 4.0, is_default=True),
    HardwareTier("medium-k8s", "Medium", 4.0, 15.0),
    HardwareTier("large-k8s", "Large", 8.0, 30.0),
)

# (id, name) of the environments `useableEnvironments` offers; the first one is the default.
ENVIRONMENTS: tuple[tuple[str, str], ...] = (
    ("5f1a2b3c4d5e6f7081920a0b", "Domino Standard Environment Py3.10 R4.3"),
    ("5f1a2b3c4d5e6f7081920a0c", "Sandbox Minimal Environment"),
)


def find_tier(key: str | None) -> HardwareTier | None:
    """A tier by id or by name; `None` picks the default tier."""
    if key is None:
        return next(t for t in HARDWARE_TIERS if t.is_default)
    for tier in HARDWARE_TIERS:
        if key in (tier.id, tier.name):
            return tier
    return None


@dataclass
class Project:
    """A sandbox project: its ids, ``owner/name``, the folder its jobs run in, and its commits
    (newest first)."""

    id: str
    owner: str
    name: str
    source_dir: Path | None
    owner_id: str = field(default_factory=new_object_id)
    # Newest first; `P1/commits` returns these plain strings (domino-api.md §2.3 catch).
    commits: list[str] = field(default_factory=lambda: [new_commit_id()])
    next_number: int = 1

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class Execution:
    """One run/job. v1 runs and v4 jobs share this record and one id space (domino-api.md §2.1)."""

    id: str
    project: Project
    number: int
    api: str  # "v1" or "v4": which endpoint started it (both are visible through both APIs)
    command_display: str
    argv: list[str]
    use_shell: bool
    title: str | None
    hardware_tier: HardwareTier
    environment_id: str
    input_commit_id: str
    exec_dir: Path
    queued_ms: int = field(default_factory=now_ms)
    started_ms: int | None = None
    completed_ms: int | None = None
    status: str = "Queued"
    output_commit_id: str | None = None
    exit_code: int | None = None
    pid: int | None = None
    failure_message: str | None = None
    stop_requested: bool = False
    setup_lines: int = 0
    log_size: int = 0
    stdout_unterminated: bool = False
    stderr_unterminated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_completed(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def log_path(self) -> Path:
        return self.exec_dir / "output.log"

    @property
    def workdir(self) -> Path:
        return self.exec_dir / "work"

    def raw_path(self, stream: str) -> Path:
        """The file holding the raw bytes the job wrote to ``stream`` (stdout or stderr)."""
        return self.exec_dir / f"{stream}.raw"


class ExecutionStore:
    """All projects and executions of one sandbox, guarded by one lock."""

    def __init__(self, data_dir: Path, phase_delay: float = 0.05) -> None:
        self.lock = threading.RLock()
        self.data_dir = data_dir
        self.phase_delay = phase_delay
        self.username = "sandbox-user"
        self.user_id = new_object_id()
        self._projects: dict[str, Project] = {}
        self._projects_by_id: dict[str, Project] = {}
        self._executions: dict[str, Execution] = {}
        self._by_project: dict[str, list[Execution]] = {}
        self.starts_by_title: Counter[str] = Counter()

    # -- projects -----------------------------------------------------------------------------
    def add_project(self, full_name: str, source_dir: str | os.PathLike[str] | None) -> Project:
        """Register project ``full_name`` (OWNER/NAME) running in ``source_dir``. Raises ValueError
        for a bad name or a missing folder."""
        owner, sep, name = full_name.partition("/")
        if not sep or not owner or not name or "/" in name:
            raise ValueError(f"project must be OWNER/NAME, got {full_name!r}")
        src = Path(source_dir).resolve() if source_dir is not None else None
        if src is not None and not src.is_dir():
            raise ValueError(f"project folder {src} does not exist")
        project = Project(id=new_object_id(), owner=owner, name=name, source_dir=src)
        with self.lock:
            self._projects[full_name] = project
            self._projects_by_id[project.id] = project
            self._by_project[project.id] = []
        return project

    def find_project(self, owner: str, name: str) -> Project | None:
        """The project ``owner/name``, or None."""
        with self.lock:
            return self._projects.get(f"{owner}/{name}")

    def project_by_id(self, project_id: str) -> Project | None:
        """The project with that id, or None."""
        with self.lock:
            return self._projects_by_id.get(project_id)

    def projects(self) -> list[Project]:
        """Every project."""
        with self.lock:
            return list(self._projects.values())

    # -- executions ---------------------------------------------------------------------------
    def create(
        self,
        project: Project,
        *,
        api: str,
        command_display: str,
        argv: list[str],
        use_shell: bool,
        title: str | None,
        hardware_tier: HardwareTier,
        environment_id: str | None,
        commit_id: str | None,
        extra: dict[str, Any] | None = None,
    ) -> Execution:
        """Record a new queued execution of ``project`` (numbered in the project) and return it;
        nothing runs yet."""
        exec_id = new_object_id()
        with self.lock:
            number = project.next_number
            project.next_number += 1
            execution = Execution(
                id=exec_id,
                project=project,
                number=number,
                api=api,
                command_display=command_display,
                argv=argv,
                use_shell=use_shell,
                title=title,
                hardware_tier=hardware_tier,
                environment_id=environment_id or ENVIRONMENTS[0][0],
                input_commit_id=commit_id or project.commits[0],
                exec_dir=self.data_dir / "executions" / exec_id,
                extra=dict(extra or {}),
            )
            self._executions[exec_id] = execution
            self._by_project[project.id].append(execution)
            self.starts_by_title[title or ""] += 1
        return execution

    def get(self, exec_id: str) -> Execution | None:
        """The execution with that id, or None."""
        with self.lock:
            return self._executions.get(exec_id)

    def list_project(self, project_id: str) -> list[Execution]:
        """Executions of a project, most recently queued first (domino-api.md §2.2)."""
        with self.lock:
            return list(reversed(self._by_project.get(project_id, [])))

    def all(self) -> list[Execution]:
        """Every execution of every project."""
        with self.lock:
            return list(self._executions.values())

    def status_counts(self) -> dict[str, int]:
        """How many executions are in each status."""
        with self.lock:
            return dict(Counter(e.status for e in self._executions.values()))

    def set_status(self, execution: Execution, status: str) -> bool:
        """Move a non-terminal execution to `status`; terminal ones never move again."""
        with self.lock:
            if execution.status in TERMINAL_STATUSES:
                return False
            execution.status = status
            if status in TERMINAL_STATUSES:
                # domino-api.md §3.1: a truthy outputCommitId is the v1 "finished" signal, so it
                # is set in the same critical section as the terminal status.
                execution.completed_ms = now_ms()
                commit = new_commit_id()
                execution.output_commit_id = commit
                execution.project.commits.insert(0, commit)
            return True
