"""The exception tree. Every error the core raises is a ``DominoError``::

    DominoError
    ├── ConfigurationError        missing host/credentials, conflicting or invalid options
    ├── TransportError            connection refused/reset, request timeout (retryable)
    │   └── CertificateError      TLS verification failed: fix the CA bundle (not retried)
    ├── DominoAPIError            .status_code .method .path .excerpt
    │   ├── BadRequestError       400/405/422: the request was wrong, fix the input
    │   ├── AuthenticationError   401/403/409: credentials missing, wrong or expired
    │   ├── NotFoundError         404
    │   │   ├── ProjectNotFoundError
    │   │   └── JobNotFoundError
    │   ├── RateLimitedError      429, .retry_after
    │   ├── RedirectError         3xx Domino would not follow: another origin, .location
    │   ├── ServerError           5xx (retryable)
    │   └── InvalidResponseError  an HTML page or malformed JSON where JSON was expected
    ├── JobFailedError            the job ended Failed, Error or Stopped; .snapshot .stdout_tail
    ├── PollTimeoutError          max_poll_time passed; .stop_confirmed says if the job was stopped
    └── StopNotConfirmedError     a stop was requested but the job did not reach a terminal state

Messages say what to fix. No message, attribute or repr ever holds an API key or token: requests
carry credentials only in headers, and exceptions quote only method, path and a body excerpt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import JobSnapshot

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "CertificateError",
    "ConfigurationError",
    "DominoAPIError",
    "DominoError",
    "InvalidResponseError",
    "JobFailedError",
    "JobNotFoundError",
    "NotFoundError",
    "PollTimeoutError",
    "ProjectNotFoundError",
    "RateLimitedError",
    "RedirectError",
    "ServerError",
    "StopNotConfirmedError",
    "TransportError",
]


class DominoError(Exception):
    """Root of every error raised by domino-orchestrate."""

    retryable: bool = False

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors defeat Exception's default pickling; rebuild from the
        # message and fields instead, so errors cross process pools and run_deployment intact.
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(cls: type[DominoError], args: tuple[Any, ...], state: dict[str, Any]) -> DominoError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ConfigurationError(DominoError, ValueError):
    """The client was configured wrongly; the message names the option to fix."""


class TransportError(DominoError):
    """The request did not get an HTTP answer (connection refused/reset, timeout)."""

    retryable = True

    def __init__(self, message: str, *, method: str = "", path: str = "", sent: bool = True):
        super().__init__(message)
        self.method = method
        self.path = path
        #: False when the failure happened before the request reached the server.
        self.sent = sent


class CertificateError(TransportError):
    """Domino's TLS certificate could not be verified. Retrying cannot help: the message says
    how to trust it (a CA bundle path in ``verify`` / ``DOMINO_VERIFY_CERTIFICATE``)."""

    retryable = False


class DominoAPIError(DominoError):
    """Domino answered with an error status or an unreadable body."""

    def __init__(
        self, message: str, *, status_code: int, method: str = "", path: str = "", excerpt: str = ""
    ):
        super().__init__(message)
        self.status_code = status_code
        self.method = method
        self.path = path
        self.excerpt = excerpt


class BadRequestError(DominoAPIError):
    """Domino rejected the request as invalid (HTTP 400): the message says which field."""
    pass


class AuthenticationError(DominoAPIError):
    """Domino refused the credentials (HTTP 401/403): check the API key, token or proxy."""
    pass


class NotFoundError(DominoAPIError):
    """Domino has no such object (HTTP 404)."""
    pass


class ProjectNotFoundError(NotFoundError):
    """The project ``owner/name`` does not exist or the credentials cannot see it."""
    pass


class JobNotFoundError(NotFoundError):
    """The job or run id is unknown to Domino (or in another project)."""
    pass


class RateLimitedError(DominoAPIError):
    """Domino asked to slow down (HTTP 429); ``retry_after`` is the wait it asked for, if any.

    Retried automatically within the retry budget.
    """
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object):
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class RedirectError(DominoAPIError):
    """Domino answered with a redirect the client will not follow: to another origin (which
    would receive the credentials) or without a usable ``Location``. ``.location`` is the target
    with any credentials removed."""

    def __init__(self, message: str, *, location: str = "", **kwargs: object):
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.location = location


class ServerError(DominoAPIError):
    """Domino (or a proxy in front of it) failed (HTTP 5xx); retried automatically."""
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object):
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        #: Seconds a 503 asked to wait (``Retry-After``), capped; None when it did not say.
        self.retry_after = retry_after


class InvalidResponseError(DominoAPIError):
    """Domino answered with something the API does not return (wrong shape, HTML, truncated).

    The message names the endpoint; retried, since a restarting backend often causes it.
    """
    # A proxy's HTML page or a truncated body is usually transient (a restarting backend).
    retryable = True


class JobFailedError(DominoError):
    """The job reached a terminal state other than Succeeded."""

    def __init__(self, snapshot: JobSnapshot, stdout_tail: list[str] | None = None):
        self.snapshot = snapshot
        self.job_id = snapshot.job_id
        self.status = snapshot.status
        self.url = snapshot.url
        self.stdout_tail = list(stdout_tail or [])
        message = f"Domino job {snapshot.job_id} ended {snapshot.status.value}"
        if snapshot.url:
            message += f" ({snapshot.url})"
        if self.stdout_tail:
            message += "; last lines of output:\n" + "\n".join(self.stdout_tail)
        super().__init__(message)


class PollTimeoutError(DominoError):
    """The job did not finish within ``max_poll_time``; it was stopped if ``stop_confirmed``."""

    def __init__(
        self, job_id: str, *, waited_s: float, last_status: str, stop_confirmed: bool | None,
        stdout_tail: list[str] | None = None,
    ):
        self.job_id = job_id
        self.stdout_tail = list(stdout_tail or [])
        self.waited_s = waited_s
        self.last_status = last_status
        self.stop_confirmed = stop_confirmed
        outcome = {
            True: "it was stopped",
            False: "a stop was requested but not confirmed",
            None: "it was left running (stop_on_timeout=False)",
        }[stop_confirmed]
        super().__init__(
            f"Domino job {job_id} did not finish within {waited_s:.0f}s "
            f"(last status {last_status}); {outcome}. Raise max_poll_time if it needs longer."
        )


class StopNotConfirmedError(DominoError):
    """A stop was sent but the job was not seen in a terminal state within the wait."""

    def __init__(self, job_id: str, *, last_status: str, waited_s: float):
        self.job_id = job_id
        self.last_status = last_status
        self.waited_s = waited_s
        super().__init__(
            f"Stop of Domino job {job_id} requested but not confirmed after {waited_s:.0f}s "
            f"(last status {last_status}); check the job in Domino."
        )
