"""Prefect tasks: start, wait for and stop Domino jobs (v4) and runs (v1).

Each task follows Prefect's ``async_dispatch`` pattern: ``start_domino_job``,
``wait_for_domino_job``, ``stop_domino_job`` and ``start_domino_run`` run and return their result
when called from a ``def`` flow or task, and return a coroutine (their ``astart_domino_job``,
``await_for_domino_job``, ``astop_domino_job``, ``astart_domino_run`` form) when called from an
``async def`` one: ``await start_domino_job(...)``. The old ``*_async`` names still work, with a
``DeprecationWarning``.

Behaviour shared by all of them:

* **Retry-safe start.** Without an explicit ``idempotency_key`` the key is core's
  ``ExecutionIdentity``: the task run's place in the flow (root flow run id, subflow path, task
  name, call order per job) plus what is started and where (spec, host, project). It survives
  task retries and flow-run retries, so a retry reattaches to a running or succeeded job; a new
  flow run (a deliberate rerun) starts fresh.
* **Live logs.** Each stdout line of the job goes to ``get_run_logger()`` as it is produced.
* **Artifacts.** A link artifact to the job's Domino page at start; a table artifact with the
  final status, duration and hardware tier at the end (also when the job failed).
* **Failures fail the task.** Failed, Error and Stopped raise ``JobFailedError`` whose message
  holds the status and the last lines of stdout.
* **Kill-safe.** Cancellation, termination, the task's ``timeout_seconds`` and ``max_poll_time``
  stop the Domino job before the task ends — also when the wait runs in a ``.submit()``/``.map()``
  thread, a process-pool worker or an async gather: a flow run that is cancelled, times out
  (the flow's ``timeout_seconds``) or crashes has its jobs stopped (``_common.FlowRunWatch``).
  The stop and its confirmation go to the flow run's logs.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias, TypeVar

from prefect import Task, task
from prefect.cache_policies import NO_CACHE

from domino_orchestrate.core import JobHandle, JobSnapshot, JobSpec, PollOptions, RunSpec
from domino_orchestrate.core.command import with_env_prefix

from . import _common
from .credentials import DominoCredentials

__all__ = [
    "JOB_FIELDS",
    "AsyncDispatch",
    "DispatchingTask",
    "astart_domino_job",
    "astart_domino_run",
    "astop_domino_job",
    "async_dispatch",
    "await_for_domino_job",
    "in_async_context",
    "start_domino_job",
    "start_domino_run",
    "stop_domino_job",
    "wait_for_domino_job",
]

# Start tasks are never answered from Prefect's result cache: with results persisted, a flow-run
# retry would get attempt 1's handle even for a job that failed. The identity rule decides.

Credentials: TypeAlias = "DominoCredentials | str"
#: Lineage datasets the job reads/writes: ``"namespace:name"`` or URI strings (core
#: ``parse_dataset``: OpenLineage's naming spec), ``Dataset``s or
#: ``{"namespace", "name"}`` dicts (as Airflow inlets/outlets and Dagster asset keys).
Datasets: TypeAlias = "Sequence[Any] | None"
JobRef: TypeAlias = "JobHandle | Mapping[str, Any] | str"

#: Lineage observers of jobs started in this process, so the wait task reports to the same run.
_observers_by_job: dict[str, list[Any]] = {}
_observers_lock = threading.Lock()


def _credentials(credentials: Credentials) -> DominoCredentials:
    if isinstance(credentials, DominoCredentials):
        return credentials
    return DominoCredentials.load(credentials, _sync=True)  # type: ignore[call-arg,return-value]


async def _acredentials(credentials: Credentials) -> DominoCredentials:
    if isinstance(credentials, DominoCredentials):
        return credentials
    return await DominoCredentials.aload(credentials)


def build_job_spec(command: str | None, spec: JobSpec | Mapping[str, Any] | None,
                   fields: Mapping[str, Any]) -> JobSpec:
    """A JobSpec from a command and flat fields, or from a JobSpec / its dict."""
    given = {k: v for k, v in fields.items() if v is not None}
    if spec is not None:
        base = spec.to_dict() if isinstance(spec, JobSpec) else dict(spec)
        base.update(given)
        if command:
            base["command"] = command
        return JobSpec.from_dict(base)
    if not command:
        raise ValueError("Pass the command to run (or a JobSpec as spec=...)")
    return JobSpec(command=command, **given)


def build_run_spec(command: Sequence[str] | str | None, spec: RunSpec | Mapping[str, Any] | None,
                   fields: Mapping[str, Any]) -> RunSpec:
    given = {k: v for k, v in fields.items() if v is not None}
    if spec is not None:
        base = spec.to_dict() if isinstance(spec, RunSpec) else dict(spec)
        base.update(given)
        if command:
            base["command"] = [command] if isinstance(command, str) else list(command)
        return RunSpec.from_dict(base)
    if not command:
        raise ValueError("Pass the command to run (or a RunSpec as spec=...)")
    parts = (command,) if isinstance(command, str) else tuple(command)
    return RunSpec(command=parts, **given)


class _Start:
    """Everything one start needs, prepared from the task's context (no I/O but lineage)."""

    def __init__(self, creds: DominoCredentials, spec: JobSpec | RunSpec, project: str | None,
                 key: str | None, inputs: Datasets = None, outputs: Datasets = None) -> None:
        self.config = creds.get_config(project)
        identity = _common.current_identity(spec, self.config)
        self.key = key or (identity.idempotency_key(spec, self.config) if identity else None)
        self.observers, env = _common.lineage_for(identity, self.config,
                                                  *_common.datasets(inputs, outputs))
        if isinstance(spec, JobSpec) and env:
            spec = JobSpec.from_dict({**spec.to_dict(), "command": with_env_prefix(spec.command, env)})
        self.spec = spec
        self.logger = _common.run_logger()

    @property
    def job(self) -> JobSpec:
        assert isinstance(self.spec, JobSpec)
        return self.spec

    @property
    def run(self) -> RunSpec:
        assert isinstance(self.spec, RunSpec)
        return self.spec

    def started(self, handle: JobHandle) -> JobHandle:
        if self.observers:
            with _observers_lock:
                _observers_by_job[handle.job_id] = self.observers
        verb = "Reattached to" if handle.attached else "Started"
        self.logger.info("%s Domino %s %s: %s", verb, handle.kind, handle.job_id,
                         handle.url or "(no URL)")
        return handle


def _wait_observers(handle: JobHandle, logger: Any, creds_config: Any) -> list[Any]:
    with _observers_lock:
        lineage = _observers_by_job.get(handle.job_id)
    if lineage is None:  # started in another process: the same lineage run, found by job id
        lineage = _common.lineage_for_job(handle, creds_config)
    return [*list(lineage), _common.RunLoggerLines(logger, creds_config)]


def _forget(handle: JobHandle) -> None:
    with _observers_lock:
        _observers_by_job.pop(handle.job_id, None)


def _log_final(logger: Any, snapshot: JobSnapshot) -> dict[str, Any]:
    summary = snapshot.summary()
    logger.info("Domino %s %s ended %s (duration %s s, hardware tier %s)", snapshot.kind,
                snapshot.job_id, snapshot.status.value, summary["duration_s"],
                snapshot.hardware_tier)
    # What the job reported from inside (Pipes messages): "messages" and its "result".
    summary.update(_common.reported(snapshot.job_id))
    return summary


# --- sync callers get sync, async callers get the coroutine -----------------------------------


def in_async_context() -> bool:
    """Prefect's ``async_dispatch`` rule: inside a flow or task run, whether that run is async;
    outside any run, whether an event loop is running in this thread."""
    from prefect.context import get_run_context
    from prefect.exceptions import MissingContextError

    try:
        ctx = get_run_context()
    except MissingContextError:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True
    parent = getattr(ctx, "task", None) or getattr(ctx, "flow", None)
    return bool(getattr(parent, "isasync", True))


def _runs_async(kwargs: dict[str, Any]) -> bool:
    """Whether this call takes the async side: ``_sync=`` (popped) forces one side, else
    ``in_async_context``."""
    force_sync = kwargs.pop("_sync", None)
    return not force_sync if force_sync is not None else in_async_context()


def async_dispatch(async_impl: Callable[..., Any]) -> Callable[[Callable[..., Any]], Any]:
    """Prefect's ``async_dispatch`` decorator for functions and methods (ours: Prefect's is
    private): the decorated sync function runs in sync code; in async code the call returns
    ``async_impl``'s coroutine, to be awaited. ``_sync=True``/``False`` forces one side."""

    def decorator(sync_fn: Callable[..., Any]) -> Any:
        @functools.wraps(sync_fn)
        def dispatch(*args: Any, **kwargs: Any) -> Any:
            return (async_impl if _runs_async(kwargs) else sync_fn)(*args, **kwargs)

        dispatch.aio = async_impl  # type: ignore[attr-defined]  # as Prefect's has
        return dispatch

    return decorator


_Dispatching = TypeVar("_Dispatching", bound="AsyncDispatch")


class AsyncDispatch:
    """Prefect's ``async_dispatch`` for a sync task or flow with an async twin (``.aio``): called
    from a ``def`` flow or task it runs and returns its result; called from an ``async def`` one
    (or with an event loop running) it returns the twin's coroutine, to be awaited.
    ``_sync=True``/``False`` forces one side; ``with_options`` applies to both."""

    aio: Any

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _runs_async(kwargs):
            return self.aio(*args, **kwargs)
        return super().__call__(*args, **kwargs)  # type: ignore[misc]

    def with_options(self, **options: Any) -> Any:
        """A copy with Prefect's ``options`` applied to both the sync side and the ``aio`` twin,
        still dispatching as this one does."""
        plain = super().with_options(**options)  # type: ignore[misc]
        twin = object.__new__(type(self))  # Prefect rebuilds a plain Task / Flow: keep ours
        twin.__dict__.update(plain.__dict__)
        twin.aio = self.aio.with_options(**options)
        return twin

    @classmethod
    def twin_of(cls: type[_Dispatching], aio: Any,
                **options: Any) -> Callable[[Callable[..., Any]], _Dispatching]:
        """Decorator: the sync function as this class (with Prefect's task or flow ``options``)
        whose async twin is ``aio``."""

        def make(fn: Callable[..., Any]) -> _Dispatching:
            made = cls(fn=fn, **options)  # type: ignore[call-arg]  # (a Task or Flow subclass)
            made.aio = aio
            return made

        return make


class DispatchingTask(AsyncDispatch, Task[..., Any]):  # type: ignore[misc]
    """A sync Prefect task with an async twin (``AsyncDispatch``). ``.submit``/``.map`` run the
    sync task in the task runner's threads."""


_START_JOB: dict[str, Any] = {"name": "start_domino_job", "cache_policy": NO_CACHE,
              "description": "Start a Domino job (v4), once per idempotency key."}
_START_RUN: dict[str, Any] = {"name": "start_domino_run", "cache_policy": NO_CACHE,
              "description": "Start a Domino run (v1), once per idempotency key."}
_WAIT: dict[str, Any] = {"name": "wait_for_domino_job",
         "description": "Follow a Domino job or run to its end, streaming its stdout."}
_STOP: dict[str, Any] = {"name": "stop_domino_job", "description": "Stop a Domino job and confirm it stopped."}


# --- start -------------------------------------------------------------------------------------


def _job_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``JobSpec`` fields among a start task's arguments."""
    return {name: values[name] for name in JOB_FIELDS}


#: Every ``job_start`` field (domino-api.md §2.3) a start task takes flat, as python-domino does.
JOB_FIELDS = ("title", "hardware_tier_name", "hardware_tier_id", "environment_id", "commit_id",
              "branch", "main_repo_git_ref", "on_demand_spark_cluster_properties",
              "compute_cluster_properties", "external_volume_mounts")
_RUN_FIELDS = ("is_direct", "commit_id", "title", "tier", "publish_api_endpoint")


@task(**_START_JOB)
async def astart_domino_job(
    credentials: Credentials,
    command: str | None = None,
    *,
    spec: JobSpec | Mapping[str, Any] | None = None,
    title: str | None = None,
    hardware_tier_name: str | None = None,
    hardware_tier_id: str | None = None,
    environment_id: str | None = None,
    commit_id: str | None = None,
    branch: str | None = None,
    main_repo_git_ref: dict[str, str] | None = None,
    on_demand_spark_cluster_properties: dict[str, Any] | None = None,
    compute_cluster_properties: dict[str, Any] | None = None,
    external_volume_mounts: list[str] | None = None,
    project: str | None = None,
    idempotency_key: str | None = None,
    inputs: Datasets = None,
    outputs: Datasets = None,
) -> JobHandle:
    """Async form of ``start_domino_job`` (which dispatches here from async code)."""
    creds = await _acredentials(credentials)
    start = _Start(creds, build_job_spec(command, spec, _job_fields(locals())), project,
                   idempotency_key, inputs, outputs)
    async with creds.get_async_client(project) as client:
        handle = await client.start_job(start.job, idempotency_key=start.key,
                                        observers=start.observers)
    await _common.awrite_link_artifact(handle)
    return start.started(handle)


@DispatchingTask.twin_of(astart_domino_job, **_START_JOB)
def start_domino_job(
    credentials: Credentials,
    command: str | None = None,
    *,
    spec: JobSpec | Mapping[str, Any] | None = None,
    title: str | None = None,
    hardware_tier_name: str | None = None,
    hardware_tier_id: str | None = None,
    environment_id: str | None = None,
    commit_id: str | None = None,
    branch: str | None = None,
    main_repo_git_ref: dict[str, str] | None = None,
    on_demand_spark_cluster_properties: dict[str, Any] | None = None,
    compute_cluster_properties: dict[str, Any] | None = None,
    external_volume_mounts: list[str] | None = None,
    project: str | None = None,
    idempotency_key: str | None = None,
    inputs: Datasets = None,
    outputs: Datasets = None,
) -> JobHandle:
    """Start ``command`` as a Domino job and return its handle (reattaches on retries).

    Every ``job_start`` field is a flat argument (``title``, ``hardware_tier_name`` or
    ``hardware_tier_id``, ``environment_id``, ``commit_id``/``branch``/``main_repo_git_ref``,
    ``on_demand_spark_cluster_properties``, ``compute_cluster_properties``,
    ``external_volume_mounts``); they override the same fields of ``spec``. From async code this
    returns ``astart_domino_job``'s coroutine: ``await start_domino_job(...)``.
    """
    creds = _credentials(credentials)
    start = _Start(creds, build_job_spec(command, spec, _job_fields(locals())), project,
                   idempotency_key, inputs, outputs)
    with creds.get_client(project) as client:
        handle = client.start_job(start.job, idempotency_key=start.key, observers=start.observers)
    _common.write_link_artifact(handle)
    return start.started(handle)


@task(**_START_RUN)
async def astart_domino_run(
    credentials: Credentials,
    command: Sequence[str] | str | None = None,
    *,
    spec: RunSpec | Mapping[str, Any] | None = None,
    is_direct: bool | None = None,
    commit_id: str | None = None,
    title: str | None = None,
    tier: str | None = None,
    publish_api_endpoint: bool | None = None,
    project: str | None = None,
    idempotency_key: str | None = None,
    inputs: Datasets = None,
    outputs: Datasets = None,
) -> JobHandle:
    """Async form of ``start_domino_run``."""
    creds = await _acredentials(credentials)
    values = locals()
    run = build_run_spec(command, spec, {name: values[name] for name in _RUN_FIELDS})
    start = _Start(creds, run, project, idempotency_key, inputs, outputs)
    async with creds.get_async_client(project) as client:
        handle = await client.start_run(start.run, idempotency_key=start.key,
                                        observers=start.observers)
    await _common.awrite_link_artifact(handle)
    return start.started(handle)


@DispatchingTask.twin_of(astart_domino_run, **_START_RUN)
def start_domino_run(
    credentials: Credentials,
    command: Sequence[str] | str | None = None,
    *,
    spec: RunSpec | Mapping[str, Any] | None = None,
    is_direct: bool | None = None,
    commit_id: str | None = None,
    title: str | None = None,
    tier: str | None = None,
    publish_api_endpoint: bool | None = None,
    project: str | None = None,
    idempotency_key: str | None = None,
    inputs: Datasets = None,
    outputs: Datasets = None,
) -> JobHandle:
    """Start a v1 run (``command`` is the file and its arguments; python-domino's
    ``runs_start`` fields flat); follow it with ``wait_for_domino_job``."""
    creds = _credentials(credentials)
    values = locals()
    run = build_run_spec(command, spec, {name: values[name] for name in _RUN_FIELDS})
    start = _Start(creds, run, project, idempotency_key, inputs, outputs)
    with creds.get_client(project) as client:
        handle = client.start_run(start.run, idempotency_key=start.key, observers=start.observers)
    _common.write_link_artifact(handle)
    return start.started(handle)


# --- wait --------------------------------------------------------------------------------------


@task(**_WAIT)
async def await_for_domino_job(
    credentials: Credentials,
    job: JobRef,
    *,
    poll_freq: float | None = None,
    max_poll_time: float | None = None,
    retry_count: int | None = None,
    poll_options: PollOptions | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Async form of ``wait_for_domino_job``."""
    creds = await _acredentials(credentials)
    handle = _common.handle_from(job)
    options = _common.poll_options(poll_freq, max_poll_time, retry_count, poll_options)
    logger = _common.run_logger()
    async with creds.get_async_client(handle.project) as client:
        observers = _wait_observers(handle, logger, client.config)
        try:
            snapshot = await _common.wait_async(client, handle, options, observers)
        finally:
            _forget(handle)
    return _log_final(logger, snapshot)


@DispatchingTask.twin_of(await_for_domino_job, **_WAIT)
def wait_for_domino_job(
    credentials: Credentials,
    job: JobRef,
    *,
    poll_freq: float | None = None,
    max_poll_time: float | None = None,
    retry_count: int | None = None,
    poll_options: PollOptions | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Wait for a job (or v1 run) started by ``start_domino_job``; return its final summary.

    Raises ``JobFailedError`` on Failed/Error/Stopped and ``PollTimeoutError`` after
    ``max_poll_time`` (the job is stopped first).
    """
    creds = _credentials(credentials)
    handle = _common.handle_from(job)
    options = _common.poll_options(poll_freq, max_poll_time, retry_count, poll_options)
    logger = _common.run_logger()
    with creds.get_client(handle.project) as client:
        observers = _wait_observers(handle, logger, client.config)
        try:
            snapshot = _common.wait_sync(client, handle, options, observers)
        finally:
            _forget(handle)
    return _log_final(logger, snapshot)


# --- stop --------------------------------------------------------------------------------------


@task(**_STOP)
async def astop_domino_job(
    credentials: Credentials,
    job: JobRef,
    *,
    commit_results: bool = True,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Async form of ``stop_domino_job``."""
    creds = await _acredentials(credentials)
    handle = _common.handle_from(job)
    async with creds.get_async_client(handle.project) as client:
        final = await client.stop_job(handle, commit_results=commit_results, timeout=timeout)
    assert final is not None
    return _log_final(_common.run_logger(), final)


@DispatchingTask.twin_of(astop_domino_job, **_STOP)
def stop_domino_job(
    credentials: Credentials,
    job: JobRef,
    *,
    commit_results: bool = True,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Stop a job; return its final summary once a terminal state is seen (or raise
    ``StopNotConfirmedError`` after ``timeout`` seconds)."""
    creds = _credentials(credentials)
    handle = _common.handle_from(job)
    with creds.get_client(handle.project) as client:
        final = client.stop_job(handle, commit_results=commit_results, timeout=timeout)
    assert final is not None  # wait=True always returns the terminal snapshot
    return _log_final(_common.run_logger(), final)


# --- the names before async dispatch -----------------------------------------------------------

#: Deprecated ``*_async`` twins → their ``a*`` names.
DEPRECATED_ALIASES = {
    "start_domino_job_async": "astart_domino_job",
    "start_domino_run_async": "astart_domino_run",
    "wait_for_domino_job_async": "await_for_domino_job",
    "stop_domino_job_async": "astop_domino_job",
}


def deprecated_aliases(module: str, aliases: Mapping[str, str],
                       namespace: Mapping[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` giving each old ``*_async`` name in ``aliases`` as its new name
    from ``namespace`` (the module's globals), with a ``DeprecationWarning`` saying what to call."""

    def __getattr__(name: str) -> Any:
        new = aliases.get(name)
        if new is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(
            f"{name} is deprecated: call {name.removesuffix('_async')} (it returns a coroutine "
            f"in async code) or {new}", DeprecationWarning, stacklevel=2)
        return namespace[new]

    return __getattr__


__getattr__ = deprecated_aliases(__name__, DEPRECATED_ALIASES, globals())
