"""Every multi-step operation, written once as a generator with no I/O (h11 / httpx-auth style).

A flow yields ``ApiRequest`` (and is sent the decoded JSON, or has the typed error thrown in) or
``Sleep`` (and is sent ``None``). ``client.DominoClient`` drives flows with requests and
``time.sleep``; ``client.AsyncDominoClient`` with httpx and ``asyncio.sleep``. So polling, log
streaming, idempotent start and stop-and-confirm have one implementation, and tests can step them.

Every answer a flow reads goes through ``_read``: the one place where a response of the wrong
shape becomes an ``InvalidResponseError`` naming the endpoint.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from . import api
from .api import ApiRequest, Sleep
from .config import DominoConfig, redact
from .errors import (
    ConfigurationError,
    DominoError,
    InvalidResponseError,
    JobFailedError,
    PollTimeoutError,
    ProjectNotFoundError,
    RateLimitedError,
    ServerError,
    StopNotConfirmedError,
    TransportError,
)
from .identity import idempotency_key, reusable
from .messages import MessageReader
from .models import HardwareTier, JobHandle, JobSnapshot, JobSpec, LogLine, PollOptions, RunSpec
from .observe import Observers
from .status import JobStatus
from .stdout import LogCursor, LogPass

__all__ = [
    "BoundedRequest", "Context", "Flow", "LogStream", "PollSchedule", "RequestBudget", "RetryBudget",
    "idempotency_key",
    "tagged_title",
]

log = logging.getLogger("domino_orchestrate")

T = TypeVar("T")
Flow = Generator[ApiRequest | Sleep, Any, Any]
_KEY_PREFIX = "[do:"
#: Pages of the jobs list scanned for an idempotency key (newest first).
LOOKUP_PAGES = 5
LOOKUP_PAGE_SIZE = 100
#: Stdout fetch budget while running: a 100 MB log is fetched about every 25 s, not every poll.
LOG_CHARS_PER_SECOND = 4_000_000
#: How often a start whose answer was lost is sent again (after nothing was found by its key).
LOST_START_RETRIES = 4
LOST_START_LOOKUPS: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0, 8.0, 15.0)
"""When a start's answer is lost (reset, 5xx, unreadable or wrong-shaped body), the jobs list is
searched for its idempotency key at these seconds after the loss, and the start is sent again only
if none of them finds it. Domino's jobs list can show a new job seconds after it was created, so a
single immediate look would start it twice; 15 s covers that lag with six lookups. An answer that
says the start was refused (429, or a request that never left this machine) is looked up once."""
#: Consecutive transient failures one start absorbs (the same default as ``PollOptions``).
START_RETRIES = PollOptions.retry_count
#: Longest pause between two tries of a step, unless the server asks for longer (Retry-After).
MAX_NAP = 8.0
#: Longest Retry-After a flow honours between two tries of a step.
MAX_RETRY_AFTER = 60.0


@dataclass
class Context:
    """Per-client state the flows read: config, clock, and the cached project id."""

    config: DominoConfig
    clock: Callable[[], float] = time.monotonic
    project_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def url(self, job_id: str) -> str | None:
        """The job's page in Domino's UI, or None when the configuration cannot say."""
        try:
            return self.config.job_url(job_id)
        except ConfigurationError:
            return None

    def handle(self, job_id: str, kind: str, key: str | None, attached: bool) -> JobHandle:
        """The ``JobHandle`` of a job this client started (or reattached to: ``attached``)."""
        return JobHandle(
            job_id=job_id, kind=kind,  # type: ignore[arg-type]
            project=self.config.project, url=self.url(job_id),
            idempotency_key=key, attached=attached,
        )

    def secrets(self) -> list[str]:
        """Every secret of the configuration (API key, token, host or proxy userinfo)."""
        every = getattr(self.config, "secrets", None)  # host/proxy userinfo too, when known
        return list(every()) if callable(every) else list(self.config.credentials.secrets())

    def scrub(self, text: str) -> str:
        """``text`` with every secret of the configuration masked."""
        return redact(text, self.secrets())

    def located(self, snapshot: JobSnapshot) -> JobSnapshot:
        """``snapshot`` with its UI link (Domino's answers do not carry one)."""
        return replace(snapshot, url=self.url(snapshot.job_id))


# --- idempotency keys --------------------------------------------------------------------------


def tagged_title(title: str | None, key: str) -> str:
    """Domino has no server-side idempotency key, so the key rides in the job title."""
    tag = f"{_KEY_PREFIX}{key}]"
    return f"{title} {tag}" if title else tag


def _has_key(title: str | None, key: str) -> bool:
    return bool(title) and f"{_KEY_PREFIX}{key}]" in title  # type: ignore[operator]


# --- reading answers: the one validation step --------------------------------------------------

_SHAPE_ERRORS = (ValueError, TypeError, LookupError, AttributeError, ArithmeticError)


@dataclass(frozen=True)
class BoundedRequest(ApiRequest):
    """A request of an operation with a deadline: the driver lets the transport spend at most
    ``remaining`` seconds on it, retries included, so one request cannot outlast the operation
    (a wait's ``max_poll_time``)."""

    remaining: float = 0.0


def _bounded(request: ApiRequest, remaining: float | None) -> ApiRequest:
    if remaining is None:
        return request
    # A copy of the request's fields plus the time left, without a frozen dataclass's __init__
    # (one attribute at a time, through object.__setattr__): it shows in a poll's profile.
    bounded = object.__new__(BoundedRequest)
    bounded.__dict__.update(request.__dict__)
    bounded.__dict__["remaining"] = max(0.0, remaining)
    return bounded


def _read(request: ApiRequest, parse: Callable[[Any], T],
          remaining: float | None = None) -> Generator[ApiRequest, Any, T]:
    """Send ``request`` (bounded by ``remaining`` seconds, if given) and read its answer with
    ``parse``; a body of the wrong shape raises ``InvalidResponseError`` naming the endpoint
    (never the body: it may hold job output)."""
    body = yield _bounded(request, remaining)
    try:
        return parse(body)
    except _SHAPE_ERRORS as exc:
        raise InvalidResponseError(
            f"Domino's answer to {request.method} {request.path} has an unexpected shape: {exc}. "
            "A proxy may be answering instead of Domino, or this Domino version differs.",
            status_code=200, method=request.method, path=request.path,
        ) from None


def _kind_of(value: Any) -> str:
    return "null" if value is None else {dict: "an object", list: "a list", str: "a string",
                                         bool: "a boolean"}.get(type(value), "a number")


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected {what} as a JSON object, got {_kind_of(value)}")
    return value


def _items(body: Any, field_name: str) -> list[dict[str, Any]]:
    """The list under ``field_name`` of an object answer (absent or null: empty), all objects."""
    items = _object(body, "a list envelope").get(field_name)
    if items is None:
        return []
    if not isinstance(items, list):
        raise ValueError(f"'{field_name}' must be a list, got {_kind_of(items)}")
    for item in items:
        _object(item, f"each item of '{field_name}'")
    return items


def _text_or_empty(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {_kind_of(value)}")
    return value


def _parse_stdout(body: Any) -> tuple[str, str]:
    body = _object(body, "a stdout answer")
    if "stdout" not in body:
        raise ValueError("it has no 'stdout' field")
    return _text_or_empty(body["stdout"], "'stdout'"), _text_or_empty(body.get("setup"), "'setup'")


def _parse_streamed_stdout(body: Any) -> tuple[str, LogPass | None, str]:
    """``(stdout, reading, setup)`` from a streamed answer (``StreamedObject.close()``: the
    stdout text went to ``reading`` as it arrived) or from decoded JSON (``reading`` is None)."""
    if isinstance(body, tuple) and len(body) == 2 and isinstance(body[1], LogPass):
        members, reading = body
        return "", reading, _text_or_empty(_object(members, "a stdout answer").get("setup"),
                                           "'setup'")
    if isinstance(body, tuple) and len(body) == 2 and body[1] is None:
        body = body[0]  # streamed, but "stdout" was absent or not a string: judged as decoded
    text, setup = _parse_stdout(body)
    return text, None, setup


def _parse_tiers(body: Any) -> list[HardwareTier]:
    if body is None:
        return []
    if not isinstance(body, list):
        raise ValueError(f"expected a list of hardware tiers, got {_kind_of(body)}")
    tiers = []
    for item in body:
        item = _object(item, "each hardware tier")
        tier = _object(item.get("hardwareTier", item), "'hardwareTier'")
        tier_id = tier.get("id")
        if isinstance(tier_id, bool) or not isinstance(tier_id, (str, int)) or tier_id == "":
            raise ValueError("a hardware tier has no id")
        flags = tier.get("hwtFlags")
        default = isinstance(flags, dict) and flags.get("isDefault") is True
        name = tier.get("name")
        tiers.append(HardwareTier(str(tier_id), name if isinstance(name, str) else str(tier_id),
                                  default))
    return tiers


def _parse_started(kind: str) -> Callable[[Any], str]:
    def parse(body: Any) -> str:
        body = _object(body, "a start answer")
        value = body.get("runId") if kind == "run" else None
        value = value or body.get("id")
        if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
            raise ValueError("it carries no job id")
        return str(value).strip()

    return parse


# --- retries: one budget per operation ---------------------------------------------------------


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, DominoError) and exc.retryable


class RetryBudget:
    """The transient failures one operation (a whole start, a whole wait) may absorb: up to
    ``retries`` consecutive failed steps, whichever request of the operation failed. Each request
    already had its own transport retries (``RetryPolicy``); this is the layer above them, so a
    project lookup before a start is as patient as a status poll."""

    def __init__(self, retries: int = START_RETRIES, first_nap: float = 0.5,
                 max_nap: float = MAX_NAP) -> None:
        self.retries = retries
        self.first_nap = first_nap
        self.max_nap = max_nap
        self.failures = 0

    def spend(self, exc: DominoError) -> float:
        """Count a failure and return the pause before the next try; re-raise ``exc`` when it is
        not transient or the budget is spent."""
        if not _transient(exc) or self.failures >= self.retries:
            raise exc
        self.failures += 1
        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
            return min(exc.retry_after, MAX_RETRY_AFTER)
        return min(self.max_nap, self.first_nap * 2 ** (self.failures - 1))

    def reset(self) -> None:
        """A step succeeded: the next failures count from zero again (consecutive only)."""
        self.failures = 0


def _retried(budget: RetryBudget, make: Callable[[], Flow], what: str) -> Flow:
    """Run the sub-flow ``make()``, trying it again on transient errors while ``budget`` lasts."""
    while True:
        try:
            result = yield from make()
        except DominoError as exc:
            nap = budget.spend(exc)
            log.warning("%s failed (%d/%d), trying again in %.1fs: %s",
                        what, budget.failures, budget.retries, nap, exc)
            yield Sleep(nap)
            continue
        budget.reset()
        return result


# --- small flows -------------------------------------------------------------------------------


def project_id_flow(ctx: Context) -> Flow:
    if ctx.project_id is None:
        owner, project = ctx.config.owner_and_project
        request = api.find_project(owner, project)
        body = yield from _read(request, lambda b: _object(b, "a project"))
        found = body.get("id")
        if not found:
            raise ProjectNotFoundError(
                f"Domino project {owner}/{project} not found (no id in the answer)",
                status_code=200, method=request.method, path=request.path,
            )
        if isinstance(found, bool) or not isinstance(found, (str, int)):
            raise InvalidResponseError(
                f"Domino's answer to {request.method} {request.path} has an unexpected shape: "
                f"the project id is {_kind_of(found)}",
                status_code=200, method=request.method, path=request.path,
            )
        ctx.project_id = str(found)
    return ctx.project_id


def status_request(ctx: Context, handle: JobHandle) -> tuple[ApiRequest, Callable[[Any], JobSnapshot]]:
    """The status request of a job and how to read its answer (built once per wait, not per
    poll)."""
    url = ctx.url(handle.job_id)
    read = JobSnapshot.from_v1 if handle.kind == "run" else JobSnapshot.from_v4
    last: list[Any] = [None, None]  # the last answer and its snapshot

    def parse(body: Any) -> JobSnapshot:
        # A running job answers the same JSON poll after poll: read it once (dicts compare in C).
        if last[1] is not None and body == last[0]:
            return last[1]  # type: ignore[no-any-return]
        snap = read(body, url)
        last[0], last[1] = body, snap
        return snap

    if handle.kind == "run":
        owner, project = ctx.config.owner_and_project
        return api.run_get(owner, project, handle.job_id), parse
    return api.job_get(handle.job_id), parse


def get_flow(ctx: Context, handle: JobHandle, remaining: float | None = None,
             prepared: tuple[ApiRequest, Callable[[Any], JobSnapshot]] | None = None) -> Flow:
    request, parse = prepared or status_request(ctx, handle)
    return (yield from _read(request, parse, remaining))


def hardware_tiers_flow(ctx: Context) -> Flow:
    pid = yield from project_id_flow(ctx)
    return (yield from _read(api.hardware_tiers(pid), _parse_tiers))


def resolve_tier_flow(ctx: Context, spec: JobSpec) -> Flow:
    """Hardware tier by name or id → id, with a clear error listing what exists."""
    wanted = spec.hardware_tier_name or spec.hardware_tier_id
    if not wanted:
        return None
    tiers = yield from hardware_tiers_flow(ctx)
    for tier in tiers:
        if (spec.hardware_tier_name and tier.name == wanted) or tier.id == wanted:
            return tier.id
    names = ", ".join(f"{t.name} ({t.id})" for t in tiers) or "none"
    raise ConfigurationError(f"Hardware tier {wanted!r} not found in this project; available: {names}")


def stdout_flow(ctx: Context, job_id: str, remaining: float | None = None) -> Flow:
    """The job's whole log as ``(stdout, setup)`` texts (Domino's HTML-ish form)."""
    owner, project = ctx.config.owner_and_project
    return (yield from _read(api.stdout(owner, project, job_id), _parse_stdout, remaining))


def list_jobs_flow(ctx: Context, **params: Any) -> Flow:
    pid = yield from project_id_flow(ctx)
    items = yield from _read(api.jobs_list(pid, **params),
                             lambda body: [JobSnapshot.from_v4(i) for i in _items(body, "jobs")])
    return [ctx.located(snap) for snap in items]


def list_runs_flow(ctx: Context) -> Flow:
    owner, project = ctx.config.owner_and_project
    items = yield from _read(api.runs_list(owner, project),
                             lambda body: [JobSnapshot.from_v1(i) for i in _items(body, "data")])
    return [ctx.located(snap) for snap in items]


def find_by_key_flow(ctx: Context, kind: str, key: str) -> Flow:
    """All executions whose title carries ``key``, newest first."""
    if kind == "run":
        runs = yield from list_runs_flow(ctx)
        return [snap for snap in runs if _has_key(snap.title, key)]
    found: list[JobSnapshot] = []
    for page in range(1, LOOKUP_PAGES + 1):
        jobs = yield from list_jobs_flow(ctx, page_size=LOOKUP_PAGE_SIZE, page_no=page)
        found += [snap for snap in jobs if _has_key(snap.title, key)]
        if len(jobs) < LOOKUP_PAGE_SIZE:
            break
    return found


def object_flow(request: ApiRequest, what: str = "an object") -> Flow:
    """An answer handed to the caller as it is, once checked to be a JSON object."""
    return (yield from _read(request, lambda body: _object(body, what)))


def list_flow(request: ApiRequest, what: str = "a list") -> Flow:
    """An answer handed to the caller as it is, once checked to be a JSON list."""

    def parse(body: Any) -> list[Any]:
        if not isinstance(body, list):
            raise ValueError(f"expected {what}, got {_kind_of(body)}")
        return body

    return (yield from _read(request, parse))


def restart_flow(ctx: Context, job_id: str, use_original_input_commit: bool) -> Flow:
    def parse(body: Any) -> str | None:
        if body is None:
            return None  # Domino may answer a restart with no body
        return _parse_started("job")(body)

    new_id = yield from _read(api.job_restart(job_id, use_original_input_commit), parse)
    return ctx.handle(new_id, "job", None, attached=False) if new_id else None


# --- start -------------------------------------------------------------------------------------

_LOST = (TransportError, ServerError, InvalidResponseError, RateLimitedError)


def new_key() -> str:
    return uuid.uuid4().hex[:20]


def start_flow(
    ctx: Context, spec: JobSpec | RunSpec, key: str, observers: Observers, look_first: bool = True,
    budget: RetryBudget | None = None,
) -> Flow:
    """Start once per key: reuse a running or succeeded execution, never create two.

    ``look_first=False`` skips the initial lookup for a key made up just now (it cannot exist).
    Every request of the start (project, tier, lookups, the start itself) shares one ``budget``.
    """
    budget = budget or RetryBudget()
    kind = "run" if isinstance(spec, RunSpec) else "job"
    title = tagged_title(spec.title, key)
    known: set[str] = set()
    if look_first:
        earlier = yield from _retried(budget, lambda: find_by_key_flow(ctx, kind, key),
                                      "Looking up the idempotency key")
        known = {snap.job_id for snap in earlier}
        # One rule (core/identity.py): reattach to a running or succeeded job, never a failed
        # or stopping one.
        if earlier and _reattachable(earlier[0]):
            latest = earlier[0]
            log.info("Reattaching to Domino %s %s (%s) for key %s",
                     kind, latest.job_id, latest.status_label, key)
            handle = ctx.handle(latest.job_id, kind, key, attached=True)
            observers.submitted(handle, spec)
            return handle
    if isinstance(spec, RunSpec):
        owner, project = ctx.config.owner_and_project
        request = api.run_start(owner, project, spec, title)
    else:
        pid = yield from _retried(budget, lambda: project_id_flow(ctx), "Looking up the project")
        tier_id = yield from _retried(budget, lambda: resolve_tier_flow(ctx, spec),
                                      "Looking up the hardware tier")
        request = api.job_start(pid, spec, title, tier_id)
    for attempt in range(LOST_START_RETRIES + 1):
        try:
            job_id = yield from _read(request, _parse_started(kind))
        except _LOST as exc:
            # The start may or may not have reached Domino: look before re-sending.
            log.warning("Start of a Domino %s got no usable answer (%s); looking for it before "
                        "sending it again", kind, exc)
            found = yield from _find_lost_start(ctx, kind, key, known, budget, exc)
            if found is not None:
                handle = ctx.handle(found.job_id, kind, key, attached=False)
                observers.submitted(handle, spec)
                return handle
            if attempt == LOST_START_RETRIES:
                raise
            if _refused(exc):  # a lost answer has waited out the lookups already
                pause = exc.retry_after if isinstance(exc, RateLimitedError) else None
                yield Sleep(min(pause or budget.first_nap * 2**attempt, MAX_RETRY_AFTER))
            continue
        handle = ctx.handle(job_id, kind, key, attached=False)
        observers.submitted(handle, spec)
        return handle
    raise AssertionError("unreachable")  # pragma: no cover


def _reattachable(snap: JobSnapshot) -> bool:
    # identity.reusable judges the status; a job Domino marked completed under a status we do not
    # know is finished without a known success, so it is never reattached either.
    return reusable(snap) and (snap.is_success or not snap.is_terminal)


def _refused(exc: DominoError) -> bool:
    """Whether a failed start certainly created nothing: rate limited, or never sent."""
    return isinstance(exc, RateLimitedError) or (isinstance(exc, TransportError) and not exc.sent)


def _find_lost_start(
    ctx: Context, kind: str, key: str, known: set[str], budget: RetryBudget, lost: DominoError
) -> Flow:
    """The execution a start with a lost answer created, looked up over ``LOST_START_LOOKUPS``."""
    waited = 0.0
    for at in LOST_START_LOOKUPS[:1] if _refused(lost) else LOST_START_LOOKUPS:
        if at > waited:
            yield Sleep(at - waited)
            waited = at
        matches = yield from _retried(budget, lambda: find_by_key_flow(ctx, kind, key),
                                      "Looking for a start whose answer was lost")
        fresh = [snap for snap in matches if snap.job_id not in known]
        if fresh:
            return fresh[0]
    return None


# --- wait --------------------------------------------------------------------------------------


class LogStream:
    """Both cursors of one job (setup log, stdout) and the tail kept for error messages.

    Stdout trouble never ends a wait or changes a verdict: a failed fetch is reported (a notice,
    once per kind of failure) and the wait goes on."""

    def __init__(self, ctx: Context, handle: JobHandle, opts: PollOptions, observers: Observers):
        self.ctx, self.handle, self.opts, self.observers = ctx, handle, opts, observers
        name = f"The output of Domino job {handle.job_id}"
        self.stdout = LogCursor("stdout", self._cursor_notice, name)
        self.setup = LogCursor("setup", self._cursor_notice, f"The setup log of {handle.job_id}")
        self.tail: deque[str] = deque(maxlen=opts.tail_lines)
        self.secrets = ctx.secrets()
        self._reported: set[tuple[str, int | None]] = set()
        # Messages the job reports on its stdout (core/messages.py), once per job and ledger.
        self.messages = MessageReader(handle.job_id, observers.ledger)

    def _cursor_notice(self, message: str) -> None:
        self.observers.notice(logging.WARNING, "%s", message)

    def fetch(self, final: bool, remaining: float | None = None) -> Flow:
        """Fetch the log and hand on its new lines; returns the log's size in characters.

        Domino resends the whole log every time, so the answer is streamed: the driver decodes
        it as it arrives (``api.StreamedObject``), the part already delivered streams past the
        cursor's checksum unkept, and each new line goes out once complete (``LogPass``). Memory
        holds a read's piece and the newest line, not the log. A log that is not append-only is
        fetched once more whole, for the cursor to find its place by content; a driver that does
        not stream sends the decoded JSON, read the same way."""
        owner, project = self.ctx.config.owner_and_project
        request = api.stdout(owner, project, self.handle.job_id)
        if not (self.opts.include_setup_log and not self.setup.finished):
            # (The setup log's lines come first, so until they are out the answer is read whole.)
            def begin() -> LogPass:
                return self.stdout.begin(self._deliver, final=final)

            request = replace(request, stream=lambda: api.StreamedObject("stdout", begin))
        text, reading, setup = yield from _read(request, _parse_streamed_stdout, remaining)
        if reading is not None and reading.resync:
            text, setup = yield from stdout_flow(self.ctx, self.handle.job_id, remaining)
            reading = None
        if self.opts.include_setup_log:
            for line in self.setup.feed(setup, final=True):
                self.observers.line(self._clean(line))
        del setup
        if reading is None:
            for line in self.stdout.feed(text, final=final):
                self._deliver(line)
        self.observers.fetched()
        return len(text) if reading is None else reading.size

    def _deliver(self, line: LogLine) -> None:
        line = self._clean(line)
        self.tail.append(line.text)
        self.observers.line(line)
        message = self.messages.feed(line)
        if message is not None:
            self.observers.message(message)

    def _clean(self, line: LogLine) -> LogLine:
        # Scrubbed at the source, so no log, error message or lineage event repeats a secret.
        clean = redact(line.text, self.secrets)
        return line if clean is line.text else LogLine(clean, line.stream)

    def _report(self, exc: DominoError, what: str) -> None:
        kind = (type(exc).__name__, getattr(exc, "status_code", None))
        if kind in self._reported:
            return
        self._reported.add(kind)
        self.observers.notice(logging.WARNING, "%s", self.ctx.scrub(
            f"Could not fetch {what} of Domino job {self.handle.job_id}: {exc}"))

    def fetch_live(self, remaining: float | None = None) -> Flow:
        """A fetch while the job runs; returns the log's size (0 when it could not be fetched)."""
        try:
            return (yield from self.fetch(final=False, remaining=remaining))
        except DominoError as exc:
            if _transient(exc):
                log.warning("Stdout of %s unavailable this time: %s", self.handle.job_id, exc)
            else:
                self._report(exc, "the output (still following the job; it is fetched again "
                                  "when the job ends)")
            return 0

    def fetch_final(self) -> Flow:
        """The last fetch after a terminal state: retried, since these are the lines that matter."""
        for attempt in range(self.opts.retry_count + 1):
            try:
                yield from self.fetch(final=True)
                return
            except DominoError as exc:
                if not _transient(exc) or attempt == self.opts.retry_count:
                    self._report(exc, "the final output (lines after the last fetch are "
                                      "missing from this log; see the job in Domino)")
                    return
                yield Sleep(min(5.0, 0.5 * 2**attempt))


def wait_flow(
    ctx: Context, handle: JobHandle, opts: PollOptions, observers: Observers,
    logs: LogStream | None = None,
) -> Flow:
    """Poll until terminal, streaming new stdout lines; stop the job on timeout.

    Returns the final snapshot on Succeeded; raises ``JobFailedError`` on Failed/Error/Stopped
    (or a completed job whose status is unknown), ``PollTimeoutError`` after ``max_poll_time``
    (also during an outage); tolerates ``retry_count`` consecutive transient errors. Pass
    ``logs`` to keep its cursor (an interrupt's stop fetches the rest of the output with it).

    Requests are budgeted (``RequestBudget``): the wait never sends more than python-domino's
    polling loop would for the same job, live stdout fetches included, unless ``log_interval``
    asks for live fetches at a pace of its own.
    """
    started = ctx.clock()
    schedule = PollSchedule(opts)
    # An explicit log_interval is the user's pace for live output, whatever it costs.
    budget = RequestBudget(opts.poll_freq) if opts.log_interval is None else None
    log_every = opts.log_interval or LIVE_FETCH_FIRST * opts.poll_freq
    # A job shorter than that gets its whole log in the one fetch after it ends.
    next_log_at = started + log_every
    retries = RetryBudget(opts.retry_count)  # the wait's one budget: consecutive failed polls
    last: JobSnapshot | None = None
    logs = logs or LogStream(ctx, handle, opts, observers)
    warned: set[tuple[str, bool]] = set()  # unknown statuses already reported
    status = status_request(ctx, handle)
    if handle.idempotency_key is not None and not handle.attached:
        # Started just now (not reattached): it cannot have ended yet, so the first poll waits
        # for the schedule instead of going out at once, as python-domino's does.
        if budget is not None:
            budget.just_started()
        yield Sleep(min(schedule.nap(0.0), opts.max_poll_time))
    while True:
        if budget is not None:
            budget.sent += 1
        try:
            snap = yield from get_flow(ctx, handle, opts.max_poll_time - (ctx.clock() - started),
                                       status)
        except DominoError as exc:
            try:
                retries.spend(exc)  # the pause between polls stays the poll interval
            except DominoError:
                if _transient(exc):
                    observers.notice(
                        logging.ERROR, "%s", ctx.scrub(
                            f"Giving up on following Domino job {handle.job_id} after "
                            f"{retries.failures + 1} consecutive errors ({exc}); it was not "
                            "stopped and may still be running: check it in Domino"))
                observers.finished(last, exc)
                raise
            log.warning("Status of %s unavailable (%d/%d): %s",
                        handle.job_id, retries.failures, retries.retries, exc)
            elapsed = ctx.clock() - started
            if elapsed >= opts.max_poll_time:
                timeout = yield from _on_timeout(ctx, handle, opts, elapsed, last, logs, exc)
                observers.finished(last, timeout)
                raise timeout from exc
            yield Sleep(max(0.0, min(_next_poll(schedule, budget, elapsed) - elapsed,
                                     opts.max_poll_time - elapsed)))
            continue
        retries.reset()
        if last is None or snap.raw_status != last.raw_status:
            observers.status(snap)
        observers.poll(snap)
        if snap.status is JobStatus.UNKNOWN and (snap.raw_status, snap.is_terminal) not in warned:
            warned.add((snap.raw_status, snap.is_terminal))
            observers.notice(logging.WARNING, "%s", _unknown_status_message(snap))
        last = snap
        now = ctx.clock()
        if snap.is_terminal:
            # stream_logs=False only skips the live fetches: the output still comes, once.
            yield from logs.fetch_final()
            if snap.is_success:
                observers.finished(snap, None)
                return snap
            error = _failed_error(snap, list(logs.tail))
            observers.finished(snap, error)
            raise error
        elapsed = now - started
        if budget is not None:
            budget.running_at(elapsed)
        started_running = snap.status.has_started or snap.status is JobStatus.UNKNOWN
        wants_output = opts.stream_logs and started_running and now >= next_log_at
        if wants_output and (budget is None or budget.fetch_fits()):
            if budget is not None:
                budget.sent += 1
            size = yield from logs.fetch_live(opts.max_poll_time - elapsed)
            if budget is not None:  # live output matters most early; later it comes rarer
                log_every = min(log_every * 2, LIVE_FETCH_LONGEST * opts.poll_freq)
            # Domino resends the whole log each time: space fetches of a big log further apart.
            next_log_at = now + max(log_every, size / LOG_CHARS_PER_SECOND)
            wants_output = False
        elif opts.stream_logs and started_running and budget is not None:
            # A fetch due by the next tick is paid for by letting that tick pass without a poll.
            wants_output = now + opts.poll_freq >= next_log_at
        if elapsed >= opts.max_poll_time:
            timeout = yield from _on_timeout(ctx, handle, opts, elapsed, snap, logs)
            observers.finished(last, timeout)
            raise timeout
        elapsed = ctx.clock() - started
        at = _next_poll(schedule, budget, elapsed, funding=wants_output)
        yield Sleep(max(0.0, min(at - elapsed, opts.max_poll_time - elapsed)))


#: The first live stdout fetch of a budgeted wait is due this many poll intervals after it began;
#: each later one waits twice as long as the last, up to ``LIVE_FETCH_LONGEST`` intervals.
LIVE_FETCH_FIRST = 6
LIVE_FETCH_LONGEST = 12


class RequestBudget:
    """The one request rule of a wait: never more requests than python-domino's loop would send
    for the same job, live stdout fetches included.

    python-domino polls at once and then every ``poll_freq``: ``official(t) = 1 + floor(t /
    poll_freq)`` polls by ``t`` seconds (it fetches stdout once at the end, as the wait does).
    A job seen running ``t`` seconds in ends later, so python-domino will have sent at least
    ``official(t) + 1`` polls for it. Hence the rule, keeping ``sent`` (this wait's polls and live
    fetches) within that minimum whenever the job may turn out to have ended:

    - a poll at ``t`` goes only if ``sent + 1 <= official(t)`` (if it sees the job running, the
      next poll still fits), so at most one poll precedes the first ``poll_freq``;
    - a live fetch goes only if ``sent + 1 <= official(seen)`` (``seen``: the last poll that saw
      the job running), leaving room for the poll that must follow.

    On the grid every poll spends what the time earned, so a live fetch is paid for by letting
    one grid tick pass without a poll: that tick's gap is ``2 * poll_freq``, the only time the
    end of a job may be seen later than ``poll_freq`` after it ended (see ``LIVE_FETCH_*``).
    """

    def __init__(self, poll_freq: float) -> None:
        self.poll_freq = poll_freq
        self.sent = 0
        self.seen = 0.0

    def just_started(self) -> None:
        """The wait follows a job started just now: it was running at 0 s (python-domino's first,
        immediate poll cannot see its end)."""
        self.seen = 0.0

    def official(self, elapsed: float) -> int:
        """python-domino's polls by ``elapsed`` seconds (it polls at once, then every poll_freq)."""
        return 1 + int(elapsed / self.poll_freq + 1e-9)

    def running_at(self, elapsed: float) -> None:
        """A poll ``elapsed`` seconds in saw the job still running."""
        self.seen = elapsed

    def fetch_fits(self) -> bool:
        """Whether a live stdout fetch fits now (right after a poll that saw the job running)."""
        return self.sent + 1 <= self.official(self.seen)

    def earliest_poll(self, funding: bool = False) -> float:
        """The earliest second the next poll fits; with ``funding``, the earliest after which a
        live fetch fits too."""
        return (self.sent + funding) * self.poll_freq


def _next_poll(schedule: PollSchedule, budget: RequestBudget | None, elapsed: float,
               funding: bool = False) -> float:
    """The second of the next poll: the schedule's, or its first point the budget allows, but
    never more than ``poll_freq`` away (two, when a live fetch is being paid for)."""
    at = schedule.next_poll(elapsed)
    if budget is not None:
        earliest = budget.earliest_poll(funding)
        if at < earliest:
            at = schedule.next_poll(earliest - 0.011)  # (a point within 10 ms counts as past)
            at = min(at, max(earliest, elapsed + (1 + funding) * budget.poll_freq))
    return at


class PollSchedule:
    """When a wait polls, in seconds since it began.

    Once early — ``initial_interval`` grown by ``backoff`` while under 0.6 × ``poll_freq``, the
    last such point (2.5 s by default) — so a short job returns fast (a 2 s job's end is seen
    within a second); then every ``poll_freq`` on a grid offset by ``initial_interval``. One early
    poll is what python-domino's request count allows (its first poll, at once, cannot see a
    just-started job end; see ``RequestBudget``). On the grid a job lasting a multiple of
    ``poll_freq`` is seen about ``initial_interval`` after it ends. The grid's phase is jittered
    (earlier only, by up to 5 % of ``poll_freq``) so followers started together spread out; no
    scheduled gap is longer than ``poll_freq``.
    """

    def __init__(self, opts: PollOptions) -> None:
        self.poll_freq = opts.poll_freq
        first = min(opts.initial_interval, opts.poll_freq) * random.uniform(0.9, 1.0)
        early = first
        gap = first
        while True:
            gap *= max(1.0, opts.backoff)
            if early + gap > 0.6 * opts.poll_freq or gap >= opts.poll_freq:
                break
            early += gap
        self.early = [early]
        self.grid = first + opts.poll_freq * (1 - random.uniform(0.0, 0.05))

    def next_poll(self, elapsed: float) -> float:
        """The first scheduled poll after ``elapsed`` seconds (one due within 10 ms counts as
        done: the poll that just returned was it)."""
        elapsed += 0.01
        for at in self.early:
            if at > elapsed:
                return at
        if elapsed < self.grid:
            return self.grid
        return self.grid + (int((elapsed - self.grid) / self.poll_freq) + 1) * self.poll_freq

    def nap(self, elapsed: float) -> float:
        """Seconds from ``elapsed`` to the next poll (never more than ``poll_freq``)."""
        return min(self.poll_freq, self.next_poll(elapsed) - elapsed)


def _unknown_status_message(snap: JobSnapshot) -> str:
    said = f"Domino reported status {snap.status_label!r} for job {snap.job_id}"
    if snap.is_terminal:
        return (f"{said}, which this client does not know, and marked the job completed: it is "
                "counted as a failure, since Domino did not say it succeeded.")
    return (f"{said}, which this client does not know; still following it until Domino reports "
            "a known final status or marks it completed.")


def _failed_error(snap: JobSnapshot, tail: list[str]) -> JobFailedError:
    error = JobFailedError(snap, tail)
    if snap.status is JobStatus.UNKNOWN:
        message = (f"Domino job {snap.job_id} completed with status {snap.status_label!r}, which "
                   "this client does not know; counted as a failure since Domino did not say "
                   "it succeeded")
        if snap.url:
            message += f" ({snap.url})"
        if tail:
            message += "; last lines of output:\n" + "\n".join(tail)
        error.args = (message,)
    return error


def timeout_error(
    job_id: str, opts: PollOptions, waited_s: float, last_status: str, stop_confirmed: bool | None,
    stdout_tail: list[str], stop_error: str | None = None, outage: str | None = None,
) -> PollTimeoutError:
    """``PollTimeoutError`` whose message names the knob that fired (``opts.timeout_name``: an
    integration renames it, e.g. Airflow's ``execution_timeout``) and what became of the job."""
    knob = opts.timeout_name
    error = PollTimeoutError(job_id, waited_s=waited_s, last_status=last_status or "unknown",
                             stop_confirmed=stop_confirmed, stdout_tail=stdout_tail)
    if stop_error is not None:
        outcome = (f"it could not be stopped ({stop_error}) and may still be running: check it "
                   "in Domino")
    elif stop_confirmed is None:
        outcome = "it was left running (stop_on_timeout=False)"
    elif stop_confirmed:
        outcome = "it was stopped (stop confirmed)"
    else:
        outcome = ("a stop was requested but not confirmed: it may still be running, check it "
                   "in Domino")
    during = f", the last of it while Domino could not be reached ({outage})" if outage else ""
    error.args = (
        f"Domino job {job_id} did not finish within {knob} ({opts.max_poll_time:g}s; waited "
        f"{waited_s:.0f}s{during}; last status {last_status or 'unknown'}); {outcome}. "
        f"Raise {knob} if it needs longer.",
    )
    error.knob = knob  # type: ignore[attr-defined]
    error.stop_error = stop_error  # type: ignore[attr-defined]
    return error


def _on_timeout(
    ctx: Context, handle: JobHandle, opts: PollOptions, elapsed: float, last: JobSnapshot | None,
    logs: LogStream, outage: DominoError | None = None,
) -> Flow:
    label = last.status_label if last is not None else "unknown"
    why = ctx.scrub(str(outage)) if outage is not None else None

    def error(status: str, confirmed: bool | None, stop_error: str | None = None) -> PollTimeoutError:
        return timeout_error(handle.job_id, opts, elapsed, status, confirmed, list(logs.tail),
                             stop_error, why)

    if not opts.stop_on_timeout:
        return error(label, None)
    try:
        final = yield from stop_flow(ctx, handle, commit_results=True, timeout=opts.stop_timeout)
    except StopNotConfirmedError as exc:
        return error(exc.last_status, False)
    except DominoError as exc:
        return error(label, False, ctx.scrub(str(exc)))
    yield from logs.fetch_final()
    stopped = error(final.status_label, True)
    stopped.snapshot = final  # type: ignore[attr-defined]  # the stopped job's times, for lineage
    return stopped


def interrupt_stop_flow(
    ctx: Context, handle: JobHandle, opts: PollOptions, exc: BaseException, observers: Observers,
    logs: LogStream | None = None,
) -> Flow:
    """Stop a job whose follower was interrupted, confirm it, then fetch the rest of its output
    (lines printed before the stop), reporting each step; never raises (the interrupt wins)."""
    observers.notice(logging.WARNING, "Interrupted (%s): stopping Domino job %s",
                     type(exc).__name__, handle.job_id)
    try:
        final = yield from stop_flow(ctx, handle, True, opts.stop_timeout)
    except DominoError as error:
        observers.notice(logging.ERROR, "%s", ctx.scrub(
            f"Could not confirm the stop of Domino job {handle.job_id}: {error}"))
        observers.finished(None, error)
        return
    observers.notice(logging.WARNING, "Domino job %s stopped (%s)", handle.job_id,
                     final.status_label)
    if logs is not None:
        yield from logs.fetch_final()
    observers.finished(final, exc)


def stop_flow(ctx: Context, handle: JobHandle, commit_results: bool, timeout: float) -> Flow:
    """Request a stop, then confirm a terminal state within ``timeout`` seconds."""
    pid = yield from project_id_flow(ctx)
    started = ctx.clock()
    nap = 0.5
    while True:  # the stop itself is retried within the same bound (stopping twice is harmless)
        try:
            yield from _read(api.job_stop(pid, handle.job_id, commit_results), lambda body: None)
            break
        except DominoError as exc:
            if not _transient(exc) or ctx.clock() - started + nap > timeout:
                raise
            yield Sleep(nap)
            nap = min(4.0, nap * 2)
    snap: JobSnapshot | None = None
    nap = 0.2
    while True:
        try:
            snap = yield from get_flow(ctx, handle)
        except DominoError as exc:
            if not _transient(exc):
                raise
        if snap is not None and snap.is_terminal:
            return snap
        waited = ctx.clock() - started
        if waited >= timeout:
            raise StopNotConfirmedError(
                handle.job_id, last_status=snap.status_label if snap else "unknown", waited_s=waited
            )
        yield Sleep(min(nap, max(0.0, timeout - waited)))
        nap = min(2.0, nap * 1.5)
