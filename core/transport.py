"""The only place that does HTTP: a sync transport on ``requests`` and an async one with keep-alive
connections of its own to Domino's origin (``_LeanPool``: asyncio and httptools, the polling path)
and ``httpx`` through proxies and to other origins.

Both share everything but the exchange itself: URL and header building, the redirect rule, the
retry decisions (``retry.py``), the token-file → API-key fallback, TLS and proxy settings
(``config.tls_verify`` / ``config.proxy_for``) and ``api.interpret``. Library exceptions are
translated to ``TransportError`` in one function per driver.

Rules kept here, for both drivers:

- Credentials travel only in headers, and only to the configured origin. Redirects are followed
  by us, not the HTTP library: only to the same origin (or an http → https upgrade of the same
  host), at most ``MAX_REDIRECTS`` times, with the method and body unchanged (a 301 never turns a
  job start into a GET; only 303 means "GET this instead"). Any other redirect raises
  ``RedirectError`` naming ``Location``.
- ``config.timeout`` bounds a request as a whole — connecting, the headers and every byte of the
  body — not each read: a body trickled one byte a second cannot hold a task forever (sync: a
  watchdog thread cuts the connection at the deadline; async: ``asyncio.wait_for``).
- A certificate that cannot be verified raises ``CertificateError`` at once (never retried).
- Every excerpt and message is redacted of the configuration's secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import logging
import os
import re
import socket
import ssl
import threading
import time
import weakref
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlencode, urljoin, urlsplit, urlunsplit

import requests
import requests.adapters

from . import api
from . import retry as _retry
from .api import ApiRequest
from .config import DominoConfig, proxy_for, redact, tls_verify, without_userinfo
from .errors import (
    AuthenticationError,
    CertificateError,
    DominoError,
    InvalidResponseError,
    TransportError,
)
from .retry import RetryPolicy, RetryQuota

__all__ = ["MAX_REDIRECTS", "AsyncTransport", "SyncTransport", "same_origin"]

log = logging.getLogger("domino_orchestrate")
USER_AGENT = "domino-orchestrate/0.1"
MAX_REDIRECTS = 5
_FOLLOWED = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def same_origin(current: str, target: str) -> bool:
    """Whether credentials meant for ``current`` may go to ``target``: the same scheme, host and
    port, or the upgrade of ``http://host`` to ``https://host`` on the default ports."""
    here, there = _origin(current), _origin(target)
    if here == there:
        return True
    return (here[0], here[2], there[0], there[2]) == ("http", 80, "https", 443) and (
        here[1] == there[1]
    )


class _Deadline(Exception):
    """The whole-request deadline passed (internal: becomes a TransportError)."""


class _Streamed:
    """A success answer already decoded by its request's streaming decoder (``ApiRequest.stream``)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _SinkError(Exception):
    """A streaming decoder refused the body (internal: becomes an InvalidResponseError)."""

    status: int = 0
    headers: Any = None

    def __init__(self, error: Exception, empty: bool) -> None:
        super().__init__(str(error))
        self.error, self.empty = error, empty


class _Sink:
    """Feeds a success body to its request's streaming decoder as it arrives."""

    __slots__ = ("decoder", "empty")

    def __init__(self, req: ApiRequest) -> None:
        self.decoder = req.stream() if req.stream is not None else None
        self.empty = True

    def feed(self, chunk: bytes) -> None:
        if self.empty and chunk.strip():
            self.empty = False
        try:
            self.decoder.feed(chunk)  # type: ignore[union-attr]
        except Exception as exc:  # a defect too must reach the user as a typed error
            raise _SinkError(exc, False) from None

    def close(self) -> _Streamed:
        if self.empty:
            raise _SinkError(ValueError("empty body"), True)
        try:
            return _Streamed(self.decoder.close())  # type: ignore[union-attr]
        except Exception as exc:
            raise _SinkError(exc, False) from None


def _streams(req: ApiRequest, status: int) -> bool:
    return req.stream is not None and 200 <= status < 300


class _Base:
    def __init__(
        self, config: DominoConfig, policy: RetryPolicy | None = None,
        quota: RetryQuota | None = None,
    ) -> None:
        self.config = config
        self.policy = policy or RetryPolicy(max_retries=config.max_retries)
        self._quota = quota
        self._use_fallback = False
        self._secrets = tuple(config.secrets())
        self._base_url = config.base_url  # a property that rebuilds the URL: read it once
        self._static_headers: dict[str, str] | None = None

    @property
    def quota(self) -> RetryQuota:
        return self._quota or _retry.QUOTA  # looked up late: one quota per process

    def url(self, req: ApiRequest) -> str:
        # The query is encoded here once rather than merged by the HTTP library per request.
        query = "?" + urlencode(req.params) if req.params else ""
        return self._base_url + req.path + query

    def headers(self, req: ApiRequest, body: Any) -> dict[str, str]:
        """The request's headers (never modified by callers: a bodiless request's are reused
        while the credentials cannot change; a token file is re-read for every request)."""
        if body is None and self._static_headers is not None and not self._use_fallback:
            return self._static_headers
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        headers.update(self.config.credentials.headers(use_fallback=self._use_fallback))
        if body is None and not self._use_fallback and self.config.credentials.kind != "token_file":
            self._static_headers = headers
        return headers

    def fall_back(self, error: AuthenticationError) -> bool:
        """Switch to the API key once the token file's token is rejected (python-domino #102)."""
        if self._use_fallback or error.status_code not in (401, 409):
            return False
        if not self.config.credentials.can_fall_back:
            return False
        self._use_fallback = True
        log.warning(
            "Domino rejected the token from the token file (HTTP %d); using the API key instead",
            error.status_code,
        )
        return True

    def redirect(
        self, req: ApiRequest, url: str, method: str, body: Any, status: int, headers: Any,
        hops: int,
    ) -> tuple[str, str, Any]:
        """Where a followed redirect goes: ``(method, url, body)``, or raise ``RedirectError``."""
        location = headers.get("location")
        if not location or not location.strip():
            raise api.redirect_error(req, status, None, secrets=self._secrets)
        try:
            target = urljoin(url, location.strip())
            ok = urlsplit(target).scheme in _DEFAULT_PORTS and same_origin(url, target)
        except ValueError:
            ok, target = False, location
        if not ok:
            raise api.redirect_error(req, status, target, secrets=self._secrets)
        if hops >= MAX_REDIRECTS:
            raise api.redirect_error(req, status, target, f"(more than {MAX_REDIRECTS} redirects)",
                                     secrets=self._secrets)
        # Our own user:password (if the host URL has one) goes on; the Location's never does.
        parts, ours = urlsplit(target), urlsplit(url)
        userinfo, _, _ = ours.netloc.rpartition("@")
        hostport = parts.netloc.rpartition("@")[2]
        netloc = f"{userinfo}@{hostport}" if userinfo else hostport
        target = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        log.info("Following HTTP %d for %s %s to %s", status, req.method, req.path,
                 redact(without_userinfo(target), self._secrets))
        if status == 303 and method != "HEAD":
            return "GET", target, None
        return method, target, body

    def result(self, req: ApiRequest, status: int, headers: Any, content: Any) -> Any:
        if isinstance(content, _Streamed):
            return content.value
        # Both libraries' header maps are case-insensitive already.
        return api.interpret(req, status, headers, content, secrets=self._secrets)

    def stream_error(self, req: ApiRequest, status: int, headers: Any,
                     failed: _SinkError) -> DominoError:
        """The typed error for a success answer its streaming decoder could not read."""
        if failed.empty:  # the same error (or None, for empty_ok) as a body read whole
            try:
                return _Streamed(api.interpret(req, status, headers, b"",  # type: ignore[return-value]
                                               secrets=self._secrets))
            except DominoError as exc:
                return exc
        return InvalidResponseError(
            f"Domino returned unreadable JSON for {req.method} {req.path} (HTTP {status}): "
            f"{redact(str(failed.error), self._secrets)}. A proxy or load balancer may be "
            "answering instead of Domino.",
            status_code=status, method=req.method, path=req.path, excerpt="",
        )

    def deadline_error(self, req: ApiRequest) -> TransportError:
        return TransportError(
            f"{req.method} {req.path}: no complete answer from Domino within "
            f"{self.config.timeout:g}s (timeout bounds the whole request, body included). Check "
            "the network and that Domino is up, or raise the timeout.",
            method=req.method, path=req.path, sent=True,
        )

    def certificate_error(self, req: ApiRequest, exc: BaseException) -> CertificateError | None:
        cause = _find_cause(exc, ssl.SSLCertVerificationError)
        if cause is None and "CERTIFICATE_VERIFY_FAILED" not in str(exc):
            return None
        reason = getattr(cause, "verify_message", None) or "certificate verify failed"
        return CertificateError(
            f"{req.method} {req.path}: the TLS certificate of {self.config.host} could not be "
            f"verified ({reason}). If Domino uses a private or corporate CA, pass its CA bundle: "
            "verify='/path/to/ca-bundle.pem' (or DOMINO_VERIFY_CERTIFICATE=/path/to/ca-bundle.pem, "
            "or REQUESTS_CA_BUNDLE / SSL_CERT_FILE); check the host name too. Retrying cannot help.",
            method=req.method, path=req.path, sent=False,
        )

    def _retry_or_raise(
        self, req: ApiRequest, exc: DominoError, attempt: int, started: float,
        remaining: float | None,
    ) -> tuple[float, float]:
        left = None if remaining is None else remaining - (time.monotonic() - started)
        decision = self.policy.next_wait(req, exc, attempt, remaining=left, quota=self.quota)
        if decision is None:
            raise exc
        return decision


def _find_cause(exc: BaseException | None, kind: type[BaseException]) -> BaseException | None:
    seen: set[int] = set()
    stack = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, kind):
            return item
        stack += [item.__cause__, item.__context__, *[a for a in item.args
                                                        if isinstance(a, BaseException)]]
    return None


def _transport_error(req: ApiRequest, exc: Exception, sent: bool) -> TransportError:
    kind = type(exc).__name__
    return TransportError(
        f"{req.method} {req.path}: no answer from Domino ({kind}). Check the host, the network "
        "and that Domino is up.",
        method=req.method, path=req.path, sent=sent,
    )


def _ssl_context(verify: bool | str) -> ssl.SSLContext | bool:
    if isinstance(verify, bool):
        return verify
    if os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    return ssl.create_default_context(cafile=verify)


class _Watchdog:
    """One daemon thread that runs callbacks at deadlines: what bounds a blocking ``requests``
    call as a whole (its own timeouts bound each read). Cheaper than a Timer thread per request.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[list[Any]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: float, callback: Callable[[], None]) -> list[Any]:
        entry = [deadline, next(self._order), callback]
        with self._cond:
            heapq.heappush(self._heap, entry)
            if self._thread is None or not self._thread.is_alive():  # also after a fork
                self._thread = threading.Thread(target=self._run, name="domino-deadlines",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()
        return entry

    def cancel(self, entry: list[Any]) -> None:
        with self._cond:
            entry[2] = None

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    while self._heap and self._heap[0][2] is None:
                        heapq.heappop(self._heap)  # cancelled
                    if self._heap and self._heap[0][0] <= time.monotonic():
                        callback = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
            try:
                callback()
            except Exception:  # pragma: no cover - a socket already gone
                log.debug("deadline callback failed", exc_info=True)


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):  # a forked worker starts with a fresh, unlocked watchdog
    os.register_at_fork(after_in_child=_WATCHDOG.reset)


class _Inflight:
    """The connection a sync request is using, so its deadline can cut it."""

    conn: Any = None

    def abort(self) -> None:
        sock = getattr(self.conn, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv; close() would not


class _DeadlineAdapter(requests.adapters.HTTPAdapter):
    """Records which pooled connection each request takes (in ``_Inflight``, per thread)."""

    def __init__(self, local: threading.local) -> None:
        super().__init__()
        self._local = local

    def get_connection_with_tls_context(self, *args: Any, **kwargs: Any) -> Any:
        pool: Any = super().get_connection_with_tls_context(*args, **kwargs)
        if not getattr(pool, "_domino_recorded", False):
            take = pool._get_conn
            local = self._local

            def get_conn(timeout: float | None = None) -> Any:
                conn = take(timeout=timeout)
                inflight = getattr(local, "inflight", None)
                if inflight is not None:
                    inflight.conn = conn
                return conn

            pool._get_conn = get_conn
            pool._domino_recorded = True
        return pool


class SyncTransport(_Base):
    """The one place synchronous requests are sent (requests): retries, redirects, deadlines, TLS."""
    def __init__(
        self, config: DominoConfig, policy: RetryPolicy | None = None,
        quota: RetryQuota | None = None,
    ) -> None:
        super().__init__(config, policy, quota)
        self._local = threading.local()  # requests.Session is not thread-safe

    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.verify = tls_verify(self.config.verify)
            # trust_env would also read .netrc and attach its credentials (to redirects too);
            # proxies and CA bundles from the environment are applied explicitly instead.
            session.trust_env = False
            netloc = urlsplit(self.config.base_url).netloc
            session.proxies = {scheme: proxy for scheme in ("http", "https")
                               if (proxy := proxy_for(f"{scheme}://{netloc}"))}
            adapter = _DeadlineAdapter(self._local)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session

    def send(self, req: ApiRequest, *, sleep: Any = time.sleep,
             remaining: float | None = None) -> Any:
        """Send ``req`` with retries; ``remaining`` bounds the total time spent waiting."""
        started, attempt, cost = time.monotonic(), 1, 0.0
        while True:
            try:
                result = self._send_authenticated(req)
            except DominoError as exc:
                seconds, cost = self._retry_or_raise(req, exc, attempt, started, remaining)
                sleep(seconds)
                attempt += 1
                continue
            self.quota.succeeded(cost)
            return result

    def _send_authenticated(self, req: ApiRequest) -> Any:
        try:
            return self._send_once(req)
        except AuthenticationError as exc:
            if self.fall_back(exc):
                return self._send_once(req)
            raise

    def _send_once(self, req: ApiRequest) -> Any:
        deadline = time.monotonic() + self.config.timeout
        method, url, body = req.method, self.url(req), req.body
        for hops in range(MAX_REDIRECTS + 1):
            status, headers, content = self._exchange(req, method, url, body, deadline)
            if status not in _FOLLOWED:
                break
            method, url, body = self.redirect(req, url, method, body, status, headers, hops)
        return self.result(req, status, headers, content)

    def _exchange(
        self, req: ApiRequest, method: str, url: str, body: Any, deadline: float
    ) -> tuple[int, Any, Any]:
        import urllib3

        inflight = self._local.inflight = _Inflight()
        watch = _WATCHDOG.watch(deadline, inflight.abort)
        try:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Deadline
            response = self.session.request(
                method, url, json=body, headers=self.headers(req, body),
                timeout=(left, left), allow_redirects=False, stream=True,
            )
            try:
                sink = _Sink(req) if _streams(req, response.status_code) else None
                content = _read_body(response, deadline, sink)
            finally:
                response.close()
        except _Deadline:
            raise self.deadline_error(req) from None
        except _SinkError as exc:
            failed = self.stream_error(req, response.status_code, response.headers, exc)
            if isinstance(failed, _Streamed):
                return response.status_code, response.headers, failed
            raise failed from None
        except requests.exceptions.SSLError as exc:
            raise (self.certificate_error(req, exc) or _transport_error(req, exc, False)) from None
        except requests.ConnectTimeout as exc:
            raise _transport_error(req, exc, sent=False) from None
        except requests.ConnectionError as exc:
            if time.monotonic() >= deadline:
                raise self.deadline_error(req) from None
            refused = "NewConnectionError" in repr(exc) or "Connection refused" in repr(exc)
            raise _transport_error(req, exc, sent=not refused) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if time.monotonic() >= deadline:
                raise self.deadline_error(req) from None
            raise _transport_error(req, exc, sent=True) from None
        finally:
            _WATCHDOG.cancel(watch)
            self._local.inflight = None
        return response.status_code, response.headers, content

    def close(self) -> None:
        """Close this thread's HTTP session."""
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()


def _read_body(response: requests.Response, deadline: float, sink: _Sink | None = None) -> Any:
    """Read the body before ``deadline``: each read may wait only for the time that is left.
    With a ``sink`` each piece goes to the request's decoder as it arrives (nothing is kept)."""
    raw = response.raw
    sock = getattr(getattr(raw, "_connection", None), "sock", None)
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Deadline
        if sock is not None:
            sock.settimeout(left)
        chunk = raw.read1(65536, decode_content=True)
        if not chunk:
            break
        if sink is None:
            chunks.append(chunk)
        else:
            sink.feed(chunk)
    if time.monotonic() >= deadline:
        raise _Deadline  # the watchdog cut the connection: the body may look complete
    return b"".join(chunks) if sink is None else sink.close()


#: ``asyncio.timeout`` (Python 3.11+) bounds a request without the extra task ``wait_for`` makes.
_ASYNC_TIMEOUT: Any = getattr(asyncio, "timeout", None)


class _ConnectFailed(Exception):
    """Opening a connection failed: the request never left this machine (internal)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(repr(error))
        self.error = error


class _Headers(dict):  # type: ignore[type-arg]
    """Response headers by lower-case name, read case-insensitively."""

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


class _LeanConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, parsed by httptools (the C parser uvicorn uses).

    The protocol only buffers what arrives and wakes the request's task; the task parses it, so
    the body's decoder — and the observers it calls (``on_line``) — run in that task, with its
    context variables, and what they raise (a cancellation too) reaches the task. A body larger
    than ``_READ_AHEAD`` waits in the socket until the task has taken what came before."""

    __slots__ = ("_answered", "_buffer", "_buffered", "_chunks", "_closed", "_complete",
                 "_headers", "_inflate", "_keep_alive", "_parser", "_paused", "_req", "_sink",
                 "_status", "_transport", "_until_eof", "_wakeup")

    def __init__(self) -> None:
        import httptools

        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._paused = self._closed = False
        self._wakeup: asyncio.Future[None] | None = None
        self._begin(None)

    def _begin(self, req: ApiRequest | None) -> None:
        self._req = req
        self._keep_alive = False  # until the response says otherwise
        self._status, self._headers = 0, _Headers()
        self._chunks: list[bytes] = []
        self._sink: _Sink | None = None
        self._inflate: Any = None
        self._answered = self._until_eof = self._complete = False

    # asyncio.Protocol: buffer and wake, nothing else

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer.append(data)
        self._buffered += len(data)
        if self._buffered > _READ_AHEAD and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def _read(self) -> bytes:
        """What arrived since the last read (waiting for it); b"" once the server closed."""
        while not self._buffer and not self._closed:
            self._wakeup = asyncio.get_running_loop().create_future()
            await self._wakeup
        data = self._buffer[0] if len(self._buffer) == 1 else b"".join(self._buffer)
        self._buffer.clear()
        self._buffered = 0
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return data

    # httptools callbacks (run in the requesting task, inside feed_data)

    def on_message_begin(self) -> None:
        if self._complete:  # a second answer to one request: stop there, never reuse this
            raise _Unsolicited

    def on_header(self, name: bytes, value: bytes) -> None:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        headers = self._headers
        headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:  # informational: the real response follows
            self._headers = _Headers()
            return
        self._answered, self._status = True, status
        self._keep_alive = self._parser.should_keep_alive()
        headers = self._headers
        self._until_eof = not ("content-length" in headers or "transfer-encoding" in headers
                               or status in (204, 304))
        self._inflate = _inflater(headers.get("content-encoding"))
        req = self._req
        self._sink = _Sink(req) if req is not None and _streams(req, status) else None

    def on_body(self, data: bytes) -> None:
        self._take(data if self._inflate is None else self._inflate.decompress(data))

    def on_message_complete(self) -> None:
        if self._answered:
            self._keep_alive = self._keep_alive and self._parser.should_keep_alive()
            self._complete = True

    def _take(self, data: bytes) -> None:
        if self._sink is None:
            self._chunks.append(data)
        elif data:
            self._sink.feed(data)

    # the request

    def usable(self) -> bool:
        """Whether another request may be sent on it (the last one completed, kept alive, and
        the server has not closed it while it was idle: its EOF is seen)."""
        return (self._keep_alive and not self._closed and not self._buffer
                and self._transport is not None and not self._transport.is_closing())

    async def roundtrip(self, req: ApiRequest, message: bytes) -> tuple[int, Any, Any]:
        """Send one request (head and body in ``message``); its whole response."""
        assert self._transport is not None
        self._begin(req)
        done = False
        try:
            self._transport.write(message)
            while not self._complete:
                data = await self._read()
                if not data:  # the server closed
                    if self._until_eof:  # a body without a length ends there
                        break
                    if not self._answered:
                        raise _StaleConnection
                    raise ConnectionError("the connection closed before the response ended")
                self._feed(data)
            if self._inflate is not None and (rest := self._inflate.flush()):
                self._take(rest)
            content: Any = b"".join(self._chunks) if self._sink is None else self._sink.close()
            done = True
            return self._status, self._headers, content
        except _SinkError as exc:
            exc.status, exc.headers = self._status, self._headers
            raise
        except zlib.error as exc:
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from None
        finally:
            if not done:
                self._keep_alive = False
                self.close()

    def _feed(self, data: bytes) -> None:
        import httptools

        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _Unsolicited):
                self._keep_alive = False
                return
            raise exc.__context__ or exc from None  # what our callback raised, as it was
        except httptools.HttpParserError as exc:
            if not self._answered:  # not an HTTP answer: retried once if it was reused
                raise _StaleConnection from None
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        self._closed = True
        if self._transport is not None:
            with contextlib.suppress(Exception):
                self._transport.close()


class _Unsolicited(Exception):
    """More bytes after the answer than the request asked for (internal)."""


#: Response bytes a lean connection reads ahead of its task before it pauses the socket.
_READ_AHEAD = 1 << 20


class _LeanPool:
    """Keep-alive HTTP/1.1 connections (``_LeanConnection``) to a transport's own origin, for
    one event loop: the polling path without a general-purpose client's per-request work
    (cookie jar, URL model, pool scans checking every idle socket, a pure-Python parser), about
    10x less CPU a poll. Requests through a proxy, or to another origin, go through httpx."""

    def __init__(self, scheme: str, host: str, port: int, ssl_context: Any, host_header: str,
                 authorization: str | None) -> None:
        self.scheme, self.host, self.port = scheme, host, port
        self._ssl = ssl_context if scheme == "https" else None
        self._host_header = host_header
        self._authorization = authorization
        self._idle: list[_LeanConnection] = []
        self._prefix = ""
        # Encoded request heads by (method, url, headers): a follower sends the same status
        # request every poll.
        self._heads: dict[tuple[Any, ...], bytes] = {}

    def serves(self, url: str, base_url: str) -> bool:
        if not self._prefix:
            parts = urlsplit(base_url)
            self._prefix = f"{parts.scheme}://{parts.netloc}"
        if url.startswith(self._prefix) and url[len(self._prefix) : len(self._prefix) + 1] in "/?":
            return True  # the usual case, without parsing the URL
        return _origin(url) == (self.scheme, self.host, self.port)

    def _target(self, url: str) -> str:
        prefix = self._prefix
        if prefix and url.startswith(prefix) and url[len(prefix) : len(prefix) + 1] in "/?":
            target = url[len(prefix) :]
            return target if target.startswith("/") else "/" + target
        parts = urlsplit(url)
        return (parts.path or "/") + ("?" + parts.query if parts.query else "")

    async def _connect(self) -> _LeanConnection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(
                _LeanConnection, self.host, self.port, ssl=self._ssl,
                server_hostname=self.host if self._ssl is not None else None,
            )
        except (OSError, ValueError) as exc:
            raise _ConnectFailed(exc) from None
        return conn

    async def _connection(self, fresh: bool) -> tuple[_LeanConnection, bool]:
        while self._idle and not fresh:
            conn = self._idle.pop()
            if conn.usable():
                return conn, True
            conn.close()
        return await self._connect(), False

    async def exchange(self, req: ApiRequest, method: str, url: str, headers: dict[str, str],
                       body: bytes | None) -> tuple[int, Any, Any]:
        # A start (not idempotent) gets a new connection: a kept-alive one the server is closing
        # could lose it ambiguously. A read retries once on a new connection if a reused one was
        # closed before any answer came.
        message = self._head(method, url, headers, body)
        if body:
            message += body
        conn, reused = await self._connection(fresh=not req.retry)
        try:
            return await self._roundtrip(conn, req, message)
        except _StaleConnection:
            if not reused:
                raise
            conn, _ = await self._connection(fresh=True)
            return await self._roundtrip(conn, req, message)

    async def _roundtrip(self, conn: _LeanConnection, req: ApiRequest,
                         message: bytes) -> tuple[int, Any, Any]:
        answer = await conn.roundtrip(req, message)
        if conn.usable():
            self._idle.append(conn)
        else:
            conn.close()
        return answer

    def _head(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> bytes:
        """The encoded request head, built once per distinct request (bodies vary: never kept)."""
        key = (method, url, *headers.items()) if body is None else None
        head = self._heads.get(key) if key is not None else None
        if head is None:
            fields = [("Host", self._host_header), *headers.items(),
                      ("Accept-Encoding", "gzip, deflate")]
            if self._authorization:  # user:password in the host URL, as httpx and requests send
                fields.append(("Authorization", self._authorization))
            if body is not None:
                fields.append(("Content-Length", str(len(body))))
            target = self._target(url)
            if any(_UNSAFE_IN_HEAD.search(part) for part in (target, *itertools.chain(*fields))):
                # (the configuration refuses such keys; this keeps any other value from
                # splitting the request)
                raise ConnectionError(f"refusing to send a request whose head would hold a line "
                                      f"break or a control character ({method} {target})")
            text = f"{method} {target} HTTP/1.1\r\n" + "".join(
                f"{name}: {value}\r\n" for name, value in fields) + "\r\n"
            try:
                head = text.encode("latin-1")
            except UnicodeEncodeError:
                raise ConnectionError(f"refusing to send a request whose head is not latin-1 "
                                      f"({method} {target})") from None
            if key is not None:
                if len(self._heads) >= _HEADS_KEPT:
                    self._heads.clear()  # thousands of jobs followed: start over
                self._heads[key] = head
        return head

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


#: What must never reach a request head (it would end a line or the head early).
_UNSAFE_IN_HEAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

#: Request heads a lean pool keeps (about one per job it follows).
_HEADS_KEPT = 10_000


class _StaleConnection(ConnectionError):
    """A connection closed before any answer (internal: retried once if it was a reused one)."""


def _inflater(encoding: str | None) -> Any:
    if not encoding:
        return None
    kind = encoding.strip().lower()
    if kind in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if kind == "deflate":
        return zlib.decompressobj()
    return None


def _json_body(body: Any) -> bytes:
    # As httpx encodes ``json=``: compact, UTF-8, no NaN.
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


class _LoopState:
    """What an async transport keeps per event loop: asyncio objects belong to one loop, and one
    transport may be shared by triggers on several loops (a triggerer's runner, a test's)."""

    __slots__ = ("client", "gate", "lean")

    def __init__(self, gate: asyncio.Semaphore, lean: _LeanPool | None) -> None:
        self.gate, self.lean = gate, lean
        self.client: Any = None


class AsyncTransport(_Base):
    """The one place asynchronous requests are sent (httpx), with the same rules as ``SyncTransport``."""
    def __init__(
        self, config: DominoConfig, policy: RetryPolicy | None = None, max_connections: int = 10,
        quota: RetryQuota | None = None,
    ) -> None:
        super().__init__(config, policy, quota)
        self._max_connections = max_connections
        # Per event loop (see _LoopState). httpcore's pool scans every connection for every
        # queued request, so thousands of followers queueing inside it cost O(n^2) CPU; waiting
        # at the loop's gate instead keeps its queue empty.
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary())
        self._ssl: Any = None
        self._lean_ssl_context: Any = None
        self._last: tuple[Callable[[], Any], _LoopState | None] = (lambda: None, None)

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        last_loop, last_state = self._last
        if last_loop() is loop:  # the usual case: the same loop as the last request's
            return last_state  # type: ignore[return-value]
        state = self._loops.get(loop)
        if state is None:
            state = _LoopState(asyncio.Semaphore(self._max_connections), self._lean_pool())
            self._loops[loop] = state
        self._last = (weakref.ref(loop), state)
        return state

    def _ssl_for_httpx(self) -> Any:
        if self._ssl is None:
            self._ssl = _ssl_context(tls_verify(self.config.verify))
        return self._ssl

    def prepare(self) -> None:
        """Do the slow, blocking setup now (imports, reading CA certificates: tens of ms), e.g.
        in a worker thread, rather than inside an event loop on the first request."""
        import httptools  # noqa: F401
        import httpx  # noqa: F401

        if urlsplit(self.config.base_url).scheme == "https":
            self._lean_ssl()

    def _lean_ssl(self) -> Any:
        if self._lean_ssl_context is None:
            import httpx

            self._lean_ssl_context = httpx.create_ssl_context(verify=self._ssl_for_httpx(),
                                                              trust_env=False)
        return self._lean_ssl_context

    def _lean_pool(self) -> _LeanPool | None:
        base = self.config.base_url
        if proxy_for(base):
            return None
        scheme, host, port = _origin(base)
        if scheme not in _DEFAULT_PORTS or not host or port is None:
            return None
        parts = urlsplit(base)
        ssl_context = self._lean_ssl() if scheme == "https" else None
        userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
        authorization = None
        if userinfo:
            import base64

            user, _, password = userinfo.partition(":")
            token = f"{unquote(user)}:{unquote(password)}".encode()
            authorization = "Basic " + base64.b64encode(token).decode("ascii")
        return _LeanPool(scheme, host, port, ssl_context, parts.netloc.rpartition("@")[2],
                         authorization)

    @property
    def client(self) -> Any:
        """The httpx client of the running loop (proxies, other origins)."""
        state = self._state()
        if state.client is None:
            import httpx

            state.client = httpx.AsyncClient(
                verify=self._ssl_for_httpx(),
                timeout=self.config.timeout,
                trust_env=False,  # as in SyncTransport.session: no .netrc; proxies set here
                proxy=proxy_for(self.config.base_url),
                follow_redirects=False,
                limits=httpx.Limits(
                    max_connections=self._max_connections,
                    max_keepalive_connections=self._max_connections,
                ),
            )
        return state.client

    async def send(self, req: ApiRequest, *, sleep: Any = None,
                   remaining: float | None = None) -> Any:
        """Send ``req`` with retries; ``remaining`` bounds the total time spent waiting."""
        started, attempt, cost = time.monotonic(), 1, 0.0
        while True:
            try:
                try:  # (written out rather than awaited through one more coroutine per poll)
                    result = await self._send_once(req)
                except AuthenticationError as exc:
                    if not self.fall_back(exc):
                        raise
                    result = await self._send_once(req)
            except DominoError as exc:
                seconds, cost = self._retry_or_raise(req, exc, attempt, started, remaining)
                await (sleep or asyncio.sleep)(seconds)
                attempt += 1
                continue
            self.quota.succeeded(cost)
            return result

    async def _send_once(self, req: ApiRequest) -> Any:
        state = self._state()
        async with state.gate:
            deadline = time.monotonic() + self.config.timeout
            method, url, body = req.method, self.url(req), req.body
            for hops in range(MAX_REDIRECTS + 1):
                status, headers, content = await self._exchange(req, method, url, body, deadline,
                                                                state)
                if status not in _FOLLOWED:
                    break
                method, url, body = self.redirect(req, url, method, body, status, headers, hops)
        return self.result(req, status, headers, content)

    async def _exchange(
        self, req: ApiRequest, method: str, url: str, body: Any, deadline: float,
        state: _LoopState,
    ) -> tuple[int, Any, Any]:
        import httpx

        try:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Deadline
            lean = state.lean
            if lean is not None and lean.serves(url, self._base_url):
                data = None if body is None else _json_body(body)
                roundtrip = lean.exchange(req, method, url, self.headers(req, body), data)
            else:
                roundtrip = self._roundtrip(req, method, url, body)
            if _ASYNC_TIMEOUT is None:
                return await asyncio.wait_for(roundtrip, left)
            async with _ASYNC_TIMEOUT(left):
                return await roundtrip
        except (_Deadline, asyncio.TimeoutError, TimeoutError):
            raise self.deadline_error(req) from None
        except _SinkError as exc:
            failed = self.stream_error(req, exc.status, exc.headers, exc)
            if isinstance(failed, _Streamed):
                return exc.status, exc.headers, failed
            raise failed from None
        except _ConnectFailed as failed:
            cause: Any = failed.error
            raise (self.certificate_error(req, cause)
                   or _transport_error(req, cause, False)) from None
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise (self.certificate_error(req, exc) or _transport_error(req, exc, False)) from None
        except (httpx.HTTPError, OSError) as exc:
            if time.monotonic() >= deadline:
                raise self.deadline_error(req) from None
            raise _transport_error(req, exc, sent=True) from None

    async def _roundtrip(self, req: ApiRequest, method: str, url: str,
                         body: Any) -> tuple[int, Any, Any]:
        request = self.client.build_request(method, url, json=body,
                                            headers=self.headers(req, body))
        response = await self.client.send(request, stream=True)
        status, headers = response.status_code, response.headers
        try:
            if not _streams(req, status):
                return status, headers, await response.aread()
            sink = _Sink(req)
            async for chunk in response.aiter_bytes():
                sink.feed(chunk)
            return status, headers, sink.close()
        except _SinkError as exc:
            exc.status, exc.headers = status, headers
            raise
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        """Close the connection pools."""
        states, self._loops = list(self._loops.values()), weakref.WeakKeyDictionary()
        self._last = (lambda: None, None)
        for state in states:
            if state.lean is not None:
                state.lean.close()
            if state.client is not None:
                with contextlib.suppress(Exception):  # a client of a loop that has ended
                    await state.client.aclose()
