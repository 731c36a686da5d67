"""One retry policy for both transports, as a value (tenacity stop/wait/retry objects).

Reads are retried on 429, 5xx, unreadable bodies, connection errors and timeouts, with
exponential backoff and full jitter; a ``Retry-After`` header wins over the backoff. A request
marked ``retry=False`` (a job start) is re-sent only when it never left this machine.
"""

from __future__ import annotations

import logging
import random
from dataclasses import asdict, dataclass
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
)

from .api import ApiRequest
from .errors import RateLimitedError, TransportError

__all__ = ["RetryPolicy"]

log = logging.getLogger("domino_orchestrate")


@dataclass(frozen=True)
class RetryPolicy:
    #: Retries after the first try (python-domino's DOMINO_MAX_RETRIES, default 4).
    max_retries: int = 4
    initial_wait: float = 0.5
    max_wait: float = 30.0
    #: Upper bound on a server-requested Retry-After.
    max_retry_after: float = 120.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetryPolicy:
        return cls(**data)

    def wait_seconds(self, attempt: int, error: BaseException | None) -> float:
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            return min(error.retry_after, self.max_retry_after)
        ceiling = min(self.max_wait, self.initial_wait * (2 ** max(0, attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)

    @staticmethod
    def should_retry(req: ApiRequest, exc: BaseException) -> bool:
        if not getattr(exc, "retryable", False):
            return False
        if req.retry:
            return True
        # A start is re-sent only if it provably never reached Domino.
        return isinstance(exc, TransportError) and not exc.sent

    def first_wait(self, req: ApiRequest, first: BaseException) -> float:
        """The pause before the second try; tenacity paces the tries after it."""
        seconds = self.wait_seconds(1, first)
        log.warning("Retrying %s %s in %.1fs (attempt 2/%d) after: %s",
                    req.method, req.path, seconds, self.max_retries + 1, first)
        return seconds

    def _kwargs(self, req: ApiRequest, first: BaseException) -> dict[str, Any]:
        """Tenacity settings for the retries after a first failed try (``first``)."""
        if self.max_retries == 0:
            raise first

        def retryable(exc: BaseException) -> bool:
            return self.should_retry(req, exc)

        def wait(state: RetryCallState) -> float:
            # Attempt 1 of this controller is the second try overall.
            error = state.outcome.exception() if state.outcome else None
            return self.wait_seconds(state.attempt_number + 1, error)

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "Retrying %s %s in %.1fs (attempt %d/%d) after: %s",
                req.method, req.path, state.upcoming_sleep, state.attempt_number + 2,
                self.max_retries + 1, error,
            )

        return {
            "stop": stop_after_attempt(self.max_retries),
            "wait": wait,
            "retry": retry_if_exception(retryable),
            "before_sleep": before_sleep,
            "reraise": True,
        }

    def retrying(self, req: ApiRequest, first: BaseException, **overrides: Any) -> Retrying:
        return Retrying(**{**self._kwargs(req, first), **overrides})

    def async_retrying(
        self, req: ApiRequest, first: BaseException, **overrides: Any
    ) -> AsyncRetrying:
        return AsyncRetrying(**{**self._kwargs(req, first), **overrides})
