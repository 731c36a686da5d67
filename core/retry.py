"""When to re-send a request, and how long to wait first: decided here, driven by the transports.

Two layers, as in the AWS SDKs' "standard" retry mode:

- ``RetryPolicy`` (a frozen value that crosses the Airflow trigger boundary via ``to_dict``):
  per-request tries. Reads are retried on 429, 5xx, unreadable bodies, connection errors and
  timeouts, with exponential backoff and full jitter; a ``Retry-After`` wins over the backoff but
  never beyond ``max_retry_after``. A request marked ``retry=False`` (a job start) is re-sent only
  when it never left this machine. No wait is ever longer than what the caller has ``remaining``.
- ``RetryQuota`` (``QUOTA``, one per process, shared by every client, sync and async): a token
  bucket. A retry costs ``retry_cost`` tokens (``timeout_cost`` after a timeout or dropped
  connection), a success refunds what its retry cost (or ``success_refund`` on a first-try
  success). When the bucket is empty, failures are returned at once instead of retried, so an
  outage cannot multiply a process's traffic by the retry count. It also refills slowly with time
  so a long-lived worker recovers after a quiet outage.

This module decides; it never sleeps or sends. ``next_wait`` is the one decision both transports
call; a whole operation (a start, a wait) can pass its own remaining budget as ``remaining``.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from .api import MAX_RETRY_AFTER, ApiRequest
from .errors import RateLimitedError, ServerError, TransportError

__all__ = ["QUOTA", "RetryPolicy", "RetryQuota", "capped_wait"]

log = logging.getLogger("domino_orchestrate")


def capped_wait(seconds: float, remaining: float | None = None,
                cap: float = MAX_RETRY_AFTER) -> float:
    """``seconds`` made safe to sleep: finite, >= 0, at most ``cap`` and what is ``remaining``."""
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
        seconds = 0.0
    seconds = min(float(seconds), cap)
    if remaining is not None:
        seconds = min(seconds, max(0.0, remaining))
    return seconds


class RetryQuota:
    """A process-wide token bucket for retries (AWS SDK standard mode: 500 tokens, 5 per retry,
    10 per retry after a timeout, a success refunds its retry's cost or adds 1). Thread-safe."""

    def __init__(
        self, capacity: float = 500, retry_cost: float = 5, timeout_cost: float = 10,
        success_refund: float = 1, refill_per_second: float = 500 / 600,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.retry_cost = retry_cost
        self.timeout_cost = timeout_cost
        self.success_refund = success_refund
        self.refill_per_second = refill_per_second
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = capacity
        self._stamp = clock()
        self._warned = False

    @property
    def tokens(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity,
                           self._tokens + (now - self._stamp) * self.refill_per_second)
        self._stamp = now

    def acquire(self, error: BaseException) -> float:
        """Take the cost of one retry after ``error``; 0 when the bucket cannot pay (no retry)."""
        cost = self.timeout_cost if isinstance(error, TransportError) else self.retry_cost
        with self._lock:
            self._refill()
            if self._tokens < cost:
                warn, self._warned = not self._warned, True
            else:
                self._tokens -= cost
                self._warned = False
                return cost
        if warn:
            log.warning("Retry quota of this process exhausted (Domino keeps failing): errors are "
                        "returned without retrying until requests succeed again")
        return 0.0

    def succeeded(self, cost: float = 0.0) -> None:
        """A request succeeded; ``cost`` is what its last retry took (0 for a first try)."""
        if not cost and self._tokens >= self.capacity:
            return  # the usual case, on every poll: nothing to add, no lock to take
        with self._lock:
            self._refill()
            self._tokens = min(self.capacity, self._tokens + (cost or self.success_refund))

    def reset(self) -> None:
        """Refill the quota (tests; a new process starts full anyway)."""
        with self._lock:
            self._tokens = self.capacity
            self._stamp = self._clock()
            self._warned = False


#: The one quota of this process.
QUOTA = RetryQuota()
if hasattr(os, "register_at_fork"):  # a lock held in the parent at fork time stays held
    os.register_at_fork(after_in_child=lambda: setattr(QUOTA, "_lock", threading.Lock()))


@dataclass(frozen=True)
class RetryPolicy:
    """How failed requests are retried: how often, and how long to wait between tries.

    Waits grow exponentially from ``initial_wait`` to ``max_wait`` with jitter; a server's
    ``Retry-After`` is honoured up to ``max_retry_after`` seconds.
    """
    #: Retries after the first try (python-domino's DOMINO_MAX_RETRIES, default 4).
    max_retries: int = 4
    initial_wait: float = 0.5
    max_wait: float = 30.0
    #: Upper bound on a server-requested Retry-After.
    max_retry_after: float = MAX_RETRY_AFTER

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of the fields (what ``from_dict`` reads back)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetryPolicy:
        """A ``RetryPolicy`` from ``to_dict``'s output."""
        return cls(**data)

    def wait_seconds(self, attempt: int, error: BaseException | None) -> float:
        """The pause after failed try number ``attempt`` (1-based)."""
        asked = getattr(error, "retry_after", None)  # a 429's or a 503's Retry-After
        if isinstance(error, (RateLimitedError, ServerError)) and asked is not None:
            return capped_wait(asked, cap=self.max_retry_after)
        ceiling = min(self.max_wait, self.initial_wait * (2 ** max(0, attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)

    @staticmethod
    def should_retry(req: ApiRequest, exc: BaseException) -> bool:
        """Whether ``exc`` may be retried for ``req``: a retryable error of a read, or of a start
        that provably never reached Domino (a start is never sent twice otherwise).
        """
        if not getattr(exc, "retryable", False):
            return False
        if req.retry:
            return True
        # A start is re-sent only if it provably never reached Domino.
        return isinstance(exc, TransportError) and not exc.sent

    def next_wait(
        self, req: ApiRequest, exc: BaseException, attempt: int, *,
        remaining: float | None = None, quota: RetryQuota | None = None,
    ) -> tuple[float, float] | None:
        """After failed try number ``attempt`` (1-based): ``(seconds to wait, quota cost)`` before
        the next try, or None to give up and raise ``exc``.

        Gives up when the error is not retryable, the tries are used up, the wait would not end
        before ``remaining`` seconds (the caller's budget) run out, or the process's quota
        (``QUOTA`` unless ``quota`` is given) cannot pay for another retry.
        """
        if attempt > self.max_retries or not self.should_retry(req, exc):
            return None
        seconds = self.wait_seconds(attempt, exc)
        if remaining is not None and seconds >= remaining:
            return None
        cost = (QUOTA if quota is None else quota).acquire(exc)
        if not cost:
            return None
        log.warning("Retrying %s %s in %.1fs (attempt %d/%d) after: %s",
                    req.method, req.path, seconds, attempt + 1, self.max_retries + 1, exc)
        return seconds, cost
