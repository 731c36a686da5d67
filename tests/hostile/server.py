"""A small, deliberately misbehaving HTTP server that plays Domino: an oracle independent of the
sandbox (which was written by the same hands as the client).

It speaks HTTP/1.1 over raw sockets, so a reply can be anything: arbitrary bytes, a body trickled
one byte every N seconds, a connection reset mid-body, a lying Content-Length, any status,
``Location`` or ``Retry-After``. Every response closes its connection (no keep-alive), so each
request arrives on a fresh connection and a scripted misbehaviour can never leak into the next one.

API
---
``HostileServer(tls=None)`` — start with ``with HostileServer() as server:`` (or ``start()`` /
``close()``). ``tls`` is an ``ssl.SSLContext`` (server side) to serve HTTPS instead.

- ``server.url`` — ``http://127.0.0.1:PORT`` (``https://`` with ``tls``); ``server.port``.
- ``server.on(method, path_prefix, handler)`` — route requests whose method is ``method`` (``"*"``
  for any) and whose path (query excluded) starts with ``path_prefix``. ``handler`` is either a
  callable ``(Received) -> Reply | None`` (``None`` falls through to the next route) or a
  ``Reply``. The most recently registered matching route wins; the default Domino surface below
  is the last resort, and anything else gets a 404.
- ``server.script(method, path_prefix, [Reply, ...])`` — the matching requests get these replies
  in order, one each; once the list is used up, requests fall through to older routes (so
  ``script("GET", "/v4/jobs/", [Reply(503), Reply(503)])`` = two failures, then normal answers).
- ``server.received`` — every request, in arrival order, as ``Received(method, path, query,
  headers, body)``; ``headers`` is a case-insensitive ``dict``-like (``received.headers.get("x-domino-api-key")``),
  ``received.json()`` decodes the body. ``server.requests_to(method, path_prefix)`` filters them.
  ``received.target`` is the raw request target (absolute-form when the server plays a proxy).
- ``server.tls_failures`` — TLS handshakes that failed (a client refusing the certificate).
- ``server.domino`` — the default fake Domino state (``FakeDomino``): ``project_id``,
  ``statuses`` (the ``executionStatus`` sequence each started job goes through, one per GET of
  the job, the last one sticking; default Running then Succeeded), ``stdout`` (the job's stdout
  text), ``jobs`` (id → job dict as last served), ``started`` (the start bodies received).

``Reply(status=200, body=b"", headers=(), ...)`` — ``body`` may be bytes, str (sent UTF-8) or
any other value (sent as JSON). Options:

- ``headers``: a mapping or a list of ``(name, value)`` pairs, sent verbatim (duplicates allowed).
  ``Content-Type: application/json`` and ``Content-Length`` are added unless given.
- ``content_length``: send this Content-Length instead of the real one (a lie).
- ``trickle``: seconds to wait before each body byte (each byte of ``raw``: headers too).
- ``reset_after``: after this many body bytes, reset the connection (TCP RST).
- ``delay``: seconds to wait before sending anything.
- ``raw``: bytes sent verbatim instead of a built response (status line and all), then close.

Helpers: ``json_reply(value, status=200, **options)``, ``redirect(status, location)``,
``html(status, text)``, ``job_body(job_id, status, ...)`` (a v4 job object as domino-api.md §2.3).

The default surface (domino-api.md §2): ``GET /version``; ``GET
/v4/gateway/projects/findProjectByOwnerAndName``; ``POST /v4/jobs/start``; ``GET /v4/jobs/{id}``;
``GET /v4/jobs`` (``{"jobs": [...]}``, newest first); ``POST /v4/jobs/stop``; ``GET
/v1/projects/{owner}/{project}/run/{id}/stdout``. Authentication is not checked: tests assert on
``received`` instead (e.g. that no ``X-Domino-Api-Key`` reached another server).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import socketserver
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "FakeDomino",
    "HostileServer",
    "Received",
    "Reply",
    "html",
    "job_body",
    "json_reply",
    "redirect",
]

TERMINAL = {"Succeeded", "Failed", "Stopped", "Error"}


class Headers(dict[str, str]):
    """Request headers keyed by lower-cased name; ``get``/``[]`` accept any case."""

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Headers
    body: bytes
    target: str = ""

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    status: int = 200
    body: Any = b""
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = ()
    reason: str | None = None
    content_length: int | None = None
    trickle: float = 0.0
    reset_after: int | None = None
    delay: float = 0.0
    raw: bytes | None = None

    def body_bytes(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8", "surrogatepass")
        return json.dumps(self.body).encode()


def json_reply(value: Any, status: int = 200, **options: Any) -> Reply:
    return Reply(status=status, body=json.dumps(value).encode(), **options)


def redirect(status: int, location: str, **options: Any) -> Reply:
    headers = [("Location", location), *list(options.pop("headers", ()))]
    return Reply(status=status, body=b"", headers=headers, **options)


def html(status: int, text: str = "<html><body><h1>Bad Gateway</h1></body></html>") -> Reply:
    return Reply(status=status, body=text, headers=[("Content-Type", "text/html")])


def job_body(job_id: str, status: str, project_id: str = "", title: str | None = None,
             command: str = "") -> dict[str, Any]:
    return {
        "id": job_id,
        "number": 1,
        "projectId": project_id,
        "title": title,
        "jobRunCommand": command,
        "statuses": {"isCompleted": status in TERMINAL, "isArchived": False,
                     "isScheduled": False, "executionStatus": status},
        "stageTime": {"submissionTime": int(time.time() * 1000), "runStartTime": None,
                      "completedTime": None},
        "startedBy": {"id": "0" * 24, "username": "hostile"},
        "commitDetails": {"inputCommitId": "abc123", "outputCommitId": None},
    }


@dataclass
class FakeDomino:
    """Just enough Domino state for a client to run a whole v4 job."""

    project_id: str = "aabbccddeeff001122334454"
    statuses: list[str] = field(default_factory=lambda: ["Running", "Succeeded"])
    stdout: str = "hello from the hostile server\n"
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    started: list[Any] = field(default_factory=list)
    _polls: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, req: Received) -> Reply | None:
        with self._lock:
            return self._handle(req)

    def _handle(self, req: Received) -> Reply | None:
        path, method = req.path, req.method
        if method == "GET" and path == "/version":
            return json_reply({"version": "5.10.0"})
        if method == "GET" and path == "/v4/gateway/projects/findProjectByOwnerAndName":
            owner = req.query.get("ownerName", [""])[0]
            name = req.query.get("projectName", [""])[0]
            return json_reply({"id": self.project_id, "name": name, "ownerName": owner})
        if method == "POST" and path == "/v4/jobs/start":
            body = req.json() or {}
            self.started.append(body)
            job_id = os.urandom(12).hex()
            job = job_body(job_id, "Queued", self.project_id, body.get("title"),
                           body.get("commandToRun", ""))
            job["number"] = len(self.started)
            self.jobs[job_id] = job
            self._polls[job_id] = 0
            return json_reply(job)
        if method == "POST" and path == "/v4/jobs/stop":
            job = self.jobs.get((req.json() or {}).get("jobId", ""))
            if job is None:
                return json_reply({"message": "job not found"}, 404)
            if not job["statuses"]["isCompleted"]:
                job["statuses"].update(executionStatus="Stopped", isCompleted=True)
            return Reply(200, b"")
        if method == "GET" and path == "/v4/jobs":
            jobs = sorted(self.jobs.values(), key=lambda j: j["number"], reverse=True)
            return json_reply({"jobs": jobs})
        if method == "GET" and path.startswith("/v4/jobs/") and path.count("/") == 3:
            job_id = path.rsplit("/", 1)[1]
            job = self.jobs.get(job_id)
            if job is None:
                return json_reply({"message": f"job {job_id} not found"}, 404)
            if not job["statuses"]["isCompleted"] and self.statuses:
                step = min(self._polls[job_id], len(self.statuses) - 1)
                self._polls[job_id] += 1
                status = self.statuses[step]
                job["statuses"].update(executionStatus=status, isCompleted=status in TERMINAL)
            return json_reply(job)
        if method == "GET" and path.startswith("/v1/projects/") and path.endswith("/stdout"):
            return json_reply({"setup": "", "stdout": self.stdout})
        return None


Handler = Callable[[Received], "Reply | None"]


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: HostileServer


class _Connection(socketserver.BaseRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        owner = self.server.owner
        sock: socket.socket = self.request
        if owner.tls is not None:
            try:
                sock = owner.tls.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError):
                with owner._lock:  # the client refused our certificate: some tests want that
                    owner.tls_failures += 1
                return
        owner._track(sock)
        try:
            sock.settimeout(30)
            req = _read_request(sock)
            if req is None:
                return
            owner._record(req)
            owner._respond(sock, owner._route(req))
        except OSError:
            pass
        finally:
            owner._untrack(sock)
            with contextlib.suppress(OSError):
                sock.close()


def _read_request(sock: socket.socket) -> Received | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = Headers()
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = rest
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    parts = urlsplit(target)
    return Received(method=method, path=parts.path, query=parse_qs(parts.query),
                    headers=headers, body=body[:length], target=target)


class HostileServer:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.domino = FakeDomino()
        self.received: list[Received] = []
        self.tls_failures = 0
        self._routes: list[tuple[str, str, Any]] = []
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closing = threading.Event()
        self._server: _TCPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> HostileServer:
        server = _TCPServer(("127.0.0.1", 0), _Connection)
        server.owner = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"hostile-{self.port}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self._lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    # --- routing -------------------------------------------------------------------------------

    def on(self, method: str, path_prefix: str, handler: Handler | Reply) -> None:
        with self._lock:
            self._routes.append((method.upper(), path_prefix, handler))

    def script(self, method: str, path_prefix: str, replies: Iterable[Reply]) -> None:
        queue = list(replies)
        lock = threading.Lock()

        def next_reply(_req: Received) -> Reply | None:
            with lock:
                return queue.pop(0) if queue else None

        self.on(method, path_prefix, next_reply)

    def requests_to(self, method: str = "*", path_prefix: str = "") -> list[Received]:
        with self._lock:
            return [r for r in self.received
                    if method in ("*", r.method) and r.path.startswith(path_prefix)]

    def _route(self, req: Received) -> Reply:
        with self._lock:
            routes = list(reversed(self._routes))
        for method, prefix, handler in routes:
            if method not in ("*", req.method) or not req.path.startswith(prefix):
                continue
            reply = handler if isinstance(handler, Reply) else handler(req)
            if reply is not None:
                return reply
        return self.domino.handle(req) or json_reply({"message": f"no route {req.path}"}, 404)

    # --- I/O -----------------------------------------------------------------------------------

    def _record(self, req: Received) -> None:
        with self._lock:
            self.received.append(req)

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.add(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._closing.wait(seconds)

    def _respond(self, sock: socket.socket, reply: Reply) -> None:
        self._sleep(reply.delay)
        if reply.raw is not None:
            if not reply.trickle:
                sock.sendall(reply.raw)
                return
            for index in range(len(reply.raw)):
                if self._closing.is_set():
                    return
                self._sleep(reply.trickle)
                sock.sendall(reply.raw[index:index + 1])
            return
        body = reply.body_bytes()
        pairs = list(reply.headers.items() if isinstance(reply.headers, Mapping) else reply.headers)
        names = {name.lower() for name, _ in pairs}
        if "content-type" not in names:
            pairs.append(("Content-Type", "application/json"))
        if "content-length" not in names:
            length = len(body) if reply.content_length is None else reply.content_length
            pairs.append(("Content-Length", str(length)))
        pairs.append(("Connection", "close"))
        reason = reply.reason if reply.reason is not None else _REASONS.get(reply.status, "Status")
        head = f"HTTP/1.1 {reply.status} {reason}\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in pairs
        ) + "\r\n"
        sock.sendall(head.encode("latin-1"))
        if not (reply.trickle or reply.reset_after is not None):
            sock.sendall(body)
            return
        limit = len(body) if reply.reset_after is None else min(reply.reset_after, len(body))
        for index in range(limit):
            if self._closing.is_set():
                return
            self._sleep(reply.trickle)
            sock.sendall(body[index:index + 1])
        if reply.reset_after is not None:
            _reset(sock)


def _reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN: the peer sees 'connection reset by peer'."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raise OSError("reset")


_REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 303: "See Other",
            307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request",
            401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}
