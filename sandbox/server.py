"""Running the sandbox: in-process (`SandboxServer`), as a child process (`SandboxProcess`) and
from the command line (`main`).

What lives here: wiring (store + supervisor + app + uvicorn), socket binding, start/stop and the
out-of-band helpers (stats, faults, tokens, raw output). No routes or process logic.

`SandboxServer.start()` binds the socket itself (so `port=0` yields the real port at once), then
runs uvicorn on a background thread with its own event loop. `stop()` stops uvicorn, terminates
every process the sandbox started (by process group) and removes the temp data dir it created.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

DEFAULT_PROJECTS: dict[str, str | os.PathLike[str] | None] = {"demo/quick-start": None}
READY_PREFIX = "Domino sandbox listening on "


def raise_nofile_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit: 1,000 jobs hold 2,000+ pipe fds."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = hard if hard != resource.RLIM_INFINITY else 1 << 20
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ImportError, ValueError, OSError):
        pass


class SandboxServer:
    """A Domino-compatible server on real HTTP, running in this process.

    Args:
        projects: ``{"owner/name": folder or None}``; each execution runs in a fresh copy of the
            folder (an empty folder for None). Default: ``demo/quick-start`` with an empty folder.
        api_key: the accepted ``X-Domino-Api-Key``; generated when None.
        data_dir: where execution folders and logs go; a temp dir (removed on stop) when None.
        fault_rate, fault_seed, fault_kinds: fault injection (see `faults.py`).
        port, host: where to listen; port 0 picks a free port.
        phase_delay: seconds spent in each of Queued, Preparing and Finishing.
        stop_grace: seconds between SIGTERM and SIGKILL when stopping a job.
        slow_seconds: delay of the ``slow`` fault.
        http: uvicorn HTTP implementation: "auto" (httptools when installed) or "h11".
    """

    def __init__(
        self,
        projects: Mapping[str, str | os.PathLike[str] | None] | None = None,
        api_key: str | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        fault_rate: float = 0.0,
        fault_seed: int = 0,
        fault_kinds: str | Sequence[str] | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        phase_delay: float = 0.05,
        *,
        stop_grace: float = 1.0,
        slow_seconds: float = 2.0,
        http: str = "auto",
    ) -> None:
        from .faults import parse_kinds

        self.projects = dict(projects if projects is not None else DEFAULT_PROJECTS)
        self.api_key = api_key or secrets.token_hex(16)
        self.host = host
        self.port = port
        self.phase_delay = phase_delay
        self.stop_grace = stop_grace
        self.http = http
        self._data_dir_arg = data_dir
        self._faults_args = (fault_rate, parse_kinds(_kinds_list(fault_kinds)), fault_seed)
        self._slow_seconds = slow_seconds
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._own_data_dir: Path | None = None
        self.ctx: Any = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self, timeout: float = 15.0) -> SandboxServer:
        """Start listening; returns once the server accepts connections."""
        import uvicorn

        from .app import SandboxContext, build_app
        from .faults import ConnectionRegistry, FaultInjector, tracking_protocol_class
        from .middleware import RequestStats, TokenStore
        from .processes import Supervisor
        from .state import ExecutionStore

        if self._thread is not None:
            raise RuntimeError("sandbox already started")
        raise_nofile_limit()
        if self._data_dir_arg is None:
            self._own_data_dir = Path(tempfile.mkdtemp(prefix="domino-sandbox-"))
            data_dir = self._own_data_dir
        else:
            data_dir = Path(self._data_dir_arg)
            data_dir.mkdir(parents=True, exist_ok=True)
        store = ExecutionStore(data_dir.resolve(), phase_delay=self.phase_delay)
        for name, folder in self.projects.items():
            store.add_project(name, folder)
        rate, kinds, seed = self._faults_args
        registry = ConnectionRegistry()
        self.ctx = SandboxContext(
            store=store,
            supervisor=Supervisor(store, stop_grace=self.stop_grace),
            faults=FaultInjector(rate, kinds, seed, self._slow_seconds),
            stats=RequestStats(),
            tokens=TokenStore(self.api_key),
            registry=registry,
        )
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
        # accepted ones inherit it. With proto 0, Nagle held each response's body back until the
        # client's delayed ACK of its head: every request took 40 ms more than Domino's would.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            build_app(self.ctx),
            loop="asyncio",
            http=tracking_protocol_class(registry, self.http),
            log_level="warning",
            access_log=False,
            lifespan="off",
            backlog=2048,
            # Longer than any sane poll interval: a keep-alive connection closed by the server
            # just as a client reuses it would show up as a spurious client error.
            timeout_keep_alive=75,
            timeout_graceful_shutdown=3,
        )
        self._server = uvicorn.Server(config)
        self.ctx.supervisor.start()
        # A forgotten stop() must not leave `sleep 60` jobs running after the interpreter exits.
        atexit.register(self.stop)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="sandbox-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("sandbox HTTP server failed to start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop HTTP, terminate every process this sandbox started, remove its temp dir."""
        atexit.unregister(self.stop)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
        if self.ctx is not None:
            self.ctx.supervisor.shutdown()
        if self._own_data_dir is not None:
            shutil.rmtree(self._own_data_dir, ignore_errors=True)
            self._own_data_dir = None

    def __enter__(self) -> SandboxServer:
        return self.start() if self._thread is None else self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- info and out-of-band controls --------------------------------------------------------
    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return Path(self.ctx.store.data_dir)

    def project_id(self, full_name: str) -> str:
        """The id of project ``full_name`` (OWNER/NAME); KeyError if the sandbox has none."""
        owner, _, name = full_name.partition("/")
        project = self.ctx.store.find_project(owner, name)
        if project is None:
            raise KeyError(full_name)
        return str(project.id)

    def stats(self) -> dict[str, Any]:
        """Request counts per route and status, starts per title, executions per status and
        injected faults."""
        return dict(self.ctx.stats_snapshot())

    def reset_stats(self) -> None:
        """Zero the counts ``stats`` returns (executions stay)."""
        self.ctx.reset_stats()

    def set_faults(
        self,
        rate: float | None = None,
        kinds: Sequence[str] | str | None = None,
        seed: int | None = None,
        slow_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Change fault injection (None keeps a setting); returns the new settings."""
        return dict(self.ctx.faults.configure(rate, _kinds_list(kinds), seed, slow_seconds))

    def set_phase_delay(self, seconds: float) -> None:
        """Seconds each phase of an execution (Queued, Preparing, …) lasts from now on."""
        self.ctx.store.phase_delay = max(0.0, float(seconds))

    def add_token(self, token: str) -> None:
        """Accept ``token`` as a bearer token."""
        self.ctx.tokens.add(token)

    def expire_token(self, token: str) -> None:
        """Refuse ``token`` from now on, with a 401 saying it expired."""
        self.ctx.tokens.expire(token)

    def revoke_token(self, token: str) -> None:
        """Refuse ``token`` from now on, as an invalid token."""
        self.ctx.tokens.revoke(token)

    def output(self, job_id: str) -> tuple[bytes, bytes]:
        """Raw (stdout, stderr) bytes exactly as the process wrote them."""
        from .app import read_raw

        ex = self.ctx.store.get(job_id)
        if ex is None:
            raise KeyError(job_id)
        return read_raw(ex, "stdout"), read_raw(ex, "stderr")

    def execution_info(self, job_id: str) -> dict[str, Any]:
        """What the sandbox knows of execution ``job_id``, read over HTTP as a client would."""
        with httpx.Client(base_url=self.url, timeout=10) as client:
            resp = client.get(f"/__sandbox__/executions/{job_id}")
            resp.raise_for_status()
            return dict(resp.json())


def _kinds_list(kinds: str | Sequence[str] | None) -> list[str] | None:
    if kinds is None:
        return None
    return [k for k in kinds.split(",")] if isinstance(kinds, str) else [str(k) for k in kinds]


class SandboxProcess:
    """The sandbox as a separate OS process (`python -m domino_orchestrate.sandbox`), for
    benchmarks and demos. Same arguments as `SandboxServer`; controlled over HTTP."""

    def __init__(
        self,
        projects: Mapping[str, str | os.PathLike[str] | None] | None = None,
        api_key: str | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        fault_rate: float = 0.0,
        fault_seed: int = 0,
        fault_kinds: str | Sequence[str] | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        phase_delay: float = 0.05,
        *,
        python: str = sys.executable,
        extra_args: Sequence[str] = (),
        stderr: Any = None,
    ) -> None:
        self.api_key = api_key or secrets.token_hex(16)
        args = [python, "-m", "domino_orchestrate.sandbox", "--host", host, "--port", str(port)]
        args += ["--api-key", self.api_key, "--phase-delay", str(phase_delay)]
        args += ["--fault-rate", str(fault_rate), "--fault-seed", str(fault_seed)]
        if fault_kinds:
            args += ["--fault-kinds", ",".join(_kinds_list(fault_kinds) or [])]
        if data_dir is not None:
            args += ["--data-dir", str(data_dir)]
        for name, folder in (projects if projects is not None else DEFAULT_PROJECTS).items():
            args += ["--project", name if folder is None else f"{name}={folder}"]
        self.args = [*args, *extra_args]
        self._stderr = stderr
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> SandboxProcess:
        """Start the sandbox process and return once it reported its URL; RuntimeError if it did
        not in ``timeout`` seconds."""
        self.proc = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1
        )
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                self.stop()
                raise RuntimeError("sandbox subprocess did not report its address in time")
        line = self.proc.stdout.readline().strip()
        if not line.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(f"unexpected first line from sandbox: {line!r}")
        self.url = line[len(READY_PREFIX) :]
        # Keep draining stdout so the child can never block on a full pipe.
        out = self.proc.stdout
        threading.Thread(target=lambda: [None for _ in out], daemon=True).start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process and wait up to ``timeout`` seconds, then SIGKILL it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> SandboxProcess:
        return self.start() if self.proc is None else self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _oob(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            resp = client.request(method, f"/__sandbox__/{path}", **kwargs)
            resp.raise_for_status()
            return resp

    def stats(self) -> dict[str, Any]:
        """As ``SandboxServer.stats``, over HTTP."""
        return dict(self._oob("GET", "stats").json())

    def reset_stats(self) -> None:
        """As ``SandboxServer.reset_stats``, over HTTP."""
        self._oob("POST", "stats/reset")

    def set_faults(
        self,
        rate: float | None = None,
        kinds: Sequence[str] | str | None = None,
        seed: int | None = None,
        slow_seconds: float | None = None,
    ) -> dict[str, Any]:
        """As ``SandboxServer.set_faults``, over HTTP."""
        body = {"rate": rate, "kinds": _kinds_list(kinds), "seed": seed}
        body["slow_seconds"] = slow_seconds
        return dict(self._oob("POST", "faults", json=body).json())

    def add_token(self, token: str) -> None:
        """As ``SandboxServer.add_token``, over HTTP."""
        self._oob("POST", "tokens", json={"token": token, "action": "add"})

    def expire_token(self, token: str) -> None:
        """As ``SandboxServer.expire_token``, over HTTP."""
        self._oob("POST", "tokens", json={"token": token, "action": "expire"})

    def output(self, job_id: str) -> tuple[bytes, bytes]:
        """Raw (stdout, stderr) bytes exactly as the job's process wrote them, over HTTP."""
        out = self._oob("GET", f"executions/{job_id}/output", params={"stream": "stdout"})
        err = self._oob("GET", f"executions/{job_id}/output", params={"stream": "stderr"})
        return out.content, err.content


def spawn_sandbox_subprocess(**kwargs: Any) -> SandboxProcess:
    """Start `SandboxProcess(**kwargs)` and return it once it is listening."""
    return SandboxProcess(**kwargs).start()


def _parse_project(value: str) -> tuple[str, str | None]:
    name, sep, folder = value.partition("=")
    owner, slash, proj = name.partition("/")
    if not slash or not owner or not proj:
        raise argparse.ArgumentTypeError(f"expected OWNER/NAME[=DIR], got {value!r}")
    return name, (folder if sep else None)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``domino-orchestrate sandbox``."""
    p = argparse.ArgumentParser(
        prog="domino-orchestrate sandbox",
        description="Run a local Domino-compatible API server whose jobs are local processes.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--api-key", default=None, help="default: generated and printed")
    p.add_argument(
        "--project",
        action="append",
        type=_parse_project,
        default=[],
        metavar="OWNER/NAME[=DIR]",
        help="repeatable; default demo/quick-start with an empty folder",
    )
    p.add_argument("--data-dir", default=None, help="default: a temp dir removed on exit")
    p.add_argument("--fault-rate", type=float, default=0.0, help="share of API requests that fail")
    p.add_argument("--fault-seed", type=int, default=0)
    p.add_argument(
        "--fault-kinds",
        default=None,
        help="comma list of 500,502,503,504,429,reset,slow,html,truncated (default: all)",
    )
    p.add_argument("--phase-delay", type=float, default=0.05, help="seconds per Queued/...")
    p.add_argument("--stop-grace", type=float, default=1.0, help="SIGTERM to SIGKILL seconds")
    p.add_argument("--slow-seconds", type=float, default=2.0, help="delay of the slow fault")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox from the command line (``argv``: its arguments) until SIGINT or SIGTERM;
    prints its URL and API key. Returns the exit code (2: it could not start)."""
    args = build_parser().parse_args(argv)
    projects: dict[str, str | os.PathLike[str] | None] = dict(args.project) or dict(
        DEFAULT_PROJECTS
    )
    try:
        srv = SandboxServer(
            projects=projects,
            api_key=args.api_key,
            data_dir=args.data_dir,
            fault_rate=args.fault_rate,
            fault_seed=args.fault_seed,
            fault_kinds=args.fault_kinds,
            port=args.port,
            host=args.host,
            phase_delay=args.phase_delay,
            stop_grace=args.stop_grace,
            slow_seconds=args.slow_seconds,
        )
        srv.start()
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"{READY_PREFIX}{srv.url}", flush=True)
    print(f"API key: {srv.api_key}")
    for name in srv.projects:
        print(f"Project: {name} (id {srv.project_id(name)})")
    print(f"Data dir: {srv.data_dir}")
    print(f"  export DOMINO_API_HOST={srv.url} DOMINO_USER_API_KEY={srv.api_key}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        with contextlib.suppress(Exception):
            srv.stop()
    return 0
