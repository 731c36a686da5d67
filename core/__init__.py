"""domino_orchestrate.core: the Domino client, polling engine, log streaming and idempotent start.

Everything an integration needs is importable from here; no orchestrator is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import Credentials, DominoConfig
from .errors import (
    AuthenticationError,
    BadRequestError,
    CertificateError,
    ConfigurationError,
    DominoAPIError,
    DominoError,
    InvalidResponseError,
    JobFailedError,
    JobNotFoundError,
    NotFoundError,
    PollTimeoutError,
    ProjectNotFoundError,
    RateLimitedError,
    RedirectError,
    ServerError,
    StopNotConfirmedError,
    TransportError,
)
from .flows import idempotency_key, tagged_title
from .models import HardwareTier, JobHandle, JobSnapshot, JobSpec, LogLine, PollOptions, RunSpec
from .observe import Observers
from .status import JobStatus
from .stdout import LogCursor, parse_log, strip_html

if TYPE_CHECKING:
    from .client import AsyncDominoClient, DominoClient
    from .retry import RetryPolicy

__all__ = [
    "AsyncDominoClient",
    "AuthenticationError",
    "BadRequestError",
    "CertificateError",
    "ConfigurationError",
    "Credentials",
    "DominoAPIError",
    "DominoClient",
    "DominoConfig",
    "DominoError",
    "HardwareTier",
    "InvalidResponseError",
    "JobFailedError",
    "JobHandle",
    "JobNotFoundError",
    "JobSnapshot",
    "JobSpec",
    "JobStatus",
    "LogCursor",
    "LogLine",
    "NotFoundError",
    "Observers",
    "PollOptions",
    "PollTimeoutError",
    "ProjectNotFoundError",
    "RateLimitedError",
    "RedirectError",
    "RetryPolicy",
    "RunSpec",
    "ServerError",
    "StopNotConfirmedError",
    "TransportError",
    "idempotency_key",
    "parse_log",
    "strip_html",
    "tagged_title",
]


def __getattr__(name: str) -> Any:
    # The clients pull in requests/tenacity; load them only when used (cheap DAG-file imports).
    if name in {"DominoClient", "AsyncDominoClient"}:
        from . import client

        return getattr(client, name)
    if name == "RetryPolicy":
        from .retry import RetryPolicy

        return RetryPolicy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
