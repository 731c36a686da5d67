"""Request accounting and authentication for the sandbox, as plain ASGI middleware.

What lives here: `RequestStats` + `StatsMiddleware` (requests by route template and status,
bytes sent) and `TokenStore` + `AuthMiddleware` (domino-api.md §1.1: `X-Domino-Api-Key` or
`Authorization: Bearer`). Neither applies to `/__sandbox__/` (the out-of-band test API needs no
credentials; the sandbox binds to 127.0.0.1 by default).
"""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .faults import SANDBOX_PREFIX


class RequestStats:
    """Request counts per route template and status, and bytes sent; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.bytes_sent = 0

    def record(self, key: str, status: str, sent: int) -> None:
        """Count one answered request to ``key`` with ``status`` and ``sent`` body bytes."""
        with self._lock:
            self.requests[key][status] += 1
            self.bytes_sent += sent

    def snapshot(self) -> dict[str, Any]:
        """The counts so far, as JSON-ready dicts."""
        with self._lock:
            return {
                "requests": {k: dict(v) for k, v in sorted(self.requests.items())},
                "bytes_sent": self.bytes_sent,
            }

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self.requests.clear()
            self.bytes_sent = 0


def route_template(routes: list[BaseRoute], scope: Scope) -> str:
    """The path template (e.g. `/v4/jobs/{jobId}`) the request matches, for per-route counts."""
    partial: str | None = None
    for route in routes:
        match, _ = route.matches(scope)
        path = getattr(route, "path", "?")
        if match == Match.FULL:
            return str(path)
        if match == Match.PARTIAL and partial is None:
            partial = str(path)
    return partial or "<unmatched>"


class StatsMiddleware:
    """Outermost layer: sees the final status, including injected faults ("reset" when the
    connection was dropped without a response)."""

    def __init__(self, app: ASGIApp, stats: RequestStats, routes: list[BaseRoute]) -> None:
        self.app = app
        self.stats = stats
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(SANDBOX_PREFIX):
            await self.app(scope, receive, send)
            return
        status: list[int] = []
        sent = [0]
        recorded = [False]

        def record(final_status: str) -> None:
            # Recorded before the last byte goes out, so a client that got its answer always
            # finds it in the stats.
            if not recorded[0]:
                recorded[0] = True
                key = f"{scope['method']} {route_template(self.routes, scope)}"
                self.stats.record(key, final_status, sent[0])

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            elif message["type"] == "http.response.body":
                sent[0] += len(message.get("body", b""))
                if not message.get("more_body", False):
                    record(str(status[0]) if status else "reset")
            await send(message)

        scope["sandbox.record"] = record  # faults.py records "reset" before dropping the socket
        try:
            await self.app(scope, receive, counting_send)
        finally:
            record(str(status[0]) if status else "reset")


class TokenStore:
    """The API key plus bearer tokens that tests can add, expire or revoke at run time."""

    def __init__(self, api_key: str) -> None:
        self._lock = threading.Lock()
        self.api_key = api_key
        self._accepted: set[str] = set()
        self._expired: set[str] = set()

    def add(self, token: str) -> None:
        """Accept ``token`` as a bearer token (again, if it had expired)."""
        with self._lock:
            self._accepted.add(token)
            self._expired.discard(token)

    def expire(self, token: str) -> None:
        """Refuse ``token`` from now on, with a 401 saying it expired."""
        with self._lock:
            self._accepted.discard(token)
            self._expired.add(token)

    def revoke(self, token: str) -> None:
        """Refuse ``token`` from now on, as an invalid token."""
        with self._lock:
            self._accepted.discard(token)
            self._expired.discard(token)

    def check(self, api_key: str | None, authorization: str | None) -> str | None:
        """None when the request is authenticated, else the reason for the 401."""
        if api_key is not None and api_key == self.api_key:
            return None
        reason = "missing credentials: send X-Domino-Api-Key or Authorization: Bearer"
        if api_key is not None:
            reason = "invalid API key"
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                return "malformed Authorization header"
            with self._lock:
                if token == self.api_key or token in self._accepted:
                    return None
                reason = "bearer token expired" if token in self._expired else "invalid token"
        return reason


class AuthMiddleware:
    """Answers 401 to a Domino API request without a valid API key or bearer token (the sandbox's
    own control endpoints are open)."""

    def __init__(self, app: ASGIApp, tokens: TokenStore) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(SANDBOX_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        reason = self.tokens.check(headers.get("x-domino-api-key"), headers.get("authorization"))
        if reason is None:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"message": f"Unauthorized: {reason}", "status": 401}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="domino-sandbox"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})
