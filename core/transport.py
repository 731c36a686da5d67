"""The only place that does HTTP: a sync transport on ``requests`` and an async one on ``httpx``.

Both share everything but the send: URL and header building, the retry policy, the token-file →
API-key fallback, and ``api.interpret``. Library exceptions are translated to ``TransportError``
in one function per driver. Credentials travel only in headers, never in a URL or a message.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any
from urllib.parse import urlencode

import requests

from . import api
from .api import ApiRequest
from .config import DominoConfig
from .errors import AuthenticationError, DominoError, TransportError
from .retry import RetryPolicy

__all__ = ["AsyncTransport", "SyncTransport"]

log = logging.getLogger("domino_orchestrate")
USER_AGENT = "domino-orchestrate/0.1"


class _Base:
    def __init__(self, config: DominoConfig, policy: RetryPolicy | None = None) -> None:
        self.config = config
        self.policy = policy or RetryPolicy(max_retries=config.max_retries)
        self._use_fallback = False

    def url(self, req: ApiRequest) -> str:
        # The query is encoded here once rather than merged by the HTTP library per request.
        query = "?" + urlencode(req.params) if req.params else ""
        return self.config.base_url + req.path + query

    def headers(self, req: ApiRequest) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if req.body is not None:
            headers["Content-Type"] = "application/json"
        headers.update(self.config.credentials.headers(use_fallback=self._use_fallback))
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

    def result(self, req: ApiRequest, status: int, headers: Any, content: bytes) -> Any:
        # Both libraries' header maps are case-insensitive already.
        return api.interpret(req, status, headers, content)


def _transport_error(req: ApiRequest, exc: Exception, sent: bool) -> TransportError:
    kind = type(exc).__name__
    return TransportError(
        f"{req.method} {req.path}: no answer from Domino ({kind}). Check the host, the network "
        "and that Domino is up.",
        method=req.method, path=req.path, sent=sent,
    )


class SyncTransport(_Base):
    def __init__(self, config: DominoConfig, policy: RetryPolicy | None = None) -> None:
        super().__init__(config, policy)
        self._local = threading.local()  # requests.Session is not thread-safe

    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.verify = self.config.verify
            session.trust_env = False  # proxies come from api_proxy only; env proxies could leak
            self._local.session = session
        return session

    def send(self, req: ApiRequest, *, sleep: Any = time.sleep) -> Any:
        try:  # fast path: most requests succeed first time, so build no retry machinery
            return self._send_authenticated(req)
        except DominoError as exc:
            if not self.policy.should_retry(req, exc):
                raise
            first = exc
        sleep(self.policy.first_wait(req, first))
        for attempt in self.policy.retrying(req, first, sleep=sleep):
            with attempt:
                return self._send_authenticated(req)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_authenticated(self, req: ApiRequest) -> Any:
        try:
            return self._send_once(req)
        except AuthenticationError as exc:
            if self.fall_back(exc):
                return self._send_once(req)
            raise

    def _send_once(self, req: ApiRequest) -> Any:
        try:
            response = self.session.request(
                req.method,
                self.url(req),
                json=req.body,
                headers=self.headers(req),
                timeout=self.config.timeout,
            )
        except (requests.ConnectTimeout, requests.exceptions.SSLError) as exc:
            raise _transport_error(req, exc, sent=False) from None
        except requests.ConnectionError as exc:
            refused = "NewConnectionError" in repr(exc) or "Connection refused" in repr(exc)
            raise _transport_error(req, exc, sent=not refused) from None
        except requests.RequestException as exc:
            raise _transport_error(req, exc, sent=True) from None
        return self.result(req, response.status_code, response.headers, response.content)

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()


class AsyncTransport(_Base):
    def __init__(
        self, config: DominoConfig, policy: RetryPolicy | None = None, max_connections: int = 10
    ) -> None:
        super().__init__(config, policy)
        self._max_connections = max_connections
        self._client: Any = None
        # httpcore's pool scans every connection for every queued request, so thousands of
        # followers queueing inside it cost O(n^2) CPU; waiting here instead keeps its queue empty.
        self._gate: asyncio.Semaphore | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                verify=self.config.verify,
                timeout=self.config.timeout,
                trust_env=False,
                limits=httpx.Limits(
                    max_connections=self._max_connections,
                    max_keepalive_connections=self._max_connections,
                ),
            )
        return self._client

    async def send(self, req: ApiRequest, *, sleep: Any = None) -> Any:
        try:  # fast path, as in SyncTransport.send
            return await self._send_authenticated(req)
        except DominoError as exc:
            if not self.policy.should_retry(req, exc):
                raise
            first = exc
        await (sleep or asyncio.sleep)(self.policy.first_wait(req, first))
        overrides = {"sleep": sleep} if sleep else {}
        async for attempt in self.policy.async_retrying(req, first, **overrides):
            with attempt:
                return await self._send_authenticated(req)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send_authenticated(self, req: ApiRequest) -> Any:
        try:
            return await self._send_once(req)
        except AuthenticationError as exc:
            if self.fall_back(exc):
                return await self._send_once(req)
            raise

    async def _send_once(self, req: ApiRequest) -> Any:
        import httpx

        if self._gate is None:
            self._gate = asyncio.Semaphore(self._max_connections)
        try:
            async with self._gate:
                response = await self.client.request(
                    req.method,
                    self.url(req),
                        json=req.body,
                    headers=self.headers(req),
                )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise _transport_error(req, exc, sent=False) from None
        except httpx.HTTPError as exc:
            raise _transport_error(req, exc, sent=True) from None
        return self.result(req, response.status_code, response.headers, response.content)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
