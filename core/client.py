"""``DominoClient`` (sync, requests) and ``AsyncDominoClient`` (async, httpx): drivers only.

Both expose the same method names with the same meaning; every method builds a flow from
``flows`` and drives it. The only differences are how a request is sent and how to sleep.
An interrupt (KeyboardInterrupt, ``asyncio.CancelledError``, an orchestrator's kill signal — any
``BaseException`` that is not an ``Exception`` — or a runtime's ``TimeoutError``) during ``wait``
stops the remote job, confirms the stop within a bounded wait, and re-raises; during a start it
stops whatever that start created.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from . import api, flows
from .api import ApiRequest, Sleep
from .config import DominoConfig
from .errors import DominoError
from .flows import Context, Flow
from .models import HardwareTier, JobHandle, JobSnapshot, JobSpec, LogLine, PollOptions, RunSpec
from .observe import LineCallback, Observers
from .retry import RetryPolicy
from .stdout import parse_log
from .transport import AsyncTransport, SyncTransport

__all__ = ["AsyncDominoClient", "DominoClient", "shared_async_client"]

log = logging.getLogger("domino_orchestrate")

JobRef = str | JobHandle


def is_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` ends a wait from outside: KeyboardInterrupt, cancellation, an orchestrator's
    kill or timeout signal (all BaseExceptions), or a ``TimeoutError`` a runtime raised into it
    (the core itself never raises the builtin one)."""
    return not isinstance(exc, Exception) or isinstance(exc, TimeoutError)


def _remaining(step: ApiRequest) -> float | None:
    """The time a flow allows this request, retries included (``flows.BoundedRequest``)."""
    return step.remaining if isinstance(step, flows.BoundedRequest) else None


def _handle(ref: JobRef) -> JobHandle:
    return ref if isinstance(ref, JobHandle) else JobHandle(job_id=ref)


def _job_spec(spec: JobSpec | str, fields: dict[str, Any]) -> JobSpec:
    if isinstance(spec, JobSpec):
        return spec
    return JobSpec(command=spec, **fields)


def _run_spec(spec: RunSpec | Sequence[str] | str, fields: dict[str, Any]) -> RunSpec:
    if isinstance(spec, RunSpec):
        return spec
    command = (spec,) if isinstance(spec, str) else tuple(spec)
    return RunSpec(command=command, **fields)


class _ClientBase:
    """Configuration and the flow builders shared by both drivers."""

    def __init__(
        self,
        host: str | None = None,
        project: str | None = None,
        *,
        api_key: str | None = None,
        auth_token: str | None = None,
        domino_token_file: str | None = None,
        api_proxy: str | None = None,
        verify: bool | str | None = None,  # True, False or a CA bundle path
        max_retries: int | None = None,
        timeout: float = 30.0,
        config: DominoConfig | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.config = config or DominoConfig.resolve(
            host, project, api_key=api_key, auth_token=auth_token,
            domino_token_file=domino_token_file, api_proxy=api_proxy, verify=verify,
            max_retries=max_retries, timeout=timeout,
        )
        if config is not None and project:
            self.config = config.with_project(project)
        self._ctx = Context(self.config)
        self._retry_policy = retry_policy
        # Log streams of waits interrupted without a stop (stop_on_interrupt=False), by job id:
        # a stop decided later by the integration (Dagster) still delivers the rest of the output.
        self._interrupted: dict[str, flows.LogStream] = {}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(host={self.config.host!r}, project={self.config.project!r}, "
                f"auth={self.config.credentials.kind})")

    def job_url(self, job_id: str) -> str:
        return self.config.job_url(job_id)

    # Flow builders: the single definition of what each public method does.
    def _start(self, spec: JobSpec | RunSpec, key: str, look_first: bool,
               observers: Iterable[Any]) -> Flow:
        return flows.start_flow(self._ctx, spec, key, Observers(observers), look_first)

    def _orphans(self, spec: JobSpec | RunSpec, key: str) -> Flow:
        """Unfinished executions carrying ``key``: what an interrupted start may have left."""
        kind = "run" if isinstance(spec, RunSpec) else "job"
        found = yield from flows.find_by_key_flow(self._ctx, kind, key)
        return [self._ctx.handle(s.job_id, kind, key, attached=False)
                for s in found if not s.is_terminal]

    def _follow(self, job: JobRef, options: PollOptions | None, on_line: LineCallback | None,
                observers: Iterable[Any]) -> tuple[Flow, flows.LogStream]:
        """The wait flow and its log stream, kept so an interrupt's stop can fetch the rest."""
        handle, opts = _handle(job), options or PollOptions()
        notify = Observers(observers, on_line)
        logs = flows.LogStream(self._ctx, handle, opts, notify)
        return flows.wait_flow(self._ctx, handle, opts, notify, logs), logs

    def _interrupt_stop(self, job: JobRef, options: PollOptions, exc: BaseException,
                        observers: Iterable[Any], logs: flows.LogStream | None = None) -> Flow:
        """Stop a job whose follower was interrupted; report, never raise (the interrupt wins)."""
        logs = logs or self._interrupted.pop(_handle(job).job_id, None)
        notify = logs.observers if logs is not None else Observers(observers)
        return flows.interrupt_stop_flow(self._ctx, _handle(job), options, exc, notify, logs)

    def _stdout(self, job: JobRef, include_setup_log: bool) -> Flow:
        text, setup = yield from flows.stdout_flow(self._ctx, _handle(job).job_id)
        lines = parse_log(setup, "setup") if include_setup_log else []
        return lines + parse_log(text)

    def _list_jobs(self, **params: Any) -> Flow:
        return flows.list_jobs_flow(self._ctx, **params)

    def _list_runs(self) -> Flow:
        return flows.list_runs_flow(self._ctx)

    def _restart(self, job: JobRef, use_original_input_commit: bool) -> Flow:
        return flows.restart_flow(self._ctx, _handle(job).job_id, use_original_input_commit)

    def _project_call(self, build: Any) -> Flow:
        pid = yield from flows.project_id_flow(self._ctx)
        return (yield from flows.object_flow(build(pid)))

    def _commits(self) -> Flow:
        owner, project = self.config.owner_and_project
        return (yield from flows.list_flow(api.commits(owner, project), "a list of commits"))

    def _stop(self, job: JobRef, commit_results: bool, wait: bool, timeout: float) -> Flow:
        handle = _handle(job)
        if wait:
            return (yield from flows.stop_flow(self._ctx, handle, commit_results, timeout))
        pid = yield from flows.project_id_flow(self._ctx)
        yield api.job_stop(pid, handle.job_id, commit_results)
        return None


class DominoClient(_ClientBase):
    """Synchronous Domino client.

    >>> client = DominoClient("https://domino.example.com", "alice/churn", api_key="…")
    >>> final = client.run_job("python train.py", title="nightly", on_line=print)

    Constructor arguments (the same for ``AsyncDominoClient``, which adds ``max_connections``):

    - ``host``: Domino's URL; ``DOMINO_API_HOST`` when omitted.
    - ``project``: ``owner/name``; ``DOMINO_PROJECT`` (or ``DOMINO_PROJECT_OWNER`` and
      ``DOMINO_PROJECT_NAME``) when omitted.
    - ``api_key``: a user API key (``DOMINO_USER_API_KEY``).
    - ``auth_token``: a bearer token; wins over the token file and the API key.
    - ``domino_token_file``: a token file, re-read on every request (``DOMINO_TOKEN_FILE``).
    - ``api_proxy``: Domino's API proxy inside a workspace or job (``DOMINO_API_PROXY``).
    - ``verify``: ``True``, ``False`` or a CA bundle path (``DOMINO_VERIFY_CERTIFICATE``).
    - ``max_retries``: retries of a read request (``DOMINO_MAX_RETRIES``, default 4).
    - ``timeout``: seconds one whole HTTP request may take (30).
    - ``config``: a ready ``DominoConfig`` instead of the settings above.
    - ``retry_policy``: which failures to retry and how long to back off.

    Credentials follow python-domino's precedence: ``api_proxy``, ``auth_token``,
    ``domino_token_file``, ``api_key``, then the environment variables.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._transport = SyncTransport(self.config, self._retry_policy)

    def _drive(self, flow: Flow) -> Any:
        try:
            step = next(flow)
            while True:
                if isinstance(step, Sleep):
                    time.sleep(step.seconds)
                    step = flow.send(None)
                    continue
                try:
                    value = self._transport.send(step, remaining=_remaining(step))
                except DominoError as exc:
                    step = flow.throw(exc)
                else:
                    step = flow.send(value)
        except StopIteration as done:
            return done.value

    def close(self) -> None:
        """Close the HTTP connections (also on leaving a ``with`` block)."""
        self._transport.close()

    def __enter__(self) -> DominoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- API ---
    def version(self) -> dict[str, Any]:
        """Domino's version information (``GET /version``); a cheap connectivity check."""
        return self._drive(flows.object_flow(api.version()))

    def project_id(self) -> str:
        """The id of the configured project (looked up once by owner and name, then cached)."""
        return self._drive(flows.project_id_flow(self._ctx))

    def start_job(self, spec: JobSpec | str, *, idempotency_key: str | None = None,
                  observers: Iterable[Any] = (), **fields: Any) -> JobHandle:
        """Start a v4 job once per ``idempotency_key`` (reattach if it already runs)."""
        return self._start_once(_job_spec(spec, fields), idempotency_key, observers)

    def start_run(self, spec: RunSpec | Sequence[str] | str, *, idempotency_key: str | None = None,
                  observers: Iterable[Any] = (), **fields: Any) -> JobHandle:
        """Start a v1 run once per ``idempotency_key``."""
        return self._start_once(_run_spec(spec, fields), idempotency_key, observers)

    def _start_once(self, spec: JobSpec | RunSpec, key: str | None,
                    observers: Iterable[Any]) -> JobHandle:
        new_key = key or flows.new_key()
        try:
            return self._drive(self._start(spec, new_key, key is not None, observers))
        except BaseException as exc:
            if is_interrupt(exc):
                # Interrupted mid-start: the job may exist although its id never reached us.
                for orphan in self._drive(self._orphans(spec, new_key)):
                    self._stop_after_interrupt(orphan, PollOptions(), exc, observers)
            raise

    def get_job(self, job: JobRef) -> JobSnapshot:
        """The job's current state, as one ``JobSnapshot`` (no waiting)."""
        return self._drive(flows.get_flow(self._ctx, _handle(job)))

    def wait(self, job: JobRef, options: PollOptions | None = None, *,
             on_line: LineCallback | None = None, observers: Iterable[Any] = ()) -> JobSnapshot:
        """Follow a job to its end; stop it if this wait is interrupted or times out."""
        observers = list(observers)
        logs: flows.LogStream | None = None
        try:
            flow, logs = self._follow(job, options, on_line, observers)
            return self._drive(flow)
        except BaseException as exc:
            options = options or PollOptions()
            if is_interrupt(exc) and options.stop_on_interrupt:
                self._stop_after_interrupt(job, options, exc, observers, logs)
            elif is_interrupt(exc) and logs is not None:
                self._interrupted[logs.handle.job_id] = logs
            raise

    def run_job(self, spec: JobSpec | str, options: PollOptions | None = None, *,
                idempotency_key: str | None = None, on_line: LineCallback | None = None,
                observers: Iterable[Any] = (), **fields: Any) -> JobSnapshot:
        """Start a Domino job and wait for it to end, streaming its output.

        The same as ``start_job`` followed by ``wait``: an interrupt (Ctrl-C, an
        orchestrator's kill) or ``max_poll_time`` stops the job and confirms the stop.

        Args:
            spec: The command as written (sent unchanged), or a complete ``JobSpec``.
            options: How to poll and stream (``PollOptions``; defaults apply when omitted).
            idempotency_key: With a key, a job already started with it that is running or
                succeeded is reattached instead of starting a second one (what an automatic
                retry needs).
            on_line: Called with each ``LogLine`` of output while the job runs.
            observers: Objects notified of the job's life (lineage uses this).
            **fields: ``JobSpec`` fields when ``spec`` is a command, e.g. ``title=``,
                ``hardware_tier_name=``, ``environment_id=``, ``commit_id=``.

        Returns:
            The job's final ``JobSnapshot`` (``status`` is ``Succeeded``).

        Raises:
            JobFailedError: The job ended ``Failed``, ``Error`` or ``Stopped``.
            PollTimeoutError: ``max_poll_time`` passed (the job was stopped).
            DominoError: Configuration, network or API errors (subclasses say which).
        """
        observers = list(observers)
        handle = self.start_job(spec, idempotency_key=idempotency_key, observers=observers, **fields)
        return self.wait(handle, options, on_line=on_line, observers=observers)

    def run_run(self, spec: RunSpec | Sequence[str] | str, options: PollOptions | None = None, *,
                idempotency_key: str | None = None, on_line: LineCallback | None = None,
                observers: Iterable[Any] = (), **fields: Any) -> JobSnapshot:
        """Start a Domino v1 run and wait for it to end, streaming its output.

        Args:
            spec: The command, as one string or a list of words, or a complete ``RunSpec``.
            options: How to poll and stream (``PollOptions``).
            idempotency_key: Reattach to a run already started with this key instead of
                starting another.
            on_line: Called with each ``LogLine`` of output while the run runs.
            observers: Objects notified of the run's life (lineage uses this).
            **fields: ``RunSpec`` fields when ``spec`` is a command (``title=``, ``tier=``…).

        Returns:
            The run's final ``JobSnapshot``.

        Raises:
            JobFailedError: The run ended ``Failed``, ``Error`` or ``Stopped``.
            PollTimeoutError: ``max_poll_time`` passed (the run was stopped).
        """
        observers = list(observers)
        handle = self.start_run(spec, idempotency_key=idempotency_key, observers=observers, **fields)
        return self.wait(handle, options, on_line=on_line, observers=observers)

    def stop_job(self, job: JobRef, *, commit_results: bool = True, wait: bool = True,
                 timeout: float = 60.0) -> JobSnapshot | None:
        """Stop a job; with ``wait`` confirm a terminal state or raise StopNotConfirmedError."""
        return self._drive(self._stop(job, commit_results, wait, timeout))

    def restart_job(self, job: JobRef, *, use_original_input_commit: bool = True) -> JobHandle | None:
        """Start a job again with the same settings; the new job's handle (``None`` if Domino returned none).

        Args:
            job: The job to restart.
            use_original_input_commit: Use the files of the original job's input commit, not the latest.
        """
        return self._drive(self._restart(job, use_original_input_commit))

    def list_jobs(self, **params: Any) -> list[JobSnapshot]:
        """The project's v4 jobs; ``params`` are Domino's query parameters (e.g. ``page_size=``)."""
        return self._drive(self._list_jobs(**params))

    def list_runs(self) -> list[JobSnapshot]:
        """The project's v1 runs."""
        return self._drive(self._list_runs())

    def stdout(self, job: JobRef, *, include_setup_log: bool = False) -> list[LogLine]:
        """The job's whole output so far, as lines (with the setup log first if asked)."""
        return self._drive(self._stdout(job, include_setup_log))

    def find_by_idempotency_key(self, key: str, kind: str = "job") -> list[JobSnapshot]:
        """Jobs (``kind="job"``) or runs (``"run"``) started with ``idempotency_key=key``, newest first."""
        return self._drive(flows.find_by_key_flow(self._ctx, kind, key))

    def runtime_details(self, job: JobRef) -> dict[str, Any]:
        """Domino's runtime execution details of a job (hardware, environment, timings), as returned."""
        return self._drive(flows.object_flow(api.runtime_details(_handle(job).job_id)))

    def hardware_tiers(self) -> list[HardwareTier]:
        """The hardware tiers available to the project."""
        return self._drive(flows.hardware_tiers_flow(self._ctx))

    def environments(self) -> dict[str, Any]:
        """The compute environments available to the project, as Domino returns them."""
        return self._drive(self._project_call(api.environments))

    def default_spark_settings(self) -> dict[str, Any]:
        """The project's default on-demand Spark cluster settings, as Domino returns them."""
        return self._drive(self._project_call(api.spark_defaults))

    def commits(self) -> list[Any]:
        """The project's commits, newest first, as Domino returns them."""
        return self._drive(self._commits())

    def _stop_after_interrupt(self, job: JobRef, options: PollOptions, exc: BaseException,
                              observers: Iterable[Any],
                              logs: flows.LogStream | None = None) -> None:
        self._drive(self._interrupt_stop(job, options, exc, observers, logs))


class AsyncDominoClient(_ClientBase):
    """Asynchronous twin of ``DominoClient``: same methods, awaited. One instance can follow
    thousands of jobs concurrently in one event loop."""

    def __init__(self, *args: Any, max_connections: int = 10, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._transport = AsyncTransport(self.config, self._retry_policy, max_connections)

    async def _drive(self, flow: Flow) -> Any:
        try:
            step = next(flow)
            while True:
                if isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                    step = flow.send(None)
                    continue
                try:
                    value = await self._transport.send(step, remaining=_remaining(step))
                except DominoError as exc:
                    step = flow.throw(exc)
                else:
                    step = flow.send(value)
        except StopIteration as done:
            return done.value

    async def aclose(self) -> None:
        """Close the HTTP connections (also on leaving an ``async with`` block)."""
        await self._transport.aclose()

    async def __aenter__(self) -> AsyncDominoClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- API (same names and meaning as DominoClient) ---
    async def version(self) -> dict[str, Any]:
        """Domino's version information (``GET /version``); a cheap connectivity check."""
        return await self._drive(flows.object_flow(api.version()))

    async def project_id(self) -> str:
        """The id of the configured project (looked up once, then cached)."""
        return await self._drive(flows.project_id_flow(self._ctx))

    async def start_job(self, spec: JobSpec | str, *, idempotency_key: str | None = None,
                        observers: Iterable[Any] = (), **fields: Any) -> JobHandle:
        """Start a Domino v4 job, once per ``idempotency_key``.

        Args:
            spec: The command as written (sent unchanged), or a complete ``JobSpec``.
            idempotency_key: A job already started with this key that is running, or that succeeded
                unseen, is reattached (``JobHandle.attached``); without a key a new job always starts.
            observers: Objects notified of the start (lineage uses this).
            **fields: ``JobSpec`` fields when ``spec`` is a command (``title=``,
                ``hardware_tier_name=``…).

        Returns:
            A ``JobHandle`` to pass to ``wait``, ``get_job`` or ``stop_job``.
        """
        return await self._start_once(_job_spec(spec, fields), idempotency_key, observers)

    async def start_run(self, spec: RunSpec | Sequence[str] | str, *,
                        idempotency_key: str | None = None, observers: Iterable[Any] = (),
                        **fields: Any) -> JobHandle:
        """Start a Domino v1 run, once per ``idempotency_key`` (see ``DominoClient.start_run``)."""
        return await self._start_once(_run_spec(spec, fields), idempotency_key, observers)

    async def _start_once(self, spec: JobSpec | RunSpec, key: str | None,
                          observers: Iterable[Any]) -> JobHandle:
        new_key = key or flows.new_key()
        try:
            return await self._drive(self._start(spec, new_key, key is not None, observers))
        except BaseException as exc:
            if is_interrupt(exc):
                for orphan in await self._drive(self._orphans(spec, new_key)):
                    await self._stop_after_interrupt(orphan, PollOptions(), exc, observers)
            raise

    async def get_job(self, job: JobRef) -> JobSnapshot:
        """The job's current state, as one ``JobSnapshot`` (no waiting)."""
        return await self._drive(flows.get_flow(self._ctx, _handle(job)))

    async def wait(self, job: JobRef, options: PollOptions | None = None, *,
                   on_line: LineCallback | None = None,
                   observers: Iterable[Any] = ()) -> JobSnapshot:
        """Follow a job to its end, streaming its output; stop it if this wait is interrupted.

        Args:
            job: A job id or the ``JobHandle`` a start returned.
            options: How to poll and stream (``PollOptions``); ``max_poll_time`` bounds the wait.
            on_line: Called with each ``LogLine`` of output, once each, in order.
            observers: Objects notified of each status and line.

        Returns:
            The final ``JobSnapshot`` of a job that ``Succeeded``.

        Raises:
            JobFailedError: The job ended ``Failed``, ``Error`` or ``Stopped``.
            PollTimeoutError: ``max_poll_time`` passed (stopped unless ``stop_on_timeout=False``).
        """
        observers = list(observers)
        logs: flows.LogStream | None = None
        try:
            flow, logs = self._follow(job, options, on_line, observers)
            return await self._drive(flow)
        except BaseException as exc:
            options = options or PollOptions()
            if is_interrupt(exc) and options.stop_on_interrupt:
                await self._stop_after_interrupt(job, options, exc, observers, logs)
            elif is_interrupt(exc) and logs is not None:
                self._interrupted[logs.handle.job_id] = logs
            raise

    async def run_job(self, spec: JobSpec | str, options: PollOptions | None = None, *,
                      idempotency_key: str | None = None, on_line: LineCallback | None = None,
                      observers: Iterable[Any] = (), **fields: Any) -> JobSnapshot:
        """``DominoClient.run_job``, awaited: start a job, stream its output, wait for its end."""
        observers = list(observers)
        handle = await self.start_job(spec, idempotency_key=idempotency_key, observers=observers,
                                      **fields)
        return await self.wait(handle, options, on_line=on_line, observers=observers)

    async def run_run(self, spec: RunSpec | Sequence[str] | str, options: PollOptions | None = None,
                      *, idempotency_key: str | None = None, on_line: LineCallback | None = None,
                      observers: Iterable[Any] = (), **fields: Any) -> JobSnapshot:
        """``DominoClient.run_run``, awaited: start a v1 run, stream its output, wait for its end."""
        observers = list(observers)
        handle = await self.start_run(spec, idempotency_key=idempotency_key, observers=observers,
                                      **fields)
        return await self.wait(handle, options, on_line=on_line, observers=observers)

    async def stop_job(self, job: JobRef, *, commit_results: bool = True, wait: bool = True,
                       timeout: float = 60.0) -> JobSnapshot | None:
        """Stop a job.

        Args:
            job: A job id or ``JobHandle``.
            commit_results: Let Domino commit the job's results (Domino's "stop and commit").
            wait: Wait until Domino reports a terminal state.
            timeout: Seconds to wait for that confirmation.

        Returns:
            The stopped job's final ``JobSnapshot``, or ``None`` when ``wait`` is false.

        Raises:
            StopNotConfirmedError: The job did not reach a terminal state within ``timeout``.
        """
        return await self._drive(self._stop(job, commit_results, wait, timeout))

    async def restart_job(self, job: JobRef, *,
                          use_original_input_commit: bool = True) -> JobHandle | None:
        """Start a job again with the same settings; the new job's handle (``None`` if Domino returned none)."""
        return await self._drive(self._restart(job, use_original_input_commit))

    async def list_jobs(self, **params: Any) -> list[JobSnapshot]:
        """The project's v4 jobs; ``params`` are Domino's query parameters (e.g. ``page_size=``)."""
        return await self._drive(self._list_jobs(**params))

    async def list_runs(self) -> list[JobSnapshot]:
        """The project's v1 runs."""
        return await self._drive(self._list_runs())

    async def stdout(self, job: JobRef, *, include_setup_log: bool = False) -> list[LogLine]:
        """The job's whole output so far, as lines (with the setup log first if asked)."""
        return await self._drive(self._stdout(job, include_setup_log))

    async def find_by_idempotency_key(self, key: str, kind: str = "job") -> list[JobSnapshot]:
        """Jobs (``kind="job"``) or runs (``"run"``) started with ``idempotency_key=key``, newest first."""
        return await self._drive(flows.find_by_key_flow(self._ctx, kind, key))

    async def runtime_details(self, job: JobRef) -> dict[str, Any]:
        """Domino's runtime execution details of a job, as returned."""
        return await self._drive(flows.object_flow(api.runtime_details(_handle(job).job_id)))

    async def hardware_tiers(self) -> list[HardwareTier]:
        """The hardware tiers available to the project."""
        return await self._drive(flows.hardware_tiers_flow(self._ctx))

    async def environments(self) -> dict[str, Any]:
        """The compute environments available to the project, as Domino returns them."""
        return await self._drive(self._project_call(api.environments))

    async def default_spark_settings(self) -> dict[str, Any]:
        """The project's default on-demand Spark cluster settings, as Domino returns them."""
        return await self._drive(self._project_call(api.spark_defaults))

    async def commits(self) -> list[Any]:
        """The project's commits, newest first, as Domino returns them."""
        return await self._drive(self._commits())

    async def _stop_after_interrupt(self, job: JobRef, options: PollOptions,
                                    exc: BaseException, observers: Iterable[Any],
                                    logs: flows.LogStream | None = None) -> None:
        import anyio

        # Under an anyio cancel scope (Prefect, Starlette, task groups) every await is cancelled
        # again until the scope exits; the stop must still go out.
        with anyio.CancelScope(shield=True):
            await self._drive(self._interrupt_stop(job, options, exc, observers, logs))


_SHARED: dict[DominoConfig, AsyncDominoClient] = {}
_SHARED_LOCK = threading.Lock()


def shared_async_client(config: DominoConfig, *, create: bool = True) -> AsyncDominoClient | None:
    """The process's one ``AsyncDominoClient`` for ``config`` (equal configurations, secrets
    included, share it), made on first use; None if it does not exist yet and not ``create``.

    For many short-lived followers in one long-lived process (an Airflow triggerer runs hundreds
    of Domino triggers): building a client per follower costs TLS setup inside the event loop
    and a connection pool each. The shared one keeps its connections per event loop, so followers
    on different loops may share it. Do not close it; it lives as long as the process. Make the
    first one off the event loop (``await asyncio.to_thread(shared_async_client, config)``): that
    call also loads the HTTP and TLS machinery there.
    """
    found = _SHARED.get(config)
    if found is not None or not create:
        return found
    with _SHARED_LOCK:
        found = _SHARED.get(config)
        if found is None:
            found = AsyncDominoClient(config=config)
            found._transport.prepare()
            _SHARED[config] = found
    return found
