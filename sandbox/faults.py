"""Fault injection: an ASGI middleware that makes a share of API requests fail.

What lives here: `FaultInjector` (rate, kinds, seeded RNG; changeable while running), the
middleware, and the uvicorn protocol subclass that makes real connection resets possible.
`/__sandbox__/` requests are never faulted.

Kinds: ``500 502 503 504`` (JSON error), ``429`` (with ``Retry-After: 1``), ``reset`` (the TCP
connection is aborted with an RST and no response), ``slow`` (sleep, then answer normally),
``html`` (502 with an nginx-style HTML page) and ``truncated`` (200 whose JSON body is cut in
half; Content-Length matches, so the HTTP layer succeeds and JSON parsing fails).

For POST requests each fault is injected either *before* the request reaches the app (request
lost: e.g. no job created) or *after* it (job created, response lost), chosen by the seeded RNG:
clients must prove they don't start duplicates when a start response is lost (STYLE.md "never
start a run twice").

How `reset` works: ASGI gives an app no handle on the socket, and an app that raises or returns
without a response gets a 500 from uvicorn. So `tracking_protocol_class` subclasses uvicorn's HTTP
protocol to record each connection's transport keyed by (client, server) address, the same tuples
uvicorn puts in the scope. The middleware looks the transport up, sets ``SO_LINGER 0`` and
aborts it, which sends an RST; uvicorn then sees a disconnected cycle and sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import struct
import threading
from collections import Counter
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FAULT_KINDS = ("500", "502", "503", "504", "429", "reset", "slow", "html", "truncated")
SANDBOX_PREFIX = "/__sandbox__/"

NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def parse_kinds(kinds: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """A validated kind list; None or empty means every kind."""
    if kinds is None:
        return list(FAULT_KINDS)
    items = [k.strip() for k in kinds.split(",")] if isinstance(kinds, str) else list(kinds)
    items = [str(k).strip() for k in items if str(k).strip()]
    unknown = [k for k in items if k not in FAULT_KINDS]
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown}; choose from {', '.join(FAULT_KINDS)}")
    return items or list(FAULT_KINDS)


class FaultInjector:
    """The fault policy: thread-safe, reseedable, and it counts what it injected."""

    def __init__(
        self,
        rate: float = 0.0,
        kinds: str | list[str] | None = None,
        seed: int = 0,
        slow_seconds: float = 2.0,
    ) -> None:
        self._lock = threading.Lock()
        self.rate = 0.0
        self.kinds: list[str] = []
        self.seed = seed
        self.slow_seconds = slow_seconds
        self._rng = random.Random(seed)
        self.injected: Counter[str] = Counter()
        self.configure(rate=rate, kinds=kinds, seed=seed)

    def configure(
        self,
        rate: float | None = None,
        kinds: str | list[str] | None = None,
        seed: int | None = None,
        slow_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Change the fault rate, kinds, seed or slow delay (None keeps each); returns the new
        settings. Raises ValueError for a rate outside 0..1."""
        with self._lock:
            if rate is not None:
                rate = float(rate)
                if not 0.0 <= rate <= 1.0:
                    raise ValueError("fault rate must be within 0..1")
                self.rate = rate
            if kinds is not None or not self.kinds:
                self.kinds = parse_kinds(kinds)
            if seed is not None:
                self.seed = int(seed)
                self._rng = random.Random(self.seed)
            if slow_seconds is not None:
                self.slow_seconds = max(0.0, float(slow_seconds))
        return self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        """The settings and how many faults of each kind were injected."""
        with self._lock:
            return {
                "rate": self.rate,
                "kinds": list(self.kinds),
                "seed": self.seed,
                "slow_seconds": self.slow_seconds,
                "injected": dict(self.injected),
            }

    def reset_counts(self) -> None:
        """Forget the counts of injected faults."""
        with self._lock:
            self.injected.clear()

    def decide(self, method: str) -> tuple[str, str] | None:
        """(kind, "before"|"after") for this request, or None for no fault."""
        with self._lock:
            if self.rate <= 0.0 or self._rng.random() >= self.rate:
                return None
            kind = self._rng.choice(self.kinds)
            when = "before"
            if method == "POST" and kind != "slow":
                when = self._rng.choice(("before", "after"))
            self.injected[f"{kind}:{when}"] += 1
            return kind, when


class ConnectionRegistry:
    """Live transports keyed by (client addr, server addr); filled by the protocol subclass."""

    def __init__(self) -> None:
        self._transports: dict[tuple[Any, Any], asyncio.Transport] = {}

    def add(self, client: Any, server: Any, transport: asyncio.Transport) -> None:
        """Remember the transport of the connection between ``client`` and ``server``."""
        self._transports[(_addr(client), _addr(server))] = transport

    def discard(self, client: Any, server: Any) -> None:
        """Forget that connection (it closed)."""
        self._transports.pop((_addr(client), _addr(server)), None)

    def find(self, scope: Scope) -> asyncio.Transport | None:
        """The transport carrying the request of ``scope``, or None."""
        return self._transports.get((_addr(scope.get("client")), _addr(scope.get("server"))))


def _addr(value: Any) -> tuple[Any, ...] | None:
    return tuple(value) if value else None


def tracking_protocol_class(registry: ConnectionRegistry, http: str = "auto") -> type[Any]:
    """A uvicorn HTTP protocol class that records each connection in `registry`."""
    base: type[Any]
    if http in ("auto", "httptools"):
        try:
            from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

            base = HttpToolsProtocol
        except ImportError:
            from uvicorn.protocols.http.h11_impl import H11Protocol

            base = H11Protocol
    else:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        base = H11Protocol

    class TrackingProtocol(base):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            registry.add(self.client, self.server, transport)

        def connection_lost(self, exc: Exception | None) -> None:
            registry.discard(self.client, self.server)
            super().connection_lost(exc)

    return TrackingProtocol


class FaultMiddleware:
    """Applies `FaultInjector` decisions to every non-`/__sandbox__/` HTTP request."""

    def __init__(self, app: ASGIApp, injector: FaultInjector, registry: ConnectionRegistry):
        self.app = app
        self.injector = injector
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(SANDBOX_PREFIX):
            await self.app(scope, receive, send)
            return
        decision = self.injector.decide(scope["method"])
        if decision is None:
            await self.app(scope, receive, send)
            return
        kind, when = decision
        scope["sandbox.fault"] = f"{kind}:{when}"
        if kind == "slow":
            await asyncio.sleep(self.injector.slow_seconds)
            await self.app(scope, receive, send)
            return
        real_body = b""
        if when == "after":
            # The app does its work (e.g. creates the job); its response is then lost.
            captured: list[Message] = []

            async def capture(message: Message) -> None:
                captured.append(message)

            await self.app(scope, receive, capture)
            real_body = b"".join(
                m.get("body", b"") for m in captured if m["type"] == "http.response.body"
            )
        await self._emit(kind, scope, send, real_body)

    async def _emit(self, kind: str, scope: Scope, send: Send, real_body: bytes) -> None:
        if kind == "reset":
            if await self._reset(scope):
                return
            # No transport found: fall back to a response cut off mid-body (uvicorn closes it).
            await send(_start(200, "application/json", 1000))
            await send({"type": "http.response.body", "body": b'{"id": "', "more_body": False})
            return
        if kind == "html":
            body = NGINX_502.encode()
            await send(_start(502, "text/html", len(body)))
        elif kind == "truncated":
            full = real_body or json.dumps({"id": "0" * 24, "status": "Queued"}).encode()
            body = full[: max(1, len(full) // 2)]
            await send(_start(200, "application/json", len(body)))
        else:
            code = int(kind)
            body = json.dumps(
                {"message": f"sandbox injected fault: HTTP {code}", "status": code}
            ).encode()
            extra = [(b"retry-after", b"1")] if code == 429 else []
            await send(_start(code, "application/json", len(body), extra))
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _reset(self, scope: Scope) -> bool:
        transport = self.registry.find(scope)
        if transport is None:
            return False
        record = scope.get("sandbox.record")
        if callable(record):
            record("reset")
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        # Let connection_lost run so uvicorn marks the cycle disconnected and sends no 500.
        await asyncio.sleep(0.01)
        return True


def _start(
    status: int, content_type: str, length: int, extra: list[tuple[bytes, bytes]] | None = None
) -> Message:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(length).encode()),
        *(extra or []),
    ]
    return {"type": "http.response.start", "status": status, "headers": headers}
