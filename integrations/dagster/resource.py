"""``DominoResource``: a Dagster resource that starts Domino jobs/runs and follows them to the end.

All Domino work is done by the core client; this module only maps a Dagster step onto it:

* the step's identity becomes the core's ``ExecutionIdentity`` (``core/identity.py``, the one rule
  shared by every integration): a step retry (``RetryPolicy``), a re-execution *from failure* or an
  automatic run retry reattaches to the Domino job already started when it is still running or
  succeeded unseen; "re-execute all steps" (or selected steps) is a deliberate rerun and always
  starts a fresh job, as does a job that ended Failed/Error/Stopped or no longer exists;
* every launch and reattach is also recorded in Dagster's event log with
  ``record_external_launch`` / ``record_external_reattach`` (Dagster >= 1.12), which Dagster's own
  ``find_latest_launch_handle`` reads back first — the title lookup of the core is the fallback;
* stdout lines and the library's notices (stopping, stopped, stop not confirmed…) go to
  ``context.log``, i.e. the Dagster event log, as they happen;
* a job that ends Failed, Error or Stopped (or times out) raises ``dagster.Failure`` with the status,
  the last lines of stdout and metadata; an interrupt (terminate, force-terminate,
  ``dagster/max_runtime``) stops the job, confirms the stop in the event log and re-raises.

Translation of a step into the identity: the *scope* is the job name, step key and partition key
(or range); the *generation* is the run that began this attempt at the step — walking back from the
current run through its parents while the run continues its parent (tagged
``dagster/is_resume_retry`` / ``dagster/is_asset_resume_retry`` by a from-failure re-execution, or
``dagster/retry_number`` by an automatic run retry — the same tags Dagster's own pipes reattach
follows) and the step did not succeed in the parent. ``execute_job(...,
reexecution_options=ReexecutionOptions.from_failure(...))`` does not tag its run: pass
``tags={"dagster/is_resume_retry": "true"}`` to make it a continuation too.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from dagster import (
    AssetCheckExecutionContext,
    AssetExecutionContext,
    ConfigurableResource,
    DagsterEventType,
    DagsterExecutionInterruptedError,
    DagsterRunStatus,
    Failure,
    InitResourceContext,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
    Output,
)
from pydantic import ConfigDict, Field, model_validator

from domino_orchestrate.core import (
    DominoConfig,
    JobFailedError,
    JobHandle,
    JobNotFoundError,
    JobSnapshot,
    JobSpec,
    LogLine,
    PollOptions,
    PollTimeoutError,
    RunSpec,
)
from domino_orchestrate.core.command import with_env_prefix
from domino_orchestrate.core.identity import ExecutionIdentity, reusable
from domino_orchestrate.core.lineage import (
    Dataset,
    LineageInfo,
    ParentRun,
    lineage_env,
    lineage_observers,
)
from domino_orchestrate.core.observe import LineBatcher

if TYPE_CHECKING:
    from domino_orchestrate.core.client import DominoClient

try:  # Dagster >= 1.13.21: durable launch handles in the event log (private module, used defensively).
    from dagster._core.pipes.reattach import (
        find_latest_launch_handle,
        record_external_launch,
        record_external_reattach,
    )
except ImportError:  # pragma: no cover - older Dagster: the core's title lookup alone is used
    find_latest_launch_handle = None  # type: ignore[assignment]
    record_external_launch = None  # type: ignore[assignment]
    record_external_reattach = None  # type: ignore[assignment]

__all__ = [
    "CLIENT_NAME",
    "DominoJobResult",
    "DominoResource",
    "StepIdentity",
    "continues_parent",
    "step_identity",
]

log = logging.getLogger("domino_orchestrate.dagster")

Context: TypeAlias = AssetExecutionContext | OpExecutionContext | AssetCheckExecutionContext
#: ``client_name`` of the launch handles this integration records in Dagster's event log.
CLIENT_NAME = "domino_orchestrate"
_MAX_DEPTH = 64


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DominoJobResult:
    """What a finished Domino job looked like; JSON-safe via ``to_dict`` (no secrets)."""

    job_id: str
    url: str | None
    status: str
    duration_s: float | None
    stdout_tail: tuple[str, ...] = ()
    hardware_tier: str | None = None
    kind: str = "job"
    attached: bool = False
    output_commit_id: str | None = None
    idempotency_key: str | None = None

    @classmethod
    def from_snapshot(cls, snap: JobSnapshot, handle: JobHandle | None = None,
                      tail: Iterable[str] = ()) -> DominoJobResult:
        """The result of a finished job, from its final snapshot (and the handle that started it)."""
        return cls(
            job_id=snap.job_id, url=snap.url or (handle.url if handle else None),
            status=snap.status.value, duration_s=snap.duration_s, stdout_tail=tuple(tail),
            hardware_tier=snap.hardware_tier, kind=snap.kind,
            attached=bool(handle and handle.attached), output_commit_id=snap.output_commit_id,
            idempotency_key=handle.idempotency_key if handle else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The result as a plain dict (the asset's or op's output and metadata)."""
        return {
            "job_id": self.job_id, "url": self.url, "status": self.status,
            "duration_s": self.duration_s, "stdout_tail": list(self.stdout_tail),
            "hardware_tier": self.hardware_tier, "kind": self.kind, "attached": self.attached,
            "output_commit_id": self.output_commit_id, "idempotency_key": self.idempotency_key,
        }

    @property
    def metadata(self) -> dict[str, MetadataValue]:
        """Materialization / output metadata: job id, URL, status, duration, hardware tier."""
        meta: dict[str, MetadataValue] = {
            "domino_job_id": MetadataValue.text(self.job_id),
            "domino_status": MetadataValue.text(self.status),
            "domino_kind": MetadataValue.text(self.kind),
            "domino_reattached": MetadataValue.bool(self.attached),
        }
        if self.url:
            meta["domino_job_url"] = MetadataValue.url(self.url)
        if self.duration_s is not None:
            meta["domino_duration_s"] = MetadataValue.float(float(self.duration_s))
        if self.hardware_tier:
            meta["domino_hardware_tier"] = MetadataValue.text(self.hardware_tier)
        if self.output_commit_id:
            meta["domino_output_commit_id"] = MetadataValue.text(self.output_commit_id)
        return meta

    def materialize_result(self, **kwargs: Any) -> MaterializeResult:
        """``return domino.run_job(context, "python x.py").materialize_result()`` in an asset."""
        metadata = {**self.metadata, **dict(kwargs.pop("metadata", None) or {})}
        return MaterializeResult(metadata=metadata, **kwargs)

    def output(self, value: Any = None, output_name: str = "result") -> Output[Any]:
        """An ``Output`` carrying ``value`` (default: ``to_dict()``) and this job's metadata."""
        return Output(self.to_dict() if value is None else value, output_name, metadata=self.metadata)


# --- step identity ---------------------------------------------------------------------------------

#: Tags by which a run continues its parent (Dagster sets them on from-failure re-executions and
#: automatic run retries); any other re-execution is a deliberate rerun.
CONTINUATION_TAGS = ("dagster/is_resume_retry", "dagster/is_asset_resume_retry")
RETRY_NUMBER_TAG = "dagster/retry_number"


@dataclass(frozen=True)
class StepIdentity:
    """Who is asking for a Domino job: the Dagster run, step and partition."""

    run_id: str
    #: The run that began this generation of the step: the earliest run of the chain of
    #: from-failure re-executions / automatic retries in which the step has not succeeded.
    generation_run_id: str
    root_run_id: str
    job_name: str
    step_key: str
    partition_key: str | None = None
    retry_number: int = 0
    asset_keys: tuple[str, ...] = ()
    upstream_asset_keys: tuple[str, ...] = ()

    @property
    def execution(self) -> ExecutionIdentity:
        """The core identity: scope = job, step, partition; generation = ``generation_run_id``."""
        return ExecutionIdentity(
            "dagster", (self.job_name, self.step_key, self.partition_key or ""),
            generation=self.generation_run_id,
        )


def _op_context(context: Context) -> OpExecutionContext:
    # Asset and asset-check contexts both wrap the op context that carries run, step and instance.
    return context if isinstance(context, OpExecutionContext) else context.op_execution_context


def _partition(ctx: OpExecutionContext) -> str | None:
    try:
        if ctx.has_partition_key:
            return str(ctx.partition_key)
        if ctx.has_partition_key_range:
            rng = ctx.partition_key_range
            return f"{rng.start}...{rng.end}"
    except Exception:  # direct invocation contexts without a run
        return None
    return None


def _step_succeeded(ctx: OpExecutionContext, run_id: str, step_key: str) -> bool:
    entries = ctx.instance.all_logs(run_id, of_type=DagsterEventType.STEP_SUCCESS)
    return any(entry.step_key == step_key for entry in entries)


def continues_parent(tags: Mapping[str, str]) -> bool:
    """Whether a run with these tags continues its parent (from failure, automatic retry)."""
    return any(tags.get(tag) == "true" for tag in CONTINUATION_TAGS) or RETRY_NUMBER_TAG in tags


def _generation_run_id(ctx: OpExecutionContext, step_key: str) -> str:
    """The run that began this generation of the step: walk back while the run continues its
    parent and the step did not succeed there; a deliberate re-execution (all steps, selected
    steps) or a parent where the step succeeded begins a new generation."""
    current = ctx.dagster_run
    seen: set[str] = set()
    try:
        while (current.parent_run_id and continues_parent(current.tags)
               and current.run_id not in seen and len(seen) < _MAX_DEPTH):
            seen.add(current.run_id)
            parent = ctx.instance.get_run_by_id(current.parent_run_id)
            if parent is None or _step_succeeded(ctx, parent.run_id, step_key):
                break
            current = parent
    except Exception:
        # Reading the chain failed: the current run is a new generation (a fresh job, never an
        # old result for what may be a deliberate rerun).
        log.warning("Could not walk the parent runs of %s", ctx.run_id, exc_info=True)
        return ctx.run_id
    return current.run_id


def step_identity(context: Context) -> StepIdentity:
    """The identity of the current step, from an asset, asset-check or op execution context."""
    ctx = _op_context(context)
    run = ctx.dagster_run
    try:
        step_key = ctx.get_step_execution_context().step.key
    except Exception:
        step_key = ctx.op.name
    asset_keys: tuple[str, ...] = ()
    upstream: tuple[str, ...] = ()
    try:
        if ctx.has_assets_def:
            asset_keys = tuple(k.to_user_string() for k in ctx.selected_asset_keys)
            upstream = tuple(
                dep.to_user_string()
                for key in ctx.selected_asset_keys
                for dep in ctx.assets_def.asset_deps.get(key, ())
            )
    except Exception:
        log.debug("No asset information for %s", step_key, exc_info=True)
    return StepIdentity(
        run_id=run.run_id,
        generation_run_id=_generation_run_id(ctx, step_key),
        root_run_id=run.root_run_id or run.run_id,
        job_name=run.job_name,
        step_key=step_key,
        partition_key=_partition(ctx),
        retry_number=ctx.retry_number,
        asset_keys=asset_keys,
        upstream_asset_keys=tuple(dict.fromkeys(upstream)),
    )


#: Lines quoted in a batched event (every line is in the step's captured stdout/stderr).
BATCH_QUOTED_LINES = 50


class _EventLog:
    """Observer forwarding a job's output to the step's own stdout/stderr (Dagster's captured
    compute logs, as Pipes log readers do) and to ``context.log`` through the core's
    ``LineBatcher``: line by line for a small fetch, one event per stream for a big one, so the
    event log grows with polls, not lines. The library's notices (stopping, stopped…) always go
    to ``context.log``, so they land in the Dagster event log."""

    def __init__(self, context: Context, tail: deque[str] | None = None,
                 on_line: Callable[[LogLine], None] | None = None) -> None:
        self.context, self.tail, self.user_on_line = context, tail, on_line
        self._batch = LineBatcher(self._emit, quote=BATCH_QUOTED_LINES,
                                  where=" (all of them in this step's captured stdout/stderr)")

    def _emit(self, stream: str, text: str) -> None:
        (self.context.log.warning if stream == "stderr" else self.context.log.info)(text)

    def on_line(self, line: LogLine) -> None:
        if self.tail is not None:
            self.tail.append(line.text)
        (sys.stderr if line.stream == "stderr" else sys.stdout).write(line.text + "\n")
        self._batch.on_line(line)
        if self.user_on_line is not None:
            self.user_on_line(line)

    def on_fetched(self) -> None:
        self._batch.on_fetched()

    def on_finished(self, snapshot: JobSnapshot | None, error: BaseException | None) -> None:
        self._batch.on_fetched()  # nothing is left unsaid

    def on_notice(self, level: int, message: str) -> None:
        if level >= logging.ERROR:
            self.context.log.error(message)
        elif level >= logging.WARNING:
            self.context.log.warning(message)
        else:
            self.context.log.info(message)


# --- the resource ------------------------------------------------------------------------------


class DominoResource(ConfigurableResource):  # type: ignore[type-arg]
    """Connection to a Domino project plus how to follow jobs.

    >>> DominoResource(host="https://domino.example.com", project="alice/churn",
    ...                api_key=EnvVar("DOMINO_USER_API_KEY"))

    Every unset connection field falls back to the Domino environment variables
    (``DOMINO_API_HOST``, ``DOMINO_USER_API_KEY``, ``DOMINO_TOKEN_FILE``, ``DOMINO_API_PROXY``).
    Credentials set together follow python-domino's precedence (``api_proxy``, ``auth_token``,
    ``token_file``, ``api_key``), decided by the core as for every integration.
    """

    # Pydantic would otherwise quote every field value (the API key too) in a validation error.
    model_config = ConfigDict(hide_input_in_errors=True)

    host: str | None = Field(
        default=None, description="Domino URL, e.g. https://domino.example.com; "
        "defaults to DOMINO_API_HOST.")
    project: str = Field(description="Domino project as 'owner/name'.")
    api_key: str | None = Field(
        default=None, repr=False, description="Domino user API key; pass EnvVar('DOMINO_USER_API_KEY') so the "
        "key never lands in code or run config. Defaults to DOMINO_USER_API_KEY.")
    auth_token: str | None = Field(
        default=None, repr=False, description="A bearer token; wins over token_file and api_key "
        "(python-domino's precedence: api_proxy, auth_token, token_file, api_key).")
    token_file: str | None = Field(
        default=None, description="Path of a file holding a short-lived token, re-read on every "
        "request (DOMINO_TOKEN_FILE inside Domino). api_key may be set too as a fallback.")
    api_proxy: str | None = Field(
        default=None, description="Domino API proxy sidecar URL (DOMINO_API_PROXY); it injects "
        "credentials itself, so it wins over every other credential.")
    verify_tls: bool = Field(default=True, description="Verify Domino's TLS certificate.")
    ca_bundle: str | None = Field(
        default=None, description="Path of a CA bundle (PEM) to verify Domino's certificate with, "
        "e.g. a company CA; used instead of the system store when set.")
    request_timeout: float = Field(default=30.0, description="Seconds per HTTP request.")
    max_retries: int | None = Field(
        default=None, description="Transport retries per request; defaults to DOMINO_MAX_RETRIES "
        "or 4.")
    poll_freq: float = Field(default=5.0, description="Longest pause between status polls, seconds.")
    initial_interval: float = Field(
        default=1.0, description="First pause between polls; grows to poll_freq, so short jobs "
        "return quickly.")
    max_poll_time: float = Field(
        default=6000.0, description="Give up (and stop the job) after this many seconds.")
    retry_count: int = Field(
        default=5, description="Consecutive transient polling errors tolerated.")
    stream_logs: bool = Field(
        default=True, description="Send the job's stdout to the Dagster log as it is produced.")
    log_interval: float | None = Field(
        default=None, description="Seconds between live stdout fetches while the job runs. None: within the request budget (never more requests than python-domino's loop; about every 12 polls).")
    include_setup_log: bool = Field(
        default=False, description="Also stream Domino's setup (environment preparation) log.")
    stop_timeout: float = Field(
        default=60.0, description="Seconds to wait for a stop (on timeout or termination) to be "
        "confirmed.")
    tail_lines: int = Field(
        default=20, description="Lines of stdout kept for failure messages and results.")
    emit_lineage: bool = Field(
        default=True, description="Emit lineage (OpenLineage/MLflow) when it is configured.")
    on_worker_shutdown: Literal["stop", "leave_running"] = Field(
        default="stop", description="What an interrupt that is not a termination of the run does "
        "to the Domino job — the run worker getting SIGTERM on a node drain or pod eviction, or "
        "Ctrl-C: 'stop' stops it and confirms the stop (default); 'leave_running' leaves it "
        "running so the run retry (dagster/max_retries, from failure) reattaches to it. A run "
        "terminate, force-terminate or dagster/max_runtime always stops the job.")

    @model_validator(mode="after")
    def _check_settings(self) -> DominoResource:
        # Credentials given together are not an error: the core applies python-domino's
        # precedence (api_proxy, auth_token, token_file, api_key) as for every integration.
        owner, sep, name = self.project.partition("/")
        if not (owner and sep and name) or "/" in name:
            raise ValueError(f"project must be 'owner/name', got {self.project!r}.")
        if self.poll_freq <= 0 or self.initial_interval <= 0 or self.max_poll_time <= 0:
            raise ValueError("poll_freq, initial_interval and max_poll_time must be > 0 seconds.")
        if self.retry_count < 0 or self.tail_lines < 0:
            raise ValueError("retry_count and tail_lines must be >= 0.")
        if self.ca_bundle is not None and not self.verify_tls:
            raise ValueError("ca_bundle verifies Domino's certificate: do not set it with "
                             "verify_tls=False.")
        return self

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Where the run's end is recorded in this process (the in-process executor:
        ``materialize()``, ``execute_in_process``, ``in_process_executor``), send the Dagster
        run's lineage end with it, without the daemon; elsewhere the run-status sensors do.
        (Not a teardown: that would make every direct invocation need a ``with`` block.)"""
        if self.emit_lineage:
            from .lineage import end_with_the_run

            end_with_the_run(context.instance, context.dagster_run)

    # --- plain core objects ---
    def get_config(self) -> DominoConfig:
        """The core ``DominoConfig`` of this resource (its fields, then the ``DOMINO_*`` variables)."""
        return DominoConfig.resolve(
            self.host, self.project, api_key=self.api_key, auth_token=self.auth_token,
            domino_token_file=self.token_file, api_proxy=self.api_proxy, verify=self._verify(),
            max_retries=self.max_retries, timeout=self.request_timeout,
        )

    def _verify(self) -> Any:
        # DominoConfig.verify takes a CA bundle path where it accepts one (requests' own rule).
        return self.ca_bundle if self.ca_bundle is not None else self.verify_tls

    def get_client(self) -> DominoClient:
        """A plain core ``DominoClient`` for anything the helpers below do not cover."""
        from domino_orchestrate.core.client import DominoClient  # HTTP stack: load when used

        return DominoClient(config=self.get_config())

    def poll_options(self, **overrides: Any) -> PollOptions:
        """The resource's polling settings as ``PollOptions``; ``overrides`` replace single fields."""
        return PollOptions(**{
            "poll_freq": self.poll_freq, "initial_interval": self.initial_interval,
            "max_poll_time": self.max_poll_time, "retry_count": self.retry_count,
            "stream_logs": self.stream_logs, "log_interval": self.log_interval,
            "include_setup_log": self.include_setup_log,
            "stop_timeout": self.stop_timeout, "tail_lines": self.tail_lines, **overrides,
        })

    # --- identity, lineage ---
    def idempotency_key_for(self, context: Context, spec: JobSpec | RunSpec) -> str:
        """The key of this step's job (core ``ExecutionIdentity``: generation, job, step,
        partition, spec, host and project)."""
        return step_identity(context).execution.key(spec, self.get_config())

    def lineage_info(self, context: Context) -> LineageInfo:
        """The lineage of the step ``context`` runs (its job name, run key, parent run and datasets)."""
        ident = step_identity(context)
        return LineageInfo(
            orchestrator="dagster",
            # A materialize()/asset-selection run's job is __ASSET_JOB: name such a step by itself.
            job_name=ident.step_key if ident.job_name.startswith("__") else
            f"{ident.job_name}.{ident.step_key}",
            run_key=(ident.generation_run_id, ident.step_key, ident.partition_key or ""),
            parent=ParentRun(
                namespace="dagster", name=ident.job_name, run_id=ident.run_id,
                root_namespace="dagster", root_name=ident.job_name, root_run_id=ident.root_run_id,
            ),
            inputs=tuple(Dataset("dagster", key) for key in ident.upstream_asset_keys),
            outputs=tuple(Dataset("dagster", key) for key in ident.asset_keys),
            tags={"dagster.partition_key": ident.partition_key} if ident.partition_key else {},
        )

    def _observers(self, lineage: LineageInfo | None, config: DominoConfig,
                   observers: Iterable[Any]) -> list[Any]:
        found = list(observers)
        if lineage is not None:
            found.extend(lineage_observers(lineage, config))
        return found

    def _prepare(self, context: Context, spec: JobSpec | RunSpec, key: str | None,
                 env: Mapping[str, str] | None, lineage: LineageInfo | None
                 ) -> tuple[JobSpec | RunSpec, str]:
        ident = step_identity(context)
        key = key or self.idempotency_key_for(context, spec)
        if spec.title is None:
            title = _default_title(ident)
            if ident.partition_key:
                title += f" [{ident.partition_key}]"
            spec = replace(spec, title=title)
        variables = dict(env or {})
        if lineage is not None:
            variables.update(lineage_env(lineage, self.get_config()))
        if variables:
            if isinstance(spec, JobSpec):
                spec = replace(spec, command=with_env_prefix(spec.command, variables))
            elif spec.is_direct:
                spec = replace(spec, command=(with_env_prefix(spec.command[0], variables),))
            else:
                log.debug("Environment for a non-direct v1 run is not passed: %s", sorted(variables))
        return spec, key

    # --- start / wait ---
    def start_job(self, context: Context, command_or_spec: str | JobSpec | RunSpec, *,
                  idempotency_key: str | None = None, env: Mapping[str, str] | None = None,
                  lineage: LineageInfo | Literal[False] | None = None,
                  observers: Iterable[Any] = (), **fields: Any) -> JobHandle:
        """Start this step's Domino job (a ``RunSpec`` starts a v1 run), or reattach to the one
        a previous attempt started if it is still running or succeeded.

        ``env`` is exported before the command; ``lineage=None`` derives lineage from the
        context, ``False`` turns it off.
        """
        spec: JobSpec | RunSpec = (
            command_or_spec if isinstance(command_or_spec, (JobSpec, RunSpec))
            else JobSpec(command=command_or_spec, **fields)
        )
        if fields and isinstance(command_or_spec, (JobSpec, RunSpec)):
            spec = replace(spec, **fields)
        info = self._lineage(context, lineage)
        spec, key = self._prepare(context, spec, idempotency_key, env, info)
        with self.get_client() as client:
            obs = [*self._observers(info, client.config, observers), _EventLog(context)]
            handle = self._recorded_handle(context, client, key)
            if handle is None:
                if isinstance(spec, RunSpec):
                    handle = client.start_run(spec, idempotency_key=key, observers=obs)
                else:
                    handle = client.start_job(spec, idempotency_key=key, observers=obs)
                self._record(context, handle)
        verb = "Reattached to" if handle.attached else "Started"
        context.log.info(f"{verb} Domino {handle.kind} {handle.job_id}: {handle.url or ''}")
        return handle

    def wait(self, context: Context, handle: JobHandle, *,
             lineage: LineageInfo | Literal[False] | None = None,
             observers: Iterable[Any] = (), on_line: Callable[[LogLine], None] | None = None,
             **poll_overrides: Any) -> DominoJobResult:
        """Follow the job to its end, streaming stdout and notices to ``context.log``.

        Returns a ``DominoJobResult`` on Succeeded; raises ``dagster.Failure`` on Failed, Error,
        Stopped or a poll timeout. An interrupt stops the Domino job (see ``on_worker_shutdown``)
        and is re-raised.
        """
        from domino_orchestrate.core.client import is_interrupt  # HTTP stack: load when used

        info = self._lineage(context, lineage)
        options = self.poll_options(**poll_overrides)
        # Decided after the interrupt, when it is known whether the run was terminated.
        leave_running = self.on_worker_shutdown == "leave_running" and options.stop_on_interrupt
        if leave_running:
            options = replace(options, stop_on_interrupt=False)
        tail: deque[str] = deque(maxlen=max(1, options.tail_lines))  # for a successful result
        with self.get_client() as client:
            obs = [*self._observers(info, client.config, observers),
                   _EventLog(context, tail, on_line), _TerminationWatch(context)]
            try:
                snap = client.wait(handle, options, observers=obs)
            except JobFailedError as exc:
                result = DominoJobResult.from_snapshot(exc.snapshot, handle, exc.stdout_tail)
                raise self._failure(result, f"ended {exc.status.value}") from None
            except PollTimeoutError as exc:
                last = self._last_snapshot(client, handle)
                result = (DominoJobResult.from_snapshot(last, handle, exc.stdout_tail) if last else
                          DominoJobResult(handle.job_id, handle.url, exc.last_status, None,
                                          tuple(exc.stdout_tail), kind=handle.kind,
                                          attached=handle.attached))
                raise self._failure(result, str(exc)) from None
            except BaseException as exc:
                if leave_running and is_interrupt(exc):
                    if _run_terminated(context):
                        stop_options = replace(options, stop_on_interrupt=True)
                        client._stop_after_interrupt(handle, stop_options, exc, obs)
                    else:
                        context.log.warning(
                            f"Interrupted ({type(exc).__name__}) without a run termination: Domino "
                            f"{handle.kind} {handle.job_id} left running "
                            "(on_worker_shutdown='leave_running'); a retry of this run reattaches "
                            "to it.")
                raise
        result = DominoJobResult.from_snapshot(snap, handle, tail)
        context.log.info(
            f"Domino {result.kind} {result.job_id} {result.status}"
            + (f" in {result.duration_s:.1f}s" if result.duration_s is not None else "")
        )
        return result

    def run_job(self, context: Context, command_or_spec: str | JobSpec, *,
                idempotency_key: str | None = None, env: Mapping[str, str] | None = None,
                lineage: LineageInfo | Literal[False] | None = None,
                observers: Iterable[Any] = (), on_line: Callable[[LogLine], None] | None = None,
                poll_overrides: Mapping[str, Any] | None = None, **fields: Any) -> DominoJobResult:
        """Start (or reattach to) this step's v4 job and wait for it; see ``start_job``/``wait``.

        ``fields`` are ``JobSpec`` fields (title, hardware_tier_name, environment_id, …).
        """
        observers = list(observers)
        info = self._lineage(context, lineage)
        handle = self.start_job(context, command_or_spec, idempotency_key=idempotency_key,
                                env=env, lineage=info or False, observers=observers, **fields)
        return self.wait(context, handle, lineage=info or False, observers=observers,
                         on_line=on_line, **dict(poll_overrides or {}))

    def run_run(self, context: Context, command: RunSpec | Sequence[str] | str, *,
                idempotency_key: str | None = None, env: Mapping[str, str] | None = None,
                lineage: LineageInfo | Literal[False] | None = None,
                observers: Iterable[Any] = (), on_line: Callable[[LogLine], None] | None = None,
                poll_overrides: Mapping[str, Any] | None = None, **fields: Any) -> DominoJobResult:
        """Start (or reattach to) a v1 run (``command`` is e.g. ``["main.py", "arg"]``) and wait."""
        if isinstance(command, RunSpec):
            spec = replace(command, **fields) if fields else command
        else:
            parts = (command,) if isinstance(command, str) else tuple(command)
            spec = RunSpec(command=parts, **fields)
        observers = list(observers)
        info = self._lineage(context, lineage)
        handle = self.start_job(context, spec, idempotency_key=idempotency_key, env=env,
                                lineage=info or False, observers=observers)
        return self.wait(context, handle, lineage=info or False, observers=observers,
                         on_line=on_line, **dict(poll_overrides or {}))

    # --- helpers ---
    def _lineage(self, context: Context, lineage: LineageInfo | Literal[False] | None
                 ) -> LineageInfo | None:
        if lineage is False or not self.emit_lineage:
            return None
        return lineage if lineage is not None else self.lineage_info(context)

    @staticmethod
    def _failure(result: DominoJobResult, what: str) -> Failure:
        description = f"Domino {result.kind} {result.job_id} {what}"
        if result.url:
            description += f" ({result.url})"
        if result.stdout_tail:
            description += "; last lines of output:\n" + "\n".join(result.stdout_tail)
        metadata: dict[str, Any] = dict(result.metadata)
        metadata["domino_stdout_tail"] = MetadataValue.text("\n".join(result.stdout_tail))
        return Failure(description=description, metadata=metadata)

    @staticmethod
    def _last_snapshot(client: DominoClient, handle: JobHandle) -> JobSnapshot | None:
        try:
            return client.get_job(handle)
        except Exception:
            return None

    @staticmethod
    def _recorded_handle(context: Context, client: DominoClient, key: str) -> JobHandle | None:
        """Reattach through Dagster's own launch record of this step, when there is one and the
        core identity rule allows it (running, or succeeded unseen)."""
        if find_latest_launch_handle is None:
            return None
        ctx = _op_context(context)
        try:
            found = find_latest_launch_handle(ctx, client_name=CLIENT_NAME)
        except Exception:
            log.debug("No launch handle lookup for this context", exc_info=True)
            return None
        if found is None or found.extras.get("idempotency_key") != key:
            return None
        kind = str(found.extras.get("kind") or "job")
        handle = JobHandle(job_id=found.external_run_id, kind=kind,  # type: ignore[arg-type]
                           project=client.config.project, url=found.external_run_url,
                           idempotency_key=key, attached=True)
        try:
            snap = client.get_job(handle)
        except JobNotFoundError:
            # Deleted or purged in Domino: forget the record, never dead-end every retry on it.
            context.log.warning(
                f"Domino {kind} {handle.job_id} recorded by an earlier attempt no longer exists; "
                "starting a new one.")
            return None
        if not reusable(snap):
            return None  # Failed/Error/Stopped or being stopped: start a fresh job
        try:
            record_external_reattach(ctx, found)
        except Exception:
            log.debug("Could not record the reattach", exc_info=True)
        return handle

    @staticmethod
    def _record(context: Context, handle: JobHandle) -> None:
        if record_external_launch is None:
            return
        try:
            record_external_launch(
                _op_context(context), client_name=CLIENT_NAME, external_run_id=handle.job_id,
                external_run_url=handle.url,
                extras={"kind": handle.kind, "idempotency_key": handle.idempotency_key or "",
                        "attached": handle.attached},
            )
        except Exception:
            log.debug("Could not record the launch in the event log", exc_info=True)


def _default_title(ident: StepIdentity) -> str:
    """A job's title without one given: an asset's job is named after its asset key(s), with the
    Dagster job when it has a name of its own (``dagster: orders/daily``,
    ``dagster nightly.orders/daily``); an op's after its job and step. A ``materialize()`` or
    asset-selection run's job is ``__ASSET_JOB``, which tells a Domino user nothing."""
    what = ", ".join(sorted(ident.asset_keys)) if ident.asset_keys else ident.step_key
    if ident.asset_keys and ident.job_name.startswith("__"):
        return f"dagster: {what}"
    return f"dagster {ident.job_name}.{what}"


_TERMINATING = (DagsterRunStatus.CANCELING, DagsterRunStatus.CANCELED)


def _run_status(context: Context) -> DagsterRunStatus | None:
    """The run's status in the instance; ``None`` without a record there (a direct invocation)."""
    ctx = _op_context(context)
    run = ctx.instance.get_run_by_id(ctx.run_id)
    return None if run is None else run.status


def _run_terminated(context: Context) -> bool:
    """Whether the user (terminate, force-terminate) or Dagster (``dagster/max_runtime``) is
    ending this run, as opposed to a run worker shutting down on its own (SIGTERM on a drain)."""
    try:
        status = _run_status(context)
    except Exception:
        return True  # unknown: stopping is the safe side of a termination
    return status is None or status in _TERMINATING


class _TerminationWatch:
    """Observer that ends the wait as the step's interrupt would once the run is being terminated.
    Dagster interrupts a step once, with a signal whose handler raises; landing inside a finalizer
    (a spent HTTP response's), what it raises is dropped by Python, and the step would follow its
    job to the end. Reads the run's status at most every ``EVERY_S``."""

    EVERY_S = 2.0

    def __init__(self, context: Context) -> None:
        self.context = context
        self._next_check = time.monotonic() + self.EVERY_S

    def on_poll(self, snapshot: JobSnapshot) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self.EVERY_S
        try:
            status = _run_status(self.context)
        except Exception:
            return  # the instance is unreachable: the signal is still the way in
        if status in _TERMINATING:
            raise DagsterExecutionInterruptedError(
                f"run {_op_context(self.context).run_id} is {status.value}")
