"""``PipesDominoClient``: Dagster Pipes for Domino jobs, after Dagster's ``PipesClient`` convention.

>>> @asset
... def orders(context: AssetExecutionContext, domino_pipes: PipesDominoClient):
...     return domino_pipes.run(context=context, command="python orders.py").get_materialize_result()

Inside the job, the three lines of any Pipes process (dagster-pipes has no dependencies)::

    from dagster_pipes import PipesCliArgsParamsLoader, open_dagster_pipes
    with open_dagster_pipes(params_loader=PipesCliArgsParamsLoader()) as pipes:
        pipes.report_asset_materialization(metadata={"rows": 42})

How it maps onto Domino, which gives an orchestrator no channel but the job's log:

* the job starts through ``DominoResource`` (same idempotent start, reattach, stop on terminate
  and timeouts); the idempotency key is the user's command, so a retry reattaches;
* the Pipes context goes in as arguments appended to the command (``--dagster-pipes-context …
  --dagster-pipes-messages …``, read by ``PipesCliArgsParamsLoader``): no shell prefix, the
  command is otherwise sent as written;
* the job's message writer prints to stdout; the core finds the messages in the streamed stdout
  (``core/messages.py``) and this client hands them to Dagster's own ``PipesMessageHandler``:
  materializations, asset checks, logs, custom messages;
* a reattach does not apply a materialization twice: one already recorded in Dagster's event log
  for this Domino job (it carries ``domino/message``) is skipped (the step then yields Dagster's
  implicit materialization); check results are yielded again (Dagster wants each successful
  step to yield its checks), logs and custom messages come again with the re-read log;
* remote stdout/stderr go to the step's captured stdout/stderr, with few events per poll.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetRecordsFilter,
    ConfigurableResource,
    OpExecutionContext,
    PipesClient,
    PipesEnvContextInjector,
    PipesMessageHandler,
    PipesMessageReader,
    open_pipes_session,
)
from dagster_pipes import PipesExtras, PipesParams

try:  # exported since Dagster 1.13
    from dagster import PipesClientCompletedInvocation
except ImportError:  # Dagster 1.10-1.12: the same class, not yet exported
    from dagster._core.pipes.client import PipesClientCompletedInvocation
from pydantic import Field

from domino_orchestrate.core import JobSpec
from domino_orchestrate.core.messages import (
    STDOUT_MESSAGES,
    JobMessage,
    MessageKey,
    MessageLedger,
    with_arguments,
)

from .resource import Context, DominoResource, _op_context

__all__ = ["MESSAGE_METADATA_KEY", "PipesDominoClient", "PipesDominoMessageReader"]

log = logging.getLogger("domino_orchestrate.dagster")

#: Metadata on every materialization and check result a Domino job reported: "<job id>#<line>",
#: the message's place in the job's log (how a reattach knows it was applied).
MESSAGE_METADATA_KEY = "domino/message"
_RESULT_METHODS = ("report_asset_materialization", "report_asset_check")
#: Recent records read per asset key to find the messages already applied.
_RECORDS_SCANNED = 100


class PipesDominoMessageReader(PipesMessageReader):
    """Messages come back on the job's stdout: the writer inside the job is told to print them
    (``{"stdio": "stdout"}``), and the core's log stream hands them to ``on_message``."""

    def __init__(self) -> None:
        self.handler: PipesMessageHandler | None = None

    @contextmanager
    def read_messages(self, handler: PipesMessageHandler) -> Iterator[PipesParams]:
        """While open, the job's messages go to ``handler``; yields the params telling the
        writer inside the job to print them on stdout."""
        self.handler = handler
        try:
            yield dict(STDOUT_MESSAGES)
        finally:
            self.handler = None

    def no_messages_debug_text(self) -> str:
        """What Dagster shows when no message came back: where they are read from and how the
        job should open its Pipes context."""
        return ("Messages are read from the Domino job's stdout: open the context with "
                "open_dagster_pipes(params_loader=PipesCliArgsParamsLoader()) and keep the "
                "default message writer (it prints to stdout).")


class _MessageObserver:
    """Core observer handing each new message of the job to Dagster's Pipes message handler."""

    def __init__(self, reader: PipesDominoMessageReader, ledger: MessageLedger) -> None:
        self.reader = reader
        self.message_ledger = ledger  # read by the core's log stream (core/observe.py)
        self.applied_results: list[MessageKey] = []

    def on_message(self, message: JobMessage) -> None:
        handler = self.reader.handler
        if handler is None:
            return
        raw = message.to_pipes()
        if message.method in _RESULT_METHODS:
            params = dict(raw["params"])
            metadata = dict(params.get("metadata") or {})
            metadata[MESSAGE_METADATA_KEY] = {"raw_value": f"{message.job_id}#{message.position}",
                                              "type": "text"}
            params["metadata"] = metadata
            raw["params"] = params
            self.applied_results.append(message.key)
        handler.handle_message(raw)  # type: ignore[arg-type]


class PipesDominoClient(ConfigurableResource, PipesClient):  # type: ignore[type-arg,misc]
    """Runs a Pipes process as a Domino job and reports what it says back to Dagster.

    >>> PipesDominoClient(domino=DominoResource(project="alice/churn",
    ...                                         api_key=EnvVar("DOMINO_USER_API_KEY")))

    ``domino`` is the ``DominoResource`` that starts and follows jobs (connection, polling,
    timeouts, ``on_worker_shutdown``). ``forward_termination`` (default True) stops the Domino job
    when the step is terminated or interrupted; False leaves it running.
    """

    domino: DominoResource = Field(description="The Domino connection and how to follow jobs.")
    forward_termination: bool = Field(
        default=True, description="Stop the Domino job when the step is terminated.")

    def run(  # type: ignore[override]
        self, *, context: Context, command: str | JobSpec, extras: PipesExtras | None = None,
        idempotency_key: str | None = None, poll_overrides: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> PipesClientCompletedInvocation:
        """Start (or reattach to) this step's Domino job running ``command``, with the Pipes
        context appended as arguments, and follow it to its end.

        Returns the invocation; ``get_results()`` / ``get_materialize_result()`` give what the job
        reported, with the Domino job's id, URL and status as metadata. A job that ends Failed,
        Error or Stopped raises ``dagster.Failure`` with its last lines.
        """
        spec = command if isinstance(command, JobSpec) else JobSpec(command=command, **fields)
        if fields and isinstance(command, JobSpec):
            spec = replace(spec, **fields)
        # The key is the step and the command as written; the context (run id, retry number)
        # changes with each attempt and must not change the key, or a retry could not reattach.
        key = idempotency_key or self.domino.idempotency_key_for(context, spec)
        reader = PipesDominoMessageReader()
        overrides = dict(poll_overrides or {})
        if not self.forward_termination:
            overrides["stop_on_interrupt"] = False
        # An @asset_check's context wraps the op context the session works with.
        session_context = (context if isinstance(context, (AssetExecutionContext,
                                                           OpExecutionContext))
                           else context.op_execution_context)
        with open_pipes_session(context=session_context,
                                context_injector=PipesEnvContextInjector(),
                                message_reader=reader, extras=extras) as session:
            arguments = [part for pair in session.get_bootstrap_cli_arguments().items()
                         for part in pair]
            sent = replace(spec, command=with_arguments(spec.command, arguments))
            handle = self.domino.start_job(context, sent, idempotency_key=key)
            observer = _MessageObserver(reader, MessageLedger(
                _applied_messages(context, handle.job_id)))
            try:
                result = self.domino.wait(context, handle, observers=[observer], **overrides)
            except BaseException:
                # Results buffered in the handler die with this attempt: a retry applies them.
                observer.message_ledger.release(observer.applied_results)
                raise
        return PipesClientCompletedInvocation(session, metadata=result.metadata)


def _applied_messages(context: Context, job_id: str) -> list[MessageKey]:
    """Messages of ``job_id`` whose materializations Dagster already recorded (an earlier attempt
    or run yielded them): they carry ``domino/message``. Check results are not among them: Dagster
    wants each successful step to yield its checks, so a re-execution evaluates them again."""
    ctx = _op_context(context)
    found: list[MessageKey] = []
    try:
        if not ctx.has_assets_def:
            return found
        instance = ctx.instance
        for asset_key in ctx.selected_asset_keys:
            records = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=asset_key), limit=_RECORDS_SCANNED).records
            found.extend(_keys(job_id, [record.asset_materialization for record in records]))
    except Exception:
        # Unknown: apply again rather than lose a result.
        log.debug("Could not read the results already recorded for %s", job_id, exc_info=True)
    return found


def _keys(job_id: str, items: Sequence[Any]) -> list[MessageKey]:
    keys: list[MessageKey] = []
    for item in items:
        value = getattr(getattr(item, "metadata", None) or {}, "get", lambda _k: None)(
            MESSAGE_METADATA_KEY)
        text = getattr(value, "value", None)
        if isinstance(text, str) and text.startswith(f"{job_id}#"):
            try:
                keys.append((job_id, int(text.rsplit("#", 1)[1])))
            except ValueError:
                continue
    return keys
