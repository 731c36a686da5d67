"""What the Prefect tasks, flows and blocks share: run identity (idempotency keys and lineage),
stdout → run logger, artifacts, and the sync/async "wait, and stop the job if interrupted" helpers.

No HTTP, status strings or polling here: the core does that. This module only maps Prefect's
context onto core arguments.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
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
)
from domino_orchestrate.core.identity import ExecutionIdentity
from domino_orchestrate.core.lineage import LineageInfo, ParentRun, lineage_env, lineage_observers

if TYPE_CHECKING:
    from domino_orchestrate.core import AsyncDominoClient, DominoClient

__all__ = [
    "FlowRunWatch",
    "RunIdentity",
    "awrite_link_artifact",
    "awrite_table_artifact",
    "current_identity",
    "datasets",
    "handle_from",
    "lineage_for",
    "lineage_for_job",
    "poll_options",
    "reported",
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
    calls a given task for a given job (spec, host, project). That is the scope of core's
    ``ExecutionIdentity``; a new flow run (a deliberate rerun) has a new root id, so it starts fresh.
    """

    flow_name: str
    flow_run_id: str
    task_name: str
    task_run_name: str
    root_flow_name: str
    root_flow_run_id: str
    #: ``"<parent-task-run>/.../<task>:<ordinal>"``
    stable_name: str
    #: Flow runs above this one (subflow parents, a ``run_deployment`` caller), nearest first.
    ancestor_flow_run_ids: tuple[str, ...] = ()
    #: Which job this is (spec, host, project): ordinals count per job, so the name alone
    #: would give every mapped command the same lineage run.
    job_slot: str = ""

    @property
    def key_parts(self) -> tuple[str, ...]:
        return (self.root_flow_run_id, self.stable_name, self.job_slot)

    @property
    def execution(self) -> ExecutionIdentity:
        return ExecutionIdentity("prefect", self.key_parts)

    def idempotency_key(self, spec: JobSpec | RunSpec | Mapping[str, Any] | None,
                        config: DominoConfig) -> str:
        """Core's key: this scope plus what is started (spec) and where (host, project)."""
        return self.execution.key(spec, config)


_ordinals: dict[tuple[str, int], dict[str, int]] = {}
_ordinal_slots: dict[tuple[str, int], dict[str, int]] = {}
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
            return seen[task_run_id]
        n = counts.get(slot, 0)
        counts[slot] = n + 1
        seen[task_run_id] = n
        return n


def _ancestry(flow_run: Any) -> tuple[list[str], str, str, list[str]]:
    """Subflow-parent task-run names from the root down, the root flow run id, its flow name, and
    the ids of the flow runs above this one (nearest first)."""
    parent_task_run_id = getattr(flow_run, "parent_task_run_id", None)
    if not parent_task_run_id:
        return [], str(flow_run.id), "", []
    from prefect.client.orchestration import get_client

    path: list[str] = []
    above: list[str] = []
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
            above.append(root_id)
            root_flow = client.read_flow(parent_flow.flow_id).name  # the flow, not the run
            parent_task_run_id = parent_flow.parent_task_run_id
    return path, root_id, root_flow, above


def current_identity(spec: JobSpec | RunSpec | Mapping[str, Any] | None = None,
                     config: DominoConfig | None = None) -> RunIdentity | None:
    """This task run's identity, or None outside a Prefect task run.

    Calls are counted per job (spec, host, project): the same command mapped over two projects
    is two slots, each numbered from 0 in every attempt, so a flow-run retry finds both jobs.
    """
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
    path, root_id, root_flow, above = (
        _ancestry(flow_run) if flow_run is not None else ([], flow_run_id, "", [])
    )
    task_name = task_ctx.task.name
    scope = "/".join([*path, task_name])
    slot = ExecutionIdentity("prefect", (root_id, scope)).key(spec, config)
    ordinal = _ordinal(flow_run_id, run_count, str(task_run.id), slot)
    return RunIdentity(
        flow_name=flow_name,
        flow_run_id=flow_run_id,
        task_name=task_name,
        task_run_name=task_run.name,
        root_flow_name=root_flow or flow_name,
        root_flow_run_id=root_id,
        stable_name=f"{scope}:{ordinal}",
        ancestor_flow_run_ids=tuple(above),
        job_slot=slot,
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
        observers = list(lineage_observers(info, config))
        if observers:
            _end_parent_runs_with_their_flows(info.parent)
        return observers, dict(lineage_env(info, config))
    except Exception as exc:  # lineage must never fail the job
        log.warning("Lineage is disabled for this task: %s", exc)
        return [], {}


def datasets(inputs: Any, outputs: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """A task's ``inputs``/``outputs`` arguments as lineage Datasets (core ``parse_datasets``)."""
    from domino_orchestrate.core.lineage import parse_datasets

    return parse_datasets(inputs), parse_datasets(outputs)


def lineage_for_job(handle: JobHandle, config: DominoConfig) -> list[Any]:
    """Lineage observers for a wait whose start ran in another process (core job journal, or
    the MLflow run tagged with the job id); empty when lineage is off. Never raises."""
    from domino_orchestrate.core.lineage import lineage_observers_for_job

    return list(lineage_observers_for_job(handle.job_id, config))


#: The lineage parent of each flow run that started a Domino job here (for its end hook).
_parents: dict[str, ParentRun] = {}
_parents_lock = threading.Lock()


def _end_parent_runs_with_their_flows(parent: ParentRun | None) -> None:
    """Let this flow run and the flow runs around it end their lineage runs.

    The parent run's START goes out with its first Domino job (core); its COMPLETE/FAIL/ABORT
    comes from Prefect's flow-run state hooks, added here (once per flow object) to the running
    flow and to every flow above it in this process (a subflow's root is a lineage parent too).
    """
    from prefect.context import FlowRunContext

    if parent is None:
        return
    with _parents_lock:
        _parents.setdefault(str(parent.run_id), parent)
        if parent.root_run_id and parent.root_name:
            _parents.setdefault(str(parent.root_run_id), ParentRun(
                parent.root_namespace or parent.namespace, parent.root_name, parent.root_run_id))
        while len(_parents) > _MAX_ATTEMPTS:
            _parents.pop(next(iter(_parents)))
    ctx: Any = FlowRunContext.get()
    for _ in range(_MAX_DEPTH):
        if not isinstance(ctx, FlowRunContext) or ctx.flow is None:
            break
        flow = ctx.flow
        for hooks in (flow.on_completion_hooks, flow.on_failure_hooks,
                      flow.on_cancellation_hooks, flow.on_crashed_hooks):
            if isinstance(hooks, list) and _flow_run_ended not in hooks:
                hooks.append(_flow_run_ended)
        token = getattr(ctx, "_token", None)  # the context this one was entered over
        ctx = getattr(token, "old_value", None)


def _flow_run_ended(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect flow-run state hook: the flow run's lineage COMPLETE / FAIL / ABORT (sent only
    when its START went out, i.e. it ran Domino jobs; once)."""
    from domino_orchestrate.core.lineage import finish_parent_run

    with _parents_lock:
        parent = _parents.get(str(flow_run.id))
    if parent is None:
        parent = ParentRun("prefect", str(flow.name), str(flow_run.id))
    if state.is_completed():
        outcome, error = "COMPLETE", None
    elif state.is_cancelled() or state.is_cancelling():
        outcome, error = "ABORT", state.message
    else:  # failed or crashed
        outcome, error = "FAIL", state.message
    finish_parent_run(parent, outcome, orchestrator="prefect", error=error or None)


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
    """Observer that sends the job's stdout to the Prefect run logger (the core has already
    scrubbed secrets from it): line by line, or one call per stream when a fetch brings many
    lines (the core's ``LineBatcher``), so logging grows with polls, not lines."""

    def __init__(self, logger: Any, config: DominoConfig) -> None:
        from domino_orchestrate.core.observe import LineBatcher

        self.logger = logger
        self._batch = LineBatcher(self._emit)

    def _emit(self, stream: str, text: str) -> None:
        prefix = "" if stream == "stdout" else f"[{stream}] "
        self.logger.info("%s%s", prefix, text)

    def on_line(self, line: LogLine) -> None:
        self._batch.on_line(line)

    def on_fetched(self) -> None:
        self._batch.on_fetched()

    def on_finished(self, snapshot: Any, error: Any) -> None:
        self._batch.on_fetched()

    def on_notice(self, level: int, message: str) -> None:
        # A stop and its confirmation belong in the flow-run logs, not only the worker console.
        self.logger.log(level, "%s", message)


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
    """In a Prefect task or flow run, a link artifact to the started (or reattached) job; a
    failure to create it is logged, never raised."""
    args = _link_args(handle)
    if args is None or not _in_run():
        return
    from prefect.artifacts import LinkArtifact

    try:
        LinkArtifact(**args).create()
    except Exception as exc:
        log.warning("Could not create the link artifact for %s: %s", handle.job_id, exc)


async def awrite_link_artifact(handle: JobHandle) -> None:
    """``write_link_artifact`` for async tasks and flows."""
    args = _link_args(handle)
    if args is None or not _in_run():
        return
    from prefect.artifacts import acreate_link_artifact

    try:
        await acreate_link_artifact(**args)
    except Exception as exc:
        log.warning("Could not create the link artifact for %s: %s", handle.job_id, exc)


def write_table_artifact(snapshot: JobSnapshot) -> None:
    """In a Prefect task or flow run, a table artifact with the job's final status; a failure
    to create it is logged, never raised."""
    if not _in_run():
        return
    from prefect.artifacts import TableArtifact

    try:
        TableArtifact(**_table_args(snapshot)).create()
    except Exception as exc:
        log.warning("Could not create the status artifact for %s: %s", snapshot.job_id, exc)


async def awrite_table_artifact(snapshot: JobSnapshot) -> None:
    """``write_table_artifact`` for async tasks and flows."""
    if not _in_run():
        return
    from prefect.artifacts import acreate_table_artifact

    try:
        await acreate_table_artifact(**_table_args(snapshot))
    except Exception as exc:
        log.warning("Could not create the status artifact for %s: %s", snapshot.job_id, exc)


# --- what the job reported (Pipes messages on its stdout, core/messages.py) --------------------


def reported(job_id: str) -> dict[str, Any]:
    """``{"messages": report, "result": …}`` for a task's result when the job reported anything
    (the process's collector of that job, so a retry that reattached reports it all); else {}."""
    from domino_orchestrate.core.messages import MessageCollector

    collector = MessageCollector.for_job(job_id)
    if collector.empty:
        return {}
    return {"messages": collector.report(), "result": collector.result}


def _collector(handle: JobHandle, observers: list[Any]) -> tuple[Any, tuple[int, int, int]]:
    """The job's collector, added to ``observers`` (the process-wide ledger: a retry in this
    process does not apply a message twice), and how much it held before this wait."""
    from domino_orchestrate.core.messages import MessageCollector

    collector = MessageCollector.for_job(handle.job_id)
    observers.append(collector)
    return collector, (len(collector.materializations), len(collector.checks),
                       len(collector.custom_messages))


def _message_artifacts(job_id: str, collector: Any, since: tuple[int, int, int]
                       ) -> list[tuple[str, dict[str, Any]]]:
    """A table (materializations and check results) and a markdown summary of what the job
    reported during this wait: nothing already shown by an earlier attempt."""
    import json

    mats = collector.materializations[since[0]:]
    checks = collector.checks[since[1]:]
    custom = collector.custom_messages[since[2]:]
    made: list[tuple[str, dict[str, Any]]] = []
    rows = [{"kind": "materialization", "asset_key": m["asset_key"], "check": None,
             "passed": None, "metadata": json.dumps(m["metadata"], default=str)} for m in mats]
    rows += [{"kind": "check", "asset_key": c["asset_key"], "check": c["check_name"],
              "passed": c["passed"], "metadata": json.dumps(c["metadata"], default=str)}
             for c in checks]
    if rows:
        made.append(("table", {"table": rows,
                               "description": f"What Domino job {job_id} reported."}))
    if rows or custom:
        lines = [f"# Domino job {job_id} reported", ""]
        lines += [f"- materialized **{m['asset_key']}**: `{json.dumps(m['metadata'], default=str)}`"
                  for m in mats]
        lines += [f"- check **{c['check_name']}** on {c['asset_key']}: "
                  f"{'passed' if c['passed'] else '**failed**'}" for c in checks]
        lines += [f"- message: `{json.dumps(payload, default=str)[:2000]}`" for payload in custom]
        made.append(("markdown", {"markdown": "\n".join(lines),
                                  "description": f"What Domino job {job_id} reported."}))
    return made


def write_message_artifacts(job_id: str, collector: Any, since: tuple[int, int, int]) -> None:
    if not _in_run():
        return
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    for kind, args in _message_artifacts(job_id, collector, since):
        try:
            (create_table_artifact if kind == "table" else create_markdown_artifact)(**args)
        except Exception as exc:
            log.warning("Could not create the %s artifact for %s: %s", kind, job_id, exc)


async def awrite_message_artifacts(job_id: str, collector: Any,
                                   since: tuple[int, int, int]) -> None:
    if not _in_run():
        return
    from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

    for kind, args in _message_artifacts(job_id, collector, since):
        try:
            await (acreate_table_artifact if kind == "table" else acreate_markdown_artifact)(**args)
        except Exception as exc:
            log.warning("Could not create the %s artifact for %s: %s", kind, job_id, exc)


# --- waiting -----------------------------------------------------------------------------------


def _final_snapshot(exc: BaseException) -> JobSnapshot | None:
    return getattr(exc, "snapshot", None) if isinstance(exc, DominoError) else None


def wait_sync(
    client: DominoClient, handle: JobHandle, options: PollOptions, observers: list[Any],
    *, artifacts: bool = True,
) -> JobSnapshot:
    """``client.wait`` plus a table artifact, and artifacts of what the job reported. The core
    stops the job on a timeout, a cancellation or a termination signal."""
    observers = list(observers)
    collector, since = _collector(handle, observers)
    try:
        with _Watching(handle, client.config, options, observers):
            snapshot = client.wait(handle, options, observers=observers)
    except BaseException as exc:
        final = _final_snapshot(exc)
        if artifacts and final is not None:
            write_message_artifacts(handle.job_id, collector, since)
            write_table_artifact(final)
        raise
    if artifacts:
        write_message_artifacts(handle.job_id, collector, since)
        write_table_artifact(snapshot)
    return snapshot


async def wait_async(
    client: AsyncDominoClient, handle: JobHandle, options: PollOptions, observers: list[Any],
    *, artifacts: bool = True,
) -> JobSnapshot:
    """Async twin of ``wait_sync``."""
    observers = list(observers)
    collector, since = _collector(handle, observers)
    try:
        with _Watching(handle, client.config, options, observers):
            snapshot = await client.wait(handle, options, observers=observers)
    except BaseException as exc:
        final = _final_snapshot(exc)
        if artifacts and final is not None:
            await awrite_message_artifacts(handle.job_id, collector, since)
            await awrite_table_artifact(final)
        raise
    if artifacts:
        await awrite_message_artifacts(handle.job_id, collector, since)
        await awrite_table_artifact(snapshot)
    return snapshot


# --- jobs of a flow run that ends while they are being waited for ------------------------------

#: Seconds between two reads of the states of the flow runs whose jobs are being waited for.
CANCEL_CHECK_INTERVAL = 1.0
#: Seconds a flow run may stay Cancelling before its jobs are stopped from here. The worker's
#: SIGTERM normally ends the flow's main thread first (so the run ends Cancelled, not failed by a
#: stopped job); this bounds the wait when it never comes (a dead worker, a process-pool worker).
CANCELLING_GRACE = 5.0

_ENDED_TYPES = frozenset({"CANCELLED", "CRASHED", "FAILED"})
_CANCELLING_TYPES = frozenset({"CANCELLING", "CANCELLED"})


@dataclass(eq=False)
class _Watched:
    handle: JobHandle
    config: DominoConfig
    stop_timeout: float
    notify: Any  # core Observers holding the run logger
    flow_run_id: str
    #: The flow run as its context holds it (its parent link), or None.
    flow_run: Any
    #: The flow's ``timeout_seconds`` (None: no timeout).
    flow_timeout: float | None = None
    #: Set by Prefect's thread-pool task runner once the flow body has exited (cancel, timeout).
    runner_cancelled: threading.Event | None = None
    #: The watch's thread stopping this job, once it decided to (see ``FlowRunWatch.unregister``).
    stopping: threading.Thread | None = None


class FlowRunWatch:
    """Stops the Domino jobs of a flow run that is cancelled, times out or crashes while they are
    waited for, whichever thread, event loop or process does the waiting.

    Prefect interrupts only the flow's main thread (SIGTERM → ``TerminationSignal``, or the flow's
    ``timeout_seconds``). Waits in ``.submit()``/``.map()`` worker threads, process-pool workers
    or another event loop never see that: their jobs ran on unwatched and the worker had to
    SIGKILL the process 30 s later. So every wait registers here, and one daemon thread per process
    reads the state of the flow runs concerned (one API call per flow run per second) and stops
    the jobs of a flow run that ended Cancelled/Crashed/Failed (incl. TimedOut), or that has been
    Cancelling — itself or a flow run above it — for ``CANCELLING_GRACE`` seconds. The waiting
    task then sees its job Stopped and fails as usual; the stop and its confirmation are logged
    to the flow run's logs.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: set[_Watched] = set()
        self._thread: threading.Thread | None = None
        self._cancelling_since: dict[str, float] = {}

    def register(self, entry: _Watched) -> None:
        """Watch ``entry``'s flow run (and the runs above it) until ``unregister``; starts the
        watcher thread if none is running."""
        import contextvars

        with self._lock:
            self._entries.add(entry)
            if self._thread is None or not self._thread.is_alive():
                # The Prefect settings (API URL, test harness) live in context variables.
                context = contextvars.copy_context()
                self._thread = threading.Thread(
                    target=context.run, args=(self._loop,), name="domino-flow-run-watch",
                    daemon=True,
                )
                self._thread.start()

    def unregister(self, entry: _Watched) -> None:
        """Stop watching ``entry`` (its wait ended). If the watch is stopping its job, wait (up
        to the stop timeout) until the stop is confirmed and logged: the waiting task may see
        the job Stopped first, and its flow run may then end, or its process exit, before the
        confirmation reaches the flow run's logs."""
        with self._lock:
            self._entries.discard(entry)
            stopping = entry.stopping
        if stopping is not None and stopping is not threading.current_thread():
            stopping.join(entry.stop_timeout + 5.0)

    def _snapshot(self) -> list[_Watched]:
        with self._lock:
            return list(self._entries)

    def _loop(self) -> None:
        import time

        from prefect.client.orchestration import get_client

        idle_since: float | None = None
        with get_client(sync_client=True) as client:
            while True:
                entries = self._snapshot()
                now = time.monotonic()
                if not entries:
                    idle_since = idle_since or now
                    if now - idle_since > 30:
                        with self._lock:  # exit only if nothing registered meanwhile
                            if not self._entries:
                                self._thread = None
                                return
                else:
                    idle_since = None
                    try:
                        self._check(client, entries, now)
                    except Exception:  # the watch must outlive any one bad answer
                        log.exception("Checking the flow runs of %d Domino job(s) failed",
                                      len(entries))
                time.sleep(CANCEL_CHECK_INTERVAL)

    def _check(self, client: Any, entries: list[_Watched], now: float) -> None:
        ids = {e.flow_run_id for e in entries} | {a for e in entries for a in _ancestors(e)}
        states: dict[str, Any] = {}
        for flow_run_id in ids:
            try:
                states[flow_run_id] = client.read_flow_run(flow_run_id)
            except Exception as exc:  # the API may be briefly away; the next look decides
                log.debug("Could not read flow run %s: %s", flow_run_id, exc)
        for flow_run_id, run in states.items():
            kind = run.state.type.value if run.state is not None else ""
            if kind in _CANCELLING_TYPES:
                self._cancelling_since.setdefault(flow_run_id, now)
            else:
                self._cancelling_since.pop(flow_run_id, None)
        for entry in entries:
            reason = self._reason(entry, states, now)
            if reason is None:
                continue
            with self._lock:
                if entry not in self._entries:  # its wait ended meanwhile
                    continue
                self._entries.discard(entry)
                entry.stopping = threading.Thread(
                    target=self._stop, args=(entry, reason),
                    name=f"domino-stop-{entry.handle.job_id}", daemon=True)
                entry.stopping.start()

    def _reason(self, entry: _Watched, states: dict[str, Any], now: float) -> str | None:
        own = states.get(entry.flow_run_id)
        state = own.state if own is not None else None
        name = own.name if own is not None else entry.flow_run_id
        limit = f" after {entry.flow_timeout:g} s" if entry.flow_timeout else ""
        timed_out = f"flow run {name!r} timed out{limit} (the flow's timeout_seconds)"
        if state is not None and state.type.value in _ENDED_TYPES:
            return timed_out if state.name == "TimedOut" else f"flow run {name!r} is {state.name}"
        if state is not None and state.type.value == "RUNNING" and entry.flow_timeout:
            # Prefect's flow timeout fires in the main thread only; the engine may wait for the
            # worker threads before it records TimedOut. Its clock starts with this attempt.
            elapsed = (datetime.now(timezone.utc) - state.timestamp).total_seconds()
            if elapsed > entry.flow_timeout + CANCEL_CHECK_INTERVAL:
                return timed_out
        # The runner marks a flow run Cancelled only once its process has exited, which waits
        # for these very threads: a flow body that has exited (the task runner cancelled its
        # tasks) or a main thread that is gone means the cancel was delivered here.
        delivered = not threading.main_thread().is_alive() or bool(
            entry.runner_cancelled is not None and entry.runner_cancelled.is_set())
        for flow_run_id in (entry.flow_run_id, *_ancestors(entry)):
            since = self._cancelling_since.get(flow_run_id)
            if since is not None and (delivered or now - since >= CANCELLING_GRACE):
                run = states[flow_run_id]
                return f"flow run {run.name!r} is {run.state.name}"
        return None

    @staticmethod
    def _stop(entry: _Watched, reason: str) -> None:
        from domino_orchestrate.core import DominoClient

        job_id = entry.handle.job_id
        entry.notify.notice(logging.WARNING, "Interrupted (%s): stopping Domino job %s",
                            reason, job_id)
        try:
            with DominoClient(config=entry.config) as client:
                final = client.stop_job(entry.handle, timeout=entry.stop_timeout)
        except DominoError as exc:
            entry.notify.notice(logging.ERROR, "Could not confirm the stop of Domino job %s: %s",
                                job_id, exc)
            return
        status = final.raw_status if final is not None else "unknown"
        entry.notify.notice(logging.WARNING, "Domino job %s stopped (%s)", job_id, status)


flow_run_watch = FlowRunWatch()
_ancestors_by_flow_run: dict[str, tuple[str, ...]] = {}


def _runner_cancel_event() -> threading.Event | None:
    """The event Prefect's thread-pool task runner sets for this task run when the flow body
    exits. Not public API: without it a cancel is acted on after ``CANCELLING_GRACE``."""
    from prefect.context import FlowRunContext, TaskRunContext

    flow_ctx, task_ctx = FlowRunContext.get(), TaskRunContext.get()
    if flow_ctx is None or task_ctx is None:
        return None
    events = getattr(flow_ctx.task_runner, "_cancel_events", None)
    event = events.get(task_ctx.task_run.id) if isinstance(events, dict) else None
    return event if isinstance(event, threading.Event) else None


def _flow_timeout() -> float | None:
    from prefect.context import FlowRunContext

    flow_ctx = FlowRunContext.get()
    flow = flow_ctx.flow if flow_ctx is not None else None
    timeout = getattr(flow, "timeout_seconds", None)
    return float(timeout) if timeout else None


def _ancestors(entry: _Watched) -> tuple[str, ...]:
    """The flow runs above the entry's (read once per flow run, on the watch's thread)."""
    flow_run_id = entry.flow_run_id
    if flow_run_id not in _ancestors_by_flow_run:
        while len(_ancestors_by_flow_run) >= _MAX_ATTEMPTS:  # a long-lived worker forgets the oldest
            _ancestors_by_flow_run.pop(next(iter(_ancestors_by_flow_run)))
        above: tuple[str, ...] = ()
        if entry.flow_run is not None and str(entry.flow_run.id) == flow_run_id:
            try:
                above = tuple(_ancestry(entry.flow_run)[3])
            except Exception as exc:  # only a lookup: the flow run itself is still watched
                log.debug("Could not read the flow runs above %s: %s", flow_run_id, exc)
        _ancestors_by_flow_run[flow_run_id] = above
    return _ancestors_by_flow_run[flow_run_id]


def _run_scope() -> tuple[str, Any] | None:
    """The id of the flow run this code runs in and that flow run (None outside a flow run).

    No I/O: this runs in the waiting thread, where an interrupt must land inside the core's wait.
    """
    from prefect.context import FlowRunContext, TaskRunContext

    flow_ctx = FlowRunContext.get()
    task_ctx = TaskRunContext.get()
    flow_run = flow_ctx.flow_run if flow_ctx is not None else None
    flow_run_id = (
        str(task_ctx.task_run.flow_run_id) if task_ctx is not None and task_ctx.task_run.flow_run_id
        else (str(flow_run.id) if flow_run is not None else None)
    )
    if flow_run_id is None:
        return None
    return flow_run_id, flow_run


class _Watching:
    """Context manager: the wait's job is stopped if its flow run ends while it runs."""

    def __init__(self, handle: JobHandle, config: DominoConfig, options: PollOptions,
                 observers: list[Any]) -> None:
        self.entry: _Watched | None = None
        if not options.stop_on_interrupt:
            return
        try:
            scope = _run_scope()
        except Exception as exc:
            log.debug("Not watching the flow run of %s: %s", handle.job_id, exc)
            scope = None
        if scope is None:
            return
        from domino_orchestrate.core.observe import Observers

        loggers = [o for o in observers if isinstance(o, RunLoggerLines)]
        self.entry = _Watched(handle, config, options.stop_timeout, Observers(loggers), *scope,
                              flow_timeout=_flow_timeout(), runner_cancelled=_runner_cancel_event())

    def __enter__(self) -> None:
        if self.entry is not None:
            flow_run_watch.register(self.entry)

    def __exit__(self, *exc: object) -> None:
        if self.entry is not None:
            flow_run_watch.unregister(self.entry)
