"""Messages from inside a Domino job, read out of its stdout: the one parser in core.

Domino gives an orchestrator no channel back from a running job except its log, so a job reports
materializations, asset checks, metrics and results by printing Dagster Pipes messages — one JSON
object per line, ``{"__dagster_pipes_version": "0.1", "method": …, "params": …}`` — with
dagster-pipes' own zero-dependency stdio message writer (see ``domino_orchestrate.injob``). This
module finds those lines among ordinary output, sans I/O: the core's log stream feeds it every
stdout line and hands each message to the observers' ``on_message`` (``core/observe.py``), so
every integration, lineage and MLflow observer sees the same parsed messages.

Each message is keyed by its job and its position (line number) in the job's log. A retry that
reattaches to the same job reads the log again from its start; a ``MessageLedger`` remembers the
keys already handled so those messages are not applied twice. Anything that is not a well-formed
message (other JSON, a truncated line, garbage) is ordinary output and never an error.
"""

from __future__ import annotations

import base64
import json
import shlex
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigurationError
from .models import LogLine

__all__ = [
    "PIPES_VERSION_FIELD",
    "PROCESS_LEDGER",
    "JobMessage",
    "MessageCollector",
    "MessageKey",
    "MessageLedger",
    "MessageReader",
    "describe",
    "encode_param",
    "parse_message",
    "pipes_arguments",
    "plain_metadata",
    "with_arguments",
]

#: The field every Dagster Pipes message carries (``dagster_pipes.PIPES_PROTOCOL_VERSION_FIELD``).
PIPES_VERSION_FIELD = "__dagster_pipes_version"
_MARKER = '"' + PIPES_VERSION_FIELD + '"'
#: Lines longer than this are not parsed as messages (a runaway line must not cost a JSON parse).
MAX_MESSAGE_CHARS = 8_000_000
#: (job id, position of the line in the job's log)
MessageKey = tuple[str, int]
_decoder = json.JSONDecoder()
#: The command-line options dagster-pipes' ``PipesCliArgsParamsLoader`` reads.
CONTEXT_ARGUMENT = "--dagster-pipes-context"
MESSAGES_ARGUMENT = "--dagster-pipes-messages"
#: Where the job's message writer writes: its stdout, the one channel Domino gives back.
STDOUT_MESSAGES: dict[str, Any] = {"stdio": "stdout"}


def encode_param(value: Any) -> str:
    """``value`` as dagster-pipes encodes a parameter: JSON, zlib, base64 (``encode_param``).
    Base64 has no character a shell treats specially."""
    return base64.b64encode(zlib.compress(json.dumps(value).encode("utf-8"))).decode("ascii")


def pipes_arguments(context_data: Mapping[str, Any],
                    messages: Mapping[str, Any] = STDOUT_MESSAGES) -> list[str]:
    """The arguments that hand a job its Pipes context (read inside the job by
    ``PipesCliArgsParamsLoader``): the context itself, and "write messages to stdout"."""
    return [CONTEXT_ARGUMENT, encode_param({"data": dict(context_data)}),
            MESSAGES_ARGUMENT, encode_param(dict(messages))]


def with_arguments(command: str, arguments: Iterable[str]) -> str:
    """``command`` with ``arguments`` appended, each one shell word. The command itself is kept
    as written (no prefix, no wrapping): the arguments reach its last simple command, so a Pipes
    program should be that last command (``python train.py``, not ``python train.py | tee x``)."""
    written = command.rstrip()
    if not written or written[-1] in ";&|\\":
        raise ConfigurationError(
            f"The Pipes context is passed as arguments appended to the command, but {command!r} "
            "ends with an operator: end the command with the program that opens Dagster Pipes.")
    return " ".join([written, *(shlex.quote(arg) for arg in arguments)])


def parse_message(text: str) -> dict[str, Any] | None:
    """The Pipes message on one log line, or ``None`` when the line is not one.

    A message is a JSON object with a string ``__dagster_pipes_version``, a non-empty string
    ``method`` and ``params`` that is an object or null. Text before the object (output printed
    without a newline just before the message) is tolerated; text after it is not.
    """
    if _MARKER not in text or len(text) > MAX_MESSAGE_CHARS:
        return None  # the fast path: almost every line is plain output
    for start in _candidates(text):
        try:
            value, end = _decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            continue
        if not text[end:].strip() and _is_message(value):
            return value  # type: ignore[no-any-return]
    return None


def _candidates(text: str) -> list[int]:
    """Where a message may begin: the line's first character, and the brace just before the
    first few version fields (dagster-pipes writes that field first). A bounded number of tries,
    so a long line full of braces costs a few parses, not one per brace."""
    found = []
    stripped = len(text) - len(text.lstrip())
    if text.startswith("{", stripped):
        found.append(stripped)
    at = text.find(_MARKER)
    while at >= 0 and len(found) < 4:
        brace = text.rfind("{", 0, at)
        if brace >= 0 and not text[brace + 1 : at].strip() and brace not in found:
            found.append(brace)
        at = text.find(_MARKER, at + 1)
    return found


def _is_message(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get(PIPES_VERSION_FIELD), str)
        and isinstance(value.get("method"), str)
        and bool(value["method"])
        and (value.get("params") is None or isinstance(value.get("params"), dict))
    )


@dataclass(frozen=True)
class JobMessage:
    """One message a job reported, where it was found, and what it says."""

    job_id: str
    #: Line number (from 0) of the message in the job's log (stdout and stderr lines together).
    position: int
    method: str
    params: Mapping[str, Any] = field(default_factory=dict)
    version: str = ""
    stream: str = "stdout"

    @property
    def key(self) -> MessageKey:
        """What identifies this message across reattaches: the job and the line it is on."""
        return (self.job_id, self.position)

    def to_pipes(self) -> dict[str, Any]:
        """The message as dagster-pipes wrote it (what ``PipesMessageHandler`` takes)."""
        return {PIPES_VERSION_FIELD: self.version, "method": self.method,
                "params": dict(self.params)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, for an XCom, a Prefect result or metadata."""
        return {"job_id": self.job_id, "position": self.position, "method": self.method,
                "params": dict(self.params)}


class MessageLedger:
    """The message keys already handled, so a reattach does not apply a message twice.

    Thread-safe. ``claim`` checks and records in one step; ``release`` forgets keys whose effect
    was lost (e.g. results a failed Dagster step never yielded), so a retry applies them again.
    """

    def __init__(self, keys: Iterable[MessageKey] = ()) -> None:
        self._keys: set[MessageKey] = set(keys)
        self._lock = threading.Lock()

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._keys

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys)

    def claim(self, key: MessageKey) -> bool:
        """Record ``key``; ``True`` if it was not handled before (the caller applies it)."""
        with self._lock:
            if key in self._keys:
                return False
            self._keys.add(key)
            return True

    def add(self, keys: Iterable[MessageKey]) -> None:
        """Record keys handled elsewhere (e.g. read back from an orchestrator's event log)."""
        with self._lock:
            self._keys.update(keys)

    def release(self, keys: Iterable[MessageKey]) -> None:
        """Forget ``keys``: their messages will be applied again when seen."""
        with self._lock:
            self._keys.difference_update(keys)

    def forget_job(self, job_id: str) -> None:
        """Forget every handled message of ``job_id`` (its messages will be applied again when
        seen)."""
        with self._lock:
            self._keys = {key for key in self._keys if key[0] != job_id}


#: The ledger shared by every wait in this process: a retry in the same process (a Prefect task
#: retry, a Dagster in-process step retry, a re-followed job) skips what an earlier wait handled.
PROCESS_LEDGER = MessageLedger()


class MessageReader:
    """Finds the messages among one job's log lines, fed in order, each line once.

    ``feed`` returns the message on a line (``None`` for plain output, or for a message the ledger
    says was already handled). Positions count every stdout/stderr line fed, so they match the
    line numbers of the job's log; setup-log lines are not counted and carry no messages.
    """

    def __init__(self, job_id: str, ledger: MessageLedger | None = None) -> None:
        self.job_id = job_id
        self.ledger = ledger if ledger is not None else MessageLedger()
        self.position = 0
        #: Messages found, including those skipped as already handled.
        self.found = 0
        self.skipped = 0

    def feed(self, line: LogLine) -> JobMessage | None:
        """The message on ``line`` (the next line of the job's output), or None for plain output, a
        setup-log line, or a message the ledger says was already handled."""
        if line.stream == "setup":
            return None
        position = self.position
        self.position += 1
        raw = parse_message(line.text)
        if raw is None:
            return None
        self.found += 1
        message = JobMessage(
            job_id=self.job_id, position=position, method=raw["method"],
            params=raw.get("params") or {}, version=raw[PIPES_VERSION_FIELD], stream=line.stream,
        )
        if not self.ledger.claim(message.key):
            self.skipped += 1
            return None
        return message


# --- one report for every orchestrator ----------------------------------------------------------


def plain_metadata(metadata: Any) -> dict[str, Any]:
    """Pipes metadata (``{"rows": {"raw_value": 42, "type": "int"}}``) as plain values
    (``{"rows": 42}``); anything else is kept as it is."""
    if not isinstance(metadata, Mapping):
        return {}
    return {str(name): value.get("raw_value") if isinstance(value, Mapping) and "raw_value" in value
            else value for name, value in metadata.items()}


def describe(message: JobMessage) -> str | None:
    """One line for a task log saying what the job reported (None for the protocol's own
    opened/closed messages, and for logs: their text is logged as it is)."""
    params = message.params
    where = f"Domino job {message.job_id} reported"
    if message.method == "report_asset_materialization":
        meta = ", ".join(f"{k}={v!r}" for k, v in plain_metadata(params.get("metadata")).items())
        asset = params.get("asset_key") or "its asset"
        return f"{where} a materialization of {asset}" + (f": {meta}" if meta else "")
    if message.method == "report_asset_check":
        verdict = "passed" if params.get("passed") else "FAILED"
        return (f"{where} check {params.get('check_name')!s} on "
                f"{params.get('asset_key') or 'its asset'}: {verdict}")
    if message.method == "report_custom_message":
        return f"{where}: {json.dumps(params.get('payload'), default=str)[:2000]}"
    if message.method in ("opened", "closed", "log", "log_external_stream"):
        return None
    return f"{where} {message.method!r} (not a known Pipes method; kept in the report)"


#: The payload key of ``domino_orchestrate.injob.report``'s messages (lineage, not a result).
LINEAGE_PAYLOAD_KEY = "domino_orchestrate"
#: Collectors kept per job in this process (a retry in the same process reports everything).
_COLLECTORS: OrderedDict[str, MessageCollector] = OrderedDict()
_COLLECTORS_KEPT = 256
_collectors_lock = threading.Lock()


class MessageCollector:
    """Observer gathering what a job reported into one JSON-safe report — materializations,
    check results, custom messages (the last one is the job's *result*), logs — the form Airflow
    (XCom), Prefect (artifacts, result) and any other mapping read.

    ``ledger``: the messages already handled (None: the observers' default, the process-wide
    ledger). ``on_report(message, line)`` is told each new message with ``describe``'s line.
    """

    def __init__(self, ledger: MessageLedger | None = None,
                 on_report: Callable[[JobMessage, str | None], None] | None = None) -> None:
        if ledger is not None:
            self.message_ledger = ledger
        self.on_report = on_report
        self.materializations: list[dict[str, Any]] = []
        self.checks: list[dict[str, Any]] = []
        self.custom_messages: list[Any] = []
        self.logs: list[dict[str, Any]] = []
        self.other: list[dict[str, Any]] = []
        self.job_ids: list[str] = []

    @classmethod
    def for_job(cls, job_id: str) -> MessageCollector:
        """The collector of ``job_id`` in this process: a retry that reattaches (and so skips
        the messages already handled) still reports the earlier ones."""
        with _collectors_lock:
            found = _COLLECTORS.get(job_id)
            if found is None:
                found = _COLLECTORS[job_id] = cls()
                while len(_COLLECTORS) > _COLLECTORS_KEPT:
                    _COLLECTORS.popitem(last=False)
            _COLLECTORS.move_to_end(job_id)
            return found

    def on_message(self, message: JobMessage) -> None:
        """Add ``message`` to the report by its kind (materialization, check, custom message, log,
        other) and tell ``on_report``."""
        params = message.params
        if message.job_id not in self.job_ids:
            self.job_ids.append(message.job_id)
        if message.method == "report_asset_materialization":
            self.materializations.append({
                "asset_key": params.get("asset_key"), "data_version": params.get("data_version"),
                "metadata": plain_metadata(params.get("metadata"))})
        elif message.method == "report_asset_check":
            self.checks.append({
                "asset_key": params.get("asset_key"), "check_name": params.get("check_name"),
                "passed": bool(params.get("passed")), "severity": params.get("severity"),
                "metadata": plain_metadata(params.get("metadata"))})
        elif message.method == "report_custom_message":
            self.custom_messages.append(params.get("payload"))
        elif message.method == "log":
            self.logs.append({"level": params.get("level"), "message": params.get("message")})
        elif message.method not in ("opened", "closed", "log_external_stream"):
            self.other.append(message.to_dict())
        if self.on_report is not None:
            self.on_report(message, describe(message))

    @property
    def empty(self) -> bool:
        return not (self.materializations or self.checks or self.custom_messages or self.logs
                    or self.other)

    @property
    def result(self) -> Any:
        """The job's reported result: its last custom message's payload (None if none), not
        counting lineage reports (``injob.report``: a payload under ``domino_orchestrate``)."""
        for payload in reversed(self.custom_messages):
            if not (isinstance(payload, Mapping) and set(payload) == {LINEAGE_PAYLOAD_KEY}):
                return payload
        return None

    def report(self) -> dict[str, Any]:
        """Everything reported, JSON-safe."""
        return {"materializations": list(self.materializations), "checks": list(self.checks),
                "custom_messages": list(self.custom_messages), "logs": list(self.logs),
                "other": list(self.other), "result": self.result}
