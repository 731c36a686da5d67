"""What the Prefect tasks, flows and blocks share: run identity (idempotency keys and lineage),
stdout → run logger, artifacts, and the sync/async "wait, and stop the job if interrupted" helpers.

No HTTP, status strings or polling here: the core does that. This module only maps Prefect's
context onto core arguments.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from domino_orchestrate.core import (
    DominoConfig,
    DominoError,
    JobHandle,
    JobSnapshot,
    JobSpec,
    LogLine,
    PollOptions,
    RunSpec,
    idempotency_key,
)
from domino_orchestrate.core.lineage import LineageInfo, ParentRun, lineage_env, lineage_observers

if TYPE_CHECKING:
    from domino_orchestrate.core import AsyncDominoClient, DominoClient

__all__ = [
    "RunIdentity",
    "awrite_link_artifact",
    "awrite_table_artifact",
    "current_identity",
    "handle_from",
    "lineage_for",
    "poll_options",
    "wait_async",
    "wait_sync",
    "write_link_artifact",
    "write_table_artifact",
]

log = logging.getLogger("domino_orchestrate.prefect")

#: Subflow nesting followed up to the root flow run when building a stable identity.
_MAX_DEPTH = 32
#: Flow-run attempts whose call counters are kept (a long-lived worker forgets the oldest).
_MAX_ATTEMPTS = 4096


# --- identity ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunIdentity:
    """Where a task run sits, in terms that survive task retries and flow-run retries.

    Prefect 3.7 names task runs ``<task>-<3 random hex>`` and gives them random dynamic keys, so
    a flow-run retry renames every task run. What stays the same: the root flow run id, the names
    of the subflow-parent task runs (``<flow>-0``, a counter) and the order in which a flow run
    calls a given task with given arguments. ``stable_name`` is built from those.
    """

    flow_name: str
    flow_run_id: str
    task_name: str
    task_run_name: str
    root_flow_name: str
    root_flow_run_id: str
    #: ``"<parent-task-run>/.../<task>:<spec fingerprint>:<ordinal>"``
    stable_name: str

    @property
    def key_parts(self) -> tuple[str, str]:
        return (self.root_flow_run_id, self.stable_name)

    def idempotency_key(self) -> str:
        return idempotency_key(*self.key_parts)


_ordinals: dict[tuple[str, int], dict[str, int]] = {}
_ordinal_slots: dict[tuple[str, int], dict[str, str]] = {}
_ordinals_lock = threading.Lock()


def _ordinal(flow_run_id: str, run_count: int, task_run_id: str, slot: str) -> int:
    """The n-th call of ``slot`` in this attempt of the flow run; stable across task retries."""
    attempt = (flow_run_id, run_count)
    with _ordinals_lock:
        while len(_ordinals) >= _MAX_ATTEMPTS and attempt not in _ordinals:  # oldest first
            oldest = next(iter(_ordinals))
            _ordinals.pop(oldest)
            _ordinal_slots.pop(oldest, None)
        seen = _ordinal_slots.setdefault(attempt, {})
        counts = _ordinals.setdefault(attempt, {})
        if task_run_id in seen:
            return int(seen[task_run_id].rsplit(":", 1)[1])
        n = counts.get(slot, 0)
        counts[slot] = n + 1
        seen[task_run_id] = f"{slot}:{n}"
        return n


def fingerprint(spec: JobSpec | RunSpec | Mapping[str, Any] | None) -> str:
    """A short digest of what is started, so concurrent calls can never swap their jobs."""
    if spec is None:
        return "-"
    data = spec if isinstance(spec, Mapping) else spec.to_dict()
    blob = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _ancestry(flow_run: Any) -> tuple[list[str], str, str]:
    """Subflow-parent task-run names from the root down, the root flow run id and its flow name."""
    parent_task_run_id = getattr(flow_run, "parent_task_run_id", None)
    if not parent_task_run_id:
        return [], str(flow_run.id), ""
    from prefect.client.orchestration import get_client

    path: list[str] = []
    root_id, root_flow = str(flow_run.id), ""
    with get_client(sync_client=True) as client:
        for _ in range(_MAX_DEPTH):
            if not parent_task_run_id:
                break
            parent_task = client.read_task_run(parent_task_run_id)
            path.insert(0, parent_task.name)
            if parent_task.flow_run_id is None:
                break
            parent_flow = client.read_flow_run(parent_task.flow_run_id)
            root_id = str(parent_flow.id)
            root_flow = client.read_flow(parent_flow.flow_id).name  # the flow, not the run
            parent_task_run_id = parent_flow.parent_task_run_id
    return path, root_id, root_flow


def current_identity(spec: JobSpec | RunSpec | Mapping[str, Any] | None = None) -> RunIdentity | None:
    """This task run's identity, or None outside a Prefect task run."""
    from prefect.context import FlowRunContext, TaskRunContext

    task_ctx = TaskRunContext.get()
    flow_ctx = FlowRunContext.get()
    if task_ctx is None:
        return None
    task_run = task_ctx.task_run
    flow_run = flow_ctx.flow_run if flow_ctx is not None else None
    flow_name = flow_ctx.flow.name if flow_ctx is not None and flow_ctx.flow else "flow"
    flow_run_id = str(task_run.flow_run_id or (flow_run.id if flow_run else task_run.id))
    run_count = int(getattr(flow_run, "run_count", 0) or 0)
    slot = f"{task_ctx.task.name}:{fingerprint(spec)}"
    ordinal = _ordinal(flow_run_id, run_count, str(task_run.id), slot)
    path, root_id, root_flow = _ancestry(flow_run) if flow_run is not None else ([], flow_run_id, "")
    stable = "/".join([*path, f"{slot}:{ordinal}"])
    return RunIdentity(
        flow_name=flow_name,
        flow_run_id=flow_run_id,
        task_name=task_ctx.task.name,
        task_run_name=task_run.name,
        root_flow_name=root_flow or flow_name,
        root_flow_run_id=root_id,
        stable_name=stable,
    )


# --- lineage -----------------------------------------------------------------------------------


def lineage_for(
    identity: RunIdentity | None, config: DominoConfig, inputs: tuple[Any, ...] = (),
    outputs: tuple[Any, ...] = (),
) -> tuple[list[Any], dict[str, str]]:
    """Lineage observers and job environment for this task run (both empty outside a run)."""
    if identity is None:
        return [], {}
    nested = identity.root_flow_run_id != identity.flow_run_id
    info = LineageInfo(
        orchestrator="prefect",
        job_name=f"{identity.flow_name}.{identity.task_name}",
        run_key=identity.key_parts,
        parent=ParentRun(
            namespace="prefect",
            name=identity.flow_name,
            run_id=identity.flow_run_id,
            root_namespace="prefect" if nested else None,
            root_name=identity.root_flow_name if nested else None,
            root_run_id=identity.root_flow_run_id if nested else None,
        ),
        inputs=tuple(inputs),
        outputs=tuple(outputs),
    )
    try:
        return list(lineage_observers(info, config)), dict(lineage_env(info, config))
    except Exception as exc:  # lineage must never fail the job
        log.warning("Lineage is disabled for this task: %s", exc)
        return [], {}


# --- options and handles -----------------------------------------------------------------------


def poll_options(
    poll_freq: float | None = None,
    max_poll_time: float | None = None,
    retry_count: int | None = None,
    options: PollOptions | Mapping[str, Any] | None = None,
) -> PollOptions:
    """PollOptions from the task's flat arguments over an optional full ``options``."""
    base = options.to_dict() if isinstance(options, PollOptions) else dict(options or {})
    for name, value in (("poll_freq", poll_freq), ("max_poll_time", max_poll_time),
                        ("retry_count", retry_count)):
        if value is not None:
            base[name] = value
    return PollOptions.from_dict(base)


def handle_from(job: JobHandle | Mapping[str, Any] | str) -> JobHandle:
    """Accept what a start task returned, its ``to_dict()``, or a bare job id."""
    if isinstance(job, JobHandle):
        return job
    if isinstance(job, str):
        return JobHandle(job_id=job)
    return JobHandle.from_dict(dict(job))


# --- stdout → run logger -----------------------------------------------------------------------


class RunLoggerLines:
    """Observer that sends each job stdout line to the Prefect run logger (the core has already
    scrubbed secrets from it)."""

    def __init__(self, logger: Any, config: DominoConfig) -> None:
        self.logger = logger

    def on_line(self, line: LogLine) -> None:
        prefix = "" if line.stream == "stdout" else f"[{line.stream}] "
        self.logger.info("%s%s", prefix, line.text)


def run_logger(fallback: str = "domino_orchestrate.prefect") -> Any:
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(fallback)


# --- artifacts ---------------------------------------------------------------------------------


def _in_run() -> bool:
    from prefect.context import FlowRunContext, TaskRunContext

    return TaskRunContext.get() is not None or FlowRunContext.get() is not None


def _link_args(handle: JobHandle) -> dict[str, Any] | None:
    if not handle.url:
        return None
    what = "run" if handle.kind == "run" else "job"
    verb = "reattached" if handle.attached else "started"
    return {
        "link": handle.url,
        "link_text": f"Domino {what} {handle.job_id}",
        "description": f"Domino {what} {handle.job_id} {verb} in {handle.project or 'Domino'}.",
    }


def _table_args(snapshot: JobSnapshot) -> dict[str, Any]:
    row = {
        "job_id": snapshot.job_id,
        "status": snapshot.status.value,
        "duration_s": None if snapshot.duration_s is None else round(snapshot.duration_s, 3),
        "hardware_tier": snapshot.hardware_tier,
        "number": snapshot.number,
        "url": snapshot.url,
    }
    return {
        "table": [row],
        "description": f"Domino {snapshot.kind} {snapshot.job_id} ended {snapshot.status.value}.",
    }


def write_link_artifact(handle: JobHandle) -> None:
    args = _link_args(handle)
    if args is None or not _in_run():
        return
    from prefect.artifacts import LinkArtifact

    try:
        LinkArtifact(**args).create()
    except Exception as exc:
        log.warning("Could not create the link artifact for %s: %s", handle.job_id, exc)


async def awrite_link_artifact(handle: JobHandle) -> None:
    args = _link_args(handle)
    if args is None or not _in_run():
        return
    from prefect.artifacts import acreate_link_artifact

    try:
        await acreate_link_artifact(**args)
    except Exception as exc:
        log.warning("Could not create the link artifact for %s: %s", handle.job_id, exc)


def write_table_artifact(snapshot: JobSnapshot) -> None:
    if not _in_run():
        return
    from prefect.artifacts import TableArtifact

    try:
        TableArtifact(**_table_args(snapshot)).create()
    except Exception as exc:
        log.warning("Could not create the status artifact for %s: %s", snapshot.job_id, exc)


async def awrite_table_artifact(snapshot: JobSnapshot) -> None:
    if not _in_run():
        return
    from prefect.artifacts import acreate_table_artifact

    try:
        await acreate_table_artifact(**_table_args(snapshot))
    except Exception as exc:
        log.warning("Could not create the status artifact for %s: %s", snapshot.job_id, exc)


# --- waiting -----------------------------------------------------------------------------------


def _final_snapshot(exc: BaseException) -> JobSnapshot | None:
    return getattr(exc, "snapshot", None) if isinstance(exc, DominoError) else None


def wait_sync(
    client: DominoClient, handle: JobHandle, options: PollOptions, observers: list[Any],
    *, artifacts: bool = True,
) -> JobSnapshot:
    """``client.wait`` plus a table artifact. The core stops the job on a timeout, a cancellation
    or a termination signal."""
    try:
        snapshot = client.wait(handle, options, observers=observers)
    except BaseException as exc:
        final = _final_snapshot(exc)
        if artifacts and final is not None:
            write_table_artifact(final)
        raise
    if artifacts:
        write_table_artifact(snapshot)
    return snapshot


async def wait_async(
    client: AsyncDominoClient, handle: JobHandle, options: PollOptions, observers: list[Any],
    *, artifacts: bool = True,
) -> JobSnapshot:
    """Async twin of ``wait_sync``."""
    try:
        snapshot = await client.wait(handle, options, observers=observers)
    except BaseException as exc:
        final = _final_snapshot(exc)
        if artifacts and final is not None:
            await awrite_table_artifact(final)
        raise
    if artifacts:
        await awrite_table_artifact(snapshot)
    return snapshot
