"""Prefect tasks: start, wait for and stop Domino jobs (v4) and runs (v1), sync and async.

Sync tasks (``start_domino_job``, ``wait_for_domino_job``, ``stop_domino_job``, ``start_domino_run``)
are for ordinary ``def`` flows; the ``*_async`` twins are ``async def`` tasks for async flows
(Prefect 3 does not run an async task to completion when a sync flow calls it).

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

import threading
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from prefect import task
from prefect.cache_policies import NO_CACHE

from domino_orchestrate.core import JobHandle, JobSnapshot, JobSpec, PollOptions, RunSpec
from domino_orchestrate.core.command import with_env_prefix

from . import _common
from .credentials import DominoCredentials

__all__ = [
    "start_domino_job",
    "start_domino_job_async",
    "start_domino_run",
    "start_domino_run_async",
    "stop_domino_job",
    "stop_domino_job_async",
    "wait_for_domino_job",
    "wait_for_domino_job_async",
]

# Start tasks are never answered from Prefect's result cache: with results persisted, a flow-run
# retry would get attempt 1's handle even for a job that failed. The identity rule decides.

Credentials: TypeAlias = "DominoCredentials | str"
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
                 key: str | None) -> None:
        self.config = creds.get_config(project)
        identity = _common.current_identity(spec, self.config)
        self.key = key or (identity.idempotency_key(spec, self.config) if identity else None)
        self.observers, env = _common.lineage_for(identity, self.config)
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
        lineage = list(_observers_by_job.get(handle.job_id, []))
    return [*lineage, _common.RunLoggerLines(logger, creds_config)]


def _forget(handle: JobHandle) -> None:
    with _observers_lock:
        _observers_by_job.pop(handle.job_id, None)


def _log_final(logger: Any, snapshot: JobSnapshot) -> dict[str, Any]:
    summary = snapshot.summary()
    logger.info("Domino %s %s ended %s (duration %s s, hardware tier %s)", snapshot.kind,
                snapshot.job_id, snapshot.status.value, summary["duration_s"],
                snapshot.hardware_tier)
    return summary


# --- start -------------------------------------------------------------------------------------


@task(name="start_domino_job", description="Start a Domino job (v4), once per idempotency key.",
      cache_policy=NO_CACHE)
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
    project: str | None = None,
    idempotency_key: str | None = None,
) -> JobHandle:
    """Start ``command`` as a Domino job and return its handle (reattaches on retries)."""
    creds = _credentials(credentials)
    job = build_job_spec(command, spec, {
        "title": title, "hardware_tier_name": hardware_tier_name,
        "hardware_tier_id": hardware_tier_id, "environment_id": environment_id,
        "commit_id": commit_id, "branch": branch,
    })
    start = _Start(creds, job, project, idempotency_key)
    with creds.get_client(project) as client:
        handle = client.start_job(start.job, idempotency_key=start.key, observers=start.observers)
    _common.write_link_artifact(handle)
    return start.started(handle)


@task(name="start_domino_job", description="Start a Domino job (v4), once per idempotency key.",
      cache_policy=NO_CACHE)
async def start_domino_job_async(
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
    project: str | None = None,
    idempotency_key: str | None = None,
) -> JobHandle:
    """Async twin of ``start_domino_job``."""
    creds = await _acredentials(credentials)
    job = build_job_spec(command, spec, {
        "title": title, "hardware_tier_name": hardware_tier_name,
        "hardware_tier_id": hardware_tier_id, "environment_id": environment_id,
        "commit_id": commit_id, "branch": branch,
    })
    start = _Start(creds, job, project, idempotency_key)
    async with creds.get_async_client(project) as client:
        handle = await client.start_job(start.job, idempotency_key=start.key,
                                        observers=start.observers)
    await _common.awrite_link_artifact(handle)
    return start.started(handle)


@task(name="start_domino_run", description="Start a Domino run (v1), once per idempotency key.",
      cache_policy=NO_CACHE)
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
) -> JobHandle:
    """Start a v1 run (``command`` is the file and its arguments); follow it with
    ``wait_for_domino_job``."""
    creds = _credentials(credentials)
    run = build_run_spec(command, spec, {
        "is_direct": is_direct, "commit_id": commit_id, "title": title, "tier": tier,
        "publish_api_endpoint": publish_api_endpoint,
    })
    start = _Start(creds, run, project, idempotency_key)
    with creds.get_client(project) as client:
        handle = client.start_run(start.run, idempotency_key=start.key, observers=start.observers)
    _common.write_link_artifact(handle)
    return start.started(handle)


@task(name="start_domino_run", description="Start a Domino run (v1), once per idempotency key.",
      cache_policy=NO_CACHE)
async def start_domino_run_async(
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
) -> JobHandle:
    """Async twin of ``start_domino_run``."""
    creds = await _acredentials(credentials)
    run = build_run_spec(command, spec, {
        "is_direct": is_direct, "commit_id": commit_id, "title": title, "tier": tier,
        "publish_api_endpoint": publish_api_endpoint,
    })
    start = _Start(creds, run, project, idempotency_key)
    async with creds.get_async_client(project) as client:
        handle = await client.start_run(start.run, idempotency_key=start.key,
                                        observers=start.observers)
    await _common.awrite_link_artifact(handle)
    return start.started(handle)


# --- wait --------------------------------------------------------------------------------------


@task(name="wait_for_domino_job",
      description="Follow a Domino job or run to its end, streaming its stdout.")
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


@task(name="wait_for_domino_job",
      description="Follow a Domino job or run to its end, streaming its stdout.")
async def wait_for_domino_job_async(
    credentials: Credentials,
    job: JobRef,
    *,
    poll_freq: float | None = None,
    max_poll_time: float | None = None,
    retry_count: int | None = None,
    poll_options: PollOptions | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Async twin of ``wait_for_domino_job``."""
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


# --- stop --------------------------------------------------------------------------------------


@task(name="stop_domino_job", description="Stop a Domino job and confirm it stopped.")
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


@task(name="stop_domino_job", description="Stop a Domino job and confirm it stopped.")
async def stop_domino_job_async(
    credentials: Credentials,
    job: JobRef,
    *,
    commit_results: bool = True,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Async twin of ``stop_domino_job``."""
    creds = await _acredentials(credentials)
    handle = _common.handle_from(job)
    async with creds.get_async_client(handle.project) as client:
        final = await client.stop_job(handle, commit_results=commit_results, timeout=timeout)
    assert final is not None
    return _log_final(_common.run_logger(), final)
