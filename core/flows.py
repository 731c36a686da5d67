"""Every multi-step operation, written once as a generator with no I/O (h11 / httpx-auth style).

A flow yields ``ApiRequest`` (and is sent the decoded JSON, or has the typed error thrown in) or
``Sleep`` (and is sent ``None``). ``client.DominoClient`` drives flows with requests and
``time.sleep``; ``client.AsyncDominoClient`` with httpx and ``asyncio.sleep``. So polling, log
streaming, idempotent start and stop-and-confirm have one implementation, and tests can step them.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

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
from .models import HardwareTier, JobHandle, JobSnapshot, JobSpec, LogLine, PollOptions, RunSpec
from .observe import Observers
from .stdout import LogCursor

__all__ = ["Context", "Flow", "idempotency_key", "tagged_title"]

log = logging.getLogger("domino_orchestrate")

Flow = Generator[ApiRequest | Sleep, Any, Any]
_KEY_PREFIX = "[do:"
#: Pages of the jobs list scanned for an idempotency key (newest first).
LOOKUP_PAGES = 5
LOOKUP_PAGE_SIZE = 100
#: Stdout fetch budget while running: a 100 MB log is fetched about every 25 s, not every poll.
LOG_CHARS_PER_SECOND = 4_000_000
#: How often a start whose response was lost is looked up and re-sent.
LOST_START_RETRIES = 4


@dataclass
class Context:
    """Per-client state the flows read: config, clock, and the cached project id."""

    config: DominoConfig
    clock: Callable[[], float] = time.monotonic
    project_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def url(self, job_id: str) -> str | None:
        try:
            return self.config.job_url(job_id)
        except ConfigurationError:
            return None

    def handle(self, job_id: str, kind: str, key: str | None, attached: bool) -> JobHandle:
        return JobHandle(
            job_id=job_id, kind=kind,  # type: ignore[arg-type]
            project=self.config.project, url=self.url(job_id),
            idempotency_key=key, attached=attached,
        )


# --- idempotency keys --------------------------------------------------------------------------


def tagged_title(title: str | None, key: str) -> str:
    """Domino has no server-side idempotency key, so the key rides in the job title."""
    tag = f"{_KEY_PREFIX}{key}]"
    return f"{title} {tag}" if title else tag


def _has_key(title: str | None, key: str) -> bool:
    return bool(title) and f"{_KEY_PREFIX}{key}]" in title  # type: ignore[operator]


# --- small flows -------------------------------------------------------------------------------


def project_id_flow(ctx: Context) -> Flow:
    if ctx.project_id is None:
        owner, project = ctx.config.owner_and_project
        body = yield api.find_project(owner, project)
        if not isinstance(body, dict) or not body.get("id"):
            raise ProjectNotFoundError(
                f"Domino project {owner}/{project} not found (no id in the answer)",
                status_code=200, method="GET", path="/v4/gateway/projects/findProjectByOwnerAndName",
            )
        ctx.project_id = str(body["id"])
    return ctx.project_id


def get_flow(ctx: Context, handle: JobHandle) -> Flow:
    if handle.kind == "run":
        owner, project = ctx.config.owner_and_project
        body = yield api.run_get(owner, project, handle.job_id)
        return JobSnapshot.from_v1(body, ctx.url(handle.job_id))
    body = yield api.job_get(handle.job_id)
    return JobSnapshot.from_v4(body, ctx.url(handle.job_id))


def hardware_tiers_flow(ctx: Context) -> Flow:
    pid = yield from project_id_flow(ctx)
    body = yield api.hardware_tiers(pid)
    tiers = []
    for item in body or []:
        tier = item.get("hardwareTier", item) if isinstance(item, dict) else {}
        flags = tier.get("hwtFlags") or {}
        tiers.append(HardwareTier(str(tier.get("id")), str(tier.get("name")), bool(flags.get("isDefault"))))
    return tiers


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


def stdout_flow(ctx: Context, job_id: str) -> Flow:
    owner, project = ctx.config.owner_and_project
    body = yield api.stdout(owner, project, job_id)
    if not isinstance(body, dict) or "stdout" not in body:
        raise InvalidResponseError(
            f"Domino stdout for {job_id} has no 'stdout' field", status_code=200,
            method="GET", path="stdout",
        )
    return body


def find_by_key_flow(ctx: Context, kind: str, key: str) -> Flow:
    """All executions whose title carries ``key``, newest first."""
    found: list[JobSnapshot] = []
    if kind == "run":
        owner, project = ctx.config.owner_and_project
        body = yield api.runs_list(owner, project)
        for item in (body or {}).get("data") or []:
            if _has_key(item.get("title"), key):
                found.append(JobSnapshot.from_v1(item, ctx.url(str(item.get("id")))))
        return found
    pid = yield from project_id_flow(ctx)
    for page in range(1, LOOKUP_PAGES + 1):
        body = yield api.jobs_list(pid, page_size=LOOKUP_PAGE_SIZE, page_no=page)
        jobs = (body or {}).get("jobs") or []
        for item in jobs:
            if _has_key(item.get("title"), key):
                found.append(JobSnapshot.from_v4(item, ctx.url(str(item.get("id")))))
        if len(jobs) < LOOKUP_PAGE_SIZE:
            break
    return found


# --- start -------------------------------------------------------------------------------------

_LOST = (TransportError, ServerError, InvalidResponseError, RateLimitedError)


def new_key() -> str:
    return uuid.uuid4().hex[:20]


def start_flow(
    ctx: Context, spec: JobSpec | RunSpec, key: str, observers: Observers, look_first: bool = True
) -> Flow:
    """Start once per key: reuse a running or succeeded execution, never create two.

    ``look_first=False`` skips the initial lookup for a key made up just now (it cannot exist).
    """
    kind = "run" if isinstance(spec, RunSpec) else "job"
    title = tagged_title(spec.title, key)
    known: set[str] = set()
    if look_first:
        earlier = yield from find_by_key_flow(ctx, kind, key)
        known = {snap.job_id for snap in earlier}
        # One rule (core/identity.py): reattach to a running or succeeded job, never a failed
        # or stopping one.
        if earlier and reusable(earlier[0]):
            latest = earlier[0]
            log.info("Reattaching to Domino %s %s (%s) for key %s",
                     kind, latest.job_id, latest.raw_status, key)
            handle = ctx.handle(latest.job_id, kind, key, attached=True)
            observers.submitted(handle, spec)
            return handle
    if isinstance(spec, RunSpec):
        owner, project = ctx.config.owner_and_project
        request = api.run_start(owner, project, spec, title)
    else:
        pid = yield from project_id_flow(ctx)
        tier_id = yield from resolve_tier_flow(ctx, spec)
        request = api.job_start(pid, spec, title, tier_id)
    for attempt in range(LOST_START_RETRIES + 1):
        try:
            body = yield request
        except _LOST as exc:
            # The start may or may not have reached Domino: look before re-sending.
            log.warning("Start of a Domino %s got no usable answer (%s); checking before retrying",
                        kind, exc)
            matches = yield from find_by_key_flow(ctx, kind, key)
            fresh = [snap for snap in matches if snap.job_id not in known]
            if fresh:
                handle = ctx.handle(fresh[0].job_id, kind, key, attached=False)
                observers.submitted(handle, spec)
                return handle
            if attempt == LOST_START_RETRIES:
                raise
            delay = exc.retry_after if isinstance(exc, RateLimitedError) and exc.retry_after else None
            yield Sleep(delay if delay is not None else min(8.0, 0.5 * 2**attempt))
            continue
        job_id = (body or {}).get("runId" if kind == "run" else "id") or (body or {}).get("id")
        if not job_id:
            raise InvalidResponseError(
                f"Domino's start answer has no job id: {api.excerpt(str(body))!r}",
                status_code=200, method=request.method, path=request.path,
            )
        handle = ctx.handle(str(job_id), kind, key, attached=False)
        observers.submitted(handle, spec)
        return handle
    raise AssertionError("unreachable")  # pragma: no cover


# --- wait --------------------------------------------------------------------------------------


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, DominoError) and exc.retryable


class _LogStream:
    """Both cursors of one job (setup log, stdout) and the tail kept for error messages."""

    def __init__(self, ctx: Context, handle: JobHandle, opts: PollOptions, observers: Observers):
        self.ctx, self.handle, self.opts, self.observers = ctx, handle, opts, observers
        self.stdout = LogCursor("stdout")
        self.setup = LogCursor("setup")
        self.tail: deque[str] = deque(maxlen=opts.tail_lines)
        self.secrets = ctx.config.credentials.secrets()

    def fetch(self, final: bool) -> Flow:
        """Fetch the log and hand on its new lines; returns the log's size in characters."""
        body = yield from stdout_flow(self.ctx, self.handle.job_id)
        if self.opts.include_setup_log:
            for line in self.setup.feed(str(body.get("setup") or ""), final=True):
                self.observers.line(self._clean(line))
        text = str(body.get("stdout") or "")
        del body  # the cursor is the only holder of the (possibly huge) log from here on
        for line in self.stdout.feed(text, final=final):
            line = self._clean(line)
            self.tail.append(line.text)
            self.observers.line(line)
        return len(text)

    def _clean(self, line: LogLine) -> LogLine:
        # Scrubbed at the source, so no log, error message or lineage event repeats a secret.
        clean = redact(line.text, self.secrets)
        return line if clean is line.text else LogLine(clean, line.stream)

    def fetch_final(self) -> Flow:
        """The last fetch after a terminal state: retried, since these are the lines that matter."""
        for attempt in range(self.opts.retry_count + 1):
            try:
                yield from self.fetch(final=True)
                return
            except DominoError as exc:
                if not _transient(exc) or attempt == self.opts.retry_count:
                    log.warning("Could not fetch the final stdout of %s: %s", self.handle.job_id, exc)
                    return
                yield Sleep(min(5.0, 0.5 * 2**attempt))


def wait_flow(ctx: Context, handle: JobHandle, opts: PollOptions, observers: Observers) -> Flow:
    """Poll until terminal, streaming new stdout lines; stop the job on timeout.

    Returns the final snapshot on Succeeded; raises ``JobFailedError`` on Failed/Error/Stopped,
    ``PollTimeoutError`` after ``max_poll_time``; tolerates ``retry_count`` consecutive transient
    errors.
    """
    started = ctx.clock()
    interval = min(opts.initial_interval, opts.poll_freq)
    # Stdout is the big response: by default fetch it every other poll (final flush aside), so
    # following a job costs about as many requests as python-domino's blind polling.
    log_every = opts.log_interval or 2 * opts.poll_freq
    # A job shorter than that gets its whole log in the one fetch after it ends.
    next_log_at = started + log_every
    failures = 0
    last: JobSnapshot | None = None
    logs = _LogStream(ctx, handle, opts, observers)
    while True:
        try:
            snap = yield from get_flow(ctx, handle)
        except DominoError as exc:
            if not _transient(exc):
                observers.finished(last, exc)
                raise
            failures += 1
            if failures > opts.retry_count:
                log.error("Giving up on %s after %d consecutive errors", handle.job_id, failures)
                observers.finished(last, exc)
                raise
            log.warning("Status of %s unavailable (%d/%d): %s",
                        handle.job_id, failures, opts.retry_count, exc)
            yield Sleep(interval)
            continue
        failures = 0
        if last is None or snap.raw_status != last.raw_status:
            observers.status(snap)
        last = snap
        now = ctx.clock()
        if snap.is_terminal:
            if opts.stream_logs:
                yield from logs.fetch_final()
            if snap.status.is_success:
                observers.finished(snap, None)
                return snap
            error = JobFailedError(snap, list(logs.tail))
            observers.finished(snap, error)
            raise error
        if opts.stream_logs and snap.status.has_started and now >= next_log_at:
            size = 0
            try:
                size = yield from logs.fetch(final=False)
            except DominoError as exc:
                if not _transient(exc):
                    raise
                log.warning("Stdout of %s unavailable this time: %s", handle.job_id, exc)
            # Domino resends the whole log each time: space fetches of a big log further apart.
            next_log_at = now + max(log_every, size / LOG_CHARS_PER_SECOND)
        elapsed = now - started
        if elapsed >= opts.max_poll_time:
            timeout = yield from _on_timeout(ctx, handle, opts, elapsed, snap, logs)
            observers.finished(last, timeout)
            raise timeout
        # Jitter only shortens the nap, so a job's end is never seen later than poll_freq.
        nap = min(interval * random.uniform(0.9, 1.0), opts.max_poll_time - elapsed)
        interval = min(opts.poll_freq, interval * opts.backoff)
        yield Sleep(max(0.0, nap))


def _on_timeout(
    ctx: Context, handle: JobHandle, opts: PollOptions, elapsed: float, snap: JobSnapshot,
    logs: _LogStream,
) -> Flow:
    if not opts.stop_on_timeout:
        return PollTimeoutError(
            handle.job_id, waited_s=elapsed, last_status=snap.raw_status, stop_confirmed=None,
            stdout_tail=list(logs.tail),
        )
    try:
        final = yield from stop_flow(ctx, handle, commit_results=True, timeout=opts.stop_timeout)
    except StopNotConfirmedError as exc:
        return PollTimeoutError(
            handle.job_id, waited_s=elapsed, last_status=exc.last_status, stop_confirmed=False,
            stdout_tail=list(logs.tail),
        )
    if opts.stream_logs:
        yield from logs.fetch_final()
    return PollTimeoutError(
        handle.job_id, waited_s=elapsed, last_status=final.raw_status, stop_confirmed=True,
        stdout_tail=list(logs.tail),
    )


def stop_flow(ctx: Context, handle: JobHandle, commit_results: bool, timeout: float) -> Flow:
    """Request a stop, then confirm a terminal state within ``timeout`` seconds."""
    pid = yield from project_id_flow(ctx)
    yield api.job_stop(pid, handle.job_id, commit_results)
    started = ctx.clock()
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
                handle.job_id, last_status=snap.raw_status if snap else "unknown", waited_s=waited
            )
        yield Sleep(min(nap, max(0.0, timeout - waited)))
        nap = min(2.0, nap * 1.5)
