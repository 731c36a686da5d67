"""The process supervisor: one thread that runs every execution as a real local process.

What lives here: command resolution (v1 list and v4 string rules), the lifecycle timers
(Queued -> Preparing -> Running -> Finishing -> terminal), and an epoll loop over every child's
stdout/stderr pipe. What must not: HTTP or JSON (see `app.py`, `views.py`).

Why one thread: the sandbox must hold 1,000 concurrent jobs, so there is no thread per process and
no asyncio child watcher. The loop reads all pipes non-blocking via `selectors`, appends frames to
each execution's `output.log` (see `stdout.py`, so output never piles up in memory) and reaps a
child after both pipes hit EOF, plus a periodic sweep for children that exit while something else
still holds their pipes. Every lifecycle transition happens on this thread; HTTP handlers only
queue commands, which removes the start/stop races by construction.

Each child gets its own session (`start_new_session=True`), so its pid is its process-group id and
stop signals the whole tree. A group is only signalled while its leader is unreaped (a zombie at
worst, found with `waitid(WNOWAIT)`), so the pgid cannot have been reused by an unrelated process.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .state import Execution, ExecutionStore
from .stdout import STDERR_TAG, STDOUT_TAG, encode_frame

log = logging.getLogger(__name__)

_READ_CHUNK = 65536
# A line longer than this is written out in pieces rather than held in memory.
_MAX_PARTIAL = 1 << 20
# Shell words that are not executables on PATH, so the launch pre-check must not reject them.
_SHELL_WORD_LIST = (
    "! [ [[ { ( . : alias bg break builtin case cd command continue declare echo eval exec exit "
    "export false fg for function getopts hash if jobs kill let local printf pwd read readonly "
    "return set shift source test time trap true type ulimit umask unalias unset until wait "
    "while"
)
_SHELL_WORDS = frozenset(_SHELL_WORD_LIST.split())


def resolve_v1_command(command: list[str], is_direct: bool) -> tuple[list[str], bool]:
    """(argv, use_shell) for a v1 `command` list (domino-api.md §2.2).

    `x.py` runs with this Python, `x.sh` with bash, anything else as an executable; `isDirect`
    joins the list into one shell command line.
    """
    if is_direct:
        return [" ".join(command)], True
    first = command[0]
    if first.endswith(".py"):
        return [sys.executable, *command], False
    if first.endswith(".sh"):
        return ["bash", *command], False
    return list(command), False


def resolve_v4_command(command: str) -> tuple[list[str], bool]:
    """(argv, use_shell) for a v4 `commandToRun` string: always through `/bin/sh -c`, with a
    leading `x.py`/`x.sh` word given its interpreter as Domino does (`"main.py a b"` works)."""
    stripped = command.lstrip()
    first = stripped.split(None, 1)[0] if stripped else ""
    if first.endswith(".py"):
        return [f"{shlex.quote(sys.executable)} {stripped}"], True
    if first.endswith(".sh"):
        return [f"bash {stripped}"], True
    return [command], True


def shell_precheck(command: str, path_env: str, cwd: Path) -> str | None:
    """Why a shell command cannot be launched at all (first word not found or not executable),
    or None. Such commands end in `Error`, not `Failed` with the shell's exit code 127."""
    try:
        tokens = shlex.split(command)
    except ValueError:
        return None  # let the shell report its own syntax error
    if not tokens:
        return "empty command"
    first = tokens[0]
    if "=" in first or first in _SHELL_WORDS or any(c in first for c in "$`*?[]{}()|;&<>~"):
        return None
    if "/" in first:
        target = Path(first) if os.path.isabs(first) else cwd / first
        if not target.exists():
            return f"{first}: No such file or directory"
        if target.is_dir() or not os.access(target, os.X_OK):
            return f"{first}: Permission denied"
        return None
    if shutil.which(first, path=path_env) is None:
        return f"{first}: command not found"
    return None


@dataclass
class _Proc:
    execution: Execution
    popen: subprocess.Popen[bytes]
    streams: dict[int, tuple[str, IO[bytes]]]
    buffers: dict[str, bytearray] = field(
        default_factory=lambda: {"stdout": bytearray(), "stderr": bytearray()}
    )
    last_byte: dict[str, bytes] = field(default_factory=lambda: {"stdout": b"", "stderr": b""})
    exited_at: float | None = None
    orphans_killed: bool = False
    reap_delay: float = 0.002

    @property
    def pid(self) -> int:
        return self.popen.pid


class Supervisor:
    """Owns every child process of one sandbox. Thread-safe entry points: `submit`,
    `request_stop`, `shutdown`; everything else runs on the supervisor thread."""

    def __init__(
        self,
        store: ExecutionStore,
        *,
        stop_grace: float = 1.0,
        sweep_interval: float = 0.5,
        orphan_grace: float = 0.5,
    ) -> None:
        self.store = store
        self.stop_grace = stop_grace
        self.sweep_interval = sweep_interval
        self.orphan_grace = orphan_grace
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._commands: deque[tuple[str, str]] = deque()
        self._timers: list[tuple[float, int, str, str]] = []
        self._seq = itertools.count()
        self._procs: dict[str, _Proc] = {}
        self._finishing: dict[str, str] = {}
        self._thread = threading.Thread(target=self._run, name="sandbox-supervisor", daemon=True)
        self._wake_lock = threading.Lock()
        self._closed = False
        env = dict(os.environ)
        # The venv's bin first, so `python x.py` in a shell command finds this interpreter.
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
        env["PYTHONUNBUFFERED"] = "1"  # live stdout for Python jobs without `-u`
        self._base_env = env

    # -- thread-safe API ----------------------------------------------------------------------
    def start(self) -> None:
        """Start the supervisor thread that runs the jobs."""
        self._thread.start()

    def submit(self, execution: Execution) -> None:
        """Queue ``execution`` to be run."""
        self._command("submit", execution.id)

    def request_stop(self, execution: Execution) -> None:
        """Mark ``execution`` StopRequested (as Domino shows it) and have the supervisor stop its
        process; a finished or already stopping one is left alone."""
        with self.store.lock:
            if execution.is_completed or execution.stop_requested:
                return
            execution.stop_requested = True
            # domino-api.md §2.4 "stop flags": visible until the supervisor acts.
            execution.status = "StopRequested"
        self._command("stop", execution.id)

    def shutdown(self, timeout: float = 15.0) -> None:
        """Stop the supervisor thread, waiting up to ``timeout`` seconds."""
        if self._thread.is_alive():
            self._command("shutdown", "")
            self._thread.join(timeout)

    def live_pids(self) -> list[int]:
        """The process ids of the jobs running now."""
        return [p.pid for p in list(self._procs.values())]

    def _command(self, kind: str, ident: str) -> None:
        self._commands.append((kind, ident))
        with self._wake_lock:
            if self._closed:  # never write to a closed (and maybe reused) fd number
                return
            with contextlib.suppress(BlockingIOError):
                os.write(self._wake_w, b"x")

    # -- loop ---------------------------------------------------------------------------------
    def _run(self) -> None:
        next_sweep = time.monotonic() + self.sweep_interval
        while True:
            now = time.monotonic()
            timeout = next_sweep - now
            if self._timers:
                timeout = min(timeout, self._timers[0][0] - now)
            for key, _ in self._sel.select(max(0.0, timeout)):
                if key.data is None:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self._wake_r, 4096):
                            pass
                else:
                    self._guard(self._on_readable, key.fd, key.data)
            while self._commands:
                kind, ident = self._commands.popleft()
                if kind == "shutdown":
                    self._shutdown_all()
                    return
                self._guard(self._dispatch, kind, ident)
            now = time.monotonic()
            while self._timers and self._timers[0][0] <= now:
                _, _, kind, ident = heapq.heappop(self._timers)
                self._guard(self._dispatch, kind, ident)
            if now >= next_sweep:
                self._guard(self._sweep)
                next_sweep = now + self.sweep_interval

    def _guard(self, fn: object, *args: object) -> None:
        try:
            fn(*args)  # type: ignore[operator]
        except Exception:  # the loop must survive anything; one bad execution can't stop others
            log.exception("sandbox supervisor: %s%r failed", getattr(fn, "__name__", fn), args)

    def _later(self, delay: float, kind: str, ident: str) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), kind, ident))

    def _dispatch(self, kind: str, ident: str) -> None:
        execution = self.store.get(ident)
        if execution is None:
            return
        handler = {
            "submit": self._on_submit,
            "prepare": self._on_prepare,
            "launch": self._on_launch,
            "finish": self._on_finish,
            "stop": self._on_stop,
            "kill": self._on_kill,
            "reap": self._on_reap,
        }[kind]
        handler(execution)

    # -- lifecycle steps ----------------------------------------------------------------------
    def _active(self, execution: Execution) -> bool:
        with self.store.lock:
            return not (execution.is_completed or execution.stop_requested)

    def _on_submit(self, execution: Execution) -> None:
        self._later(self.store.phase_delay, "prepare", execution.id)

    def _on_prepare(self, execution: Execution) -> None:
        if not self._active(execution):
            return
        with self.store.lock:
            execution.status = "Preparing"
            execution.setup_lines = 2
        try:
            execution.exec_dir.mkdir(parents=True, exist_ok=True)
            src = execution.project.source_dir
            if src is not None:
                shutil.copytree(src, execution.workdir, symlinks=True, dirs_exist_ok=True)
            else:
                execution.workdir.mkdir(exist_ok=True)
        except OSError as exc:
            self._launch_error(execution, f"cannot copy project files: {exc}")
            return
        self._later(self.store.phase_delay, "launch", execution.id)

    def _env(self, execution: Execution) -> dict[str, str]:
        env = dict(self._base_env)
        env.update(
            DOMINO_RUN_ID=execution.id,
            DOMINO_RUN_NUMBER=str(execution.number),
            DOMINO_PROJECT_OWNER=execution.project.owner,
            DOMINO_PROJECT_NAME=execution.project.name,
            DOMINO_STARTING_USERNAME=self.store.username,
            DOMINO_HARDWARE_TIER_ID=execution.hardware_tier.id,
            DOMINO_WORKING_DIR=str(execution.workdir),
        )
        return env

    def _on_launch(self, execution: Execution) -> None:
        if not self._active(execution):
            return
        env = self._env(execution)
        argv = list(execution.argv)
        if execution.use_shell:
            problem = shell_precheck(argv[0], env["PATH"], execution.workdir)
            if problem is not None:
                self._launch_error(execution, problem)
                return
            argv = ["/bin/sh", "-c", argv[0]]
        try:
            popen = subprocess.Popen(
                argv,
                cwd=execution.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                close_fds=True,
            )
        except (OSError, ValueError) as exc:
            self._launch_error(execution, f"cannot launch {argv[0]}: {exc}")
            return
        assert popen.stdout is not None and popen.stderr is not None
        streams = {popen.stdout.fileno(): ("stdout", popen.stdout)}
        streams[popen.stderr.fileno()] = ("stderr", popen.stderr)
        proc = _Proc(execution=execution, popen=popen, streams=streams)
        self._procs[execution.id] = proc
        for fd in streams:
            os.set_blocking(fd, False)
            self._sel.register(fd, selectors.EVENT_READ, proc)
        with self.store.lock:
            execution.pid = popen.pid
            execution.started_ms = int(time.time() * 1000)
            execution.setup_lines = 4
        self.store.set_status(execution, "Running")

    def _launch_error(self, execution: Execution, message: str) -> None:
        # The reason goes into the rendered log as a stderr line (not into the raw stream files,
        # which hold only what a process wrote).
        self._append_log(execution, STDERR_TAG, f"sandbox: {message}\n".encode())
        with self.store.lock:
            execution.failure_message = message
        self.store.set_status(execution, "Error")

    def _on_finish(self, execution: Execution) -> None:
        final = self._finishing.pop(execution.id, None)
        if final is not None:
            self.store.set_status(execution, final)

    def _on_stop(self, execution: Execution) -> None:
        proc = self._procs.get(execution.id)
        if proc is None:  # not launched yet, or already Finishing: nothing to signal
            self._finishing.pop(execution.id, None)
            self.store.set_status(execution, "Stopped")
            return
        self.store.set_status(execution, "Stopping")
        self._signal_group(proc, signal.SIGTERM)
        self._later(self.stop_grace, "kill", execution.id)

    def _on_kill(self, execution: Execution) -> None:
        proc = self._procs.get(execution.id)
        if proc is not None:
            self._signal_group(proc, signal.SIGKILL)

    def _signal_group(self, proc: _Proc, sig: int) -> None:
        # Safe: proc is still in self._procs, so its leader is unreaped and the pgid is ours.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)

    # -- pipes --------------------------------------------------------------------------------
    def _on_readable(self, fd: int, proc: _Proc) -> None:
        stream = proc.streams[fd][0]
        try:
            data = os.read(fd, _READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._on_data(proc, stream, data)
        else:
            self._close_stream(proc, fd)
            if not proc.streams:
                self._try_reap(proc)

    def _on_data(self, proc: _Proc, stream: str, data: bytes) -> None:
        execution = proc.execution
        with execution.raw_path(stream).open("ab") as fh:
            fh.write(data)
        proc.last_byte[stream] = data[-1:]
        buf = proc.buffers[stream]
        buf += data
        # Only complete lines are published; a partial line waits for its newline (stdout.py).
        cut = buf.rfind(b"\n") + 1
        if len(buf) - cut > _MAX_PARTIAL:
            cut = len(buf)
        if cut:
            frame = bytes(buf[:cut])
            del buf[:cut]
            self._append_log(execution, STDOUT_TAG if stream == "stdout" else STDERR_TAG, frame)

    def _append_log(self, execution: Execution, tag: bytes, data: bytes) -> None:
        frame = encode_frame(tag, data)
        execution.exec_dir.mkdir(parents=True, exist_ok=True)
        with execution.log_path.open("ab") as fh:
            fh.write(frame)
        with self.store.lock:
            execution.log_size += len(frame)

    def _close_stream(self, proc: _Proc, fd: int) -> None:
        stream, fh = proc.streams.pop(fd)
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(fd)
        fh.close()
        buf = proc.buffers[stream]
        execution = proc.execution
        if buf:
            tag = STDOUT_TAG if stream == "stdout" else STDERR_TAG
            self._append_log(execution, tag, bytes(buf))
            buf.clear()
        unterminated = proc.last_byte[stream] not in (b"", b"\n")
        with self.store.lock:
            setattr(execution, f"{stream}_unterminated", unterminated)

    def _leader_exited(self, proc: _Proc) -> bool:
        try:
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def _on_reap(self, execution: Execution) -> None:
        proc = self._procs.get(execution.id)
        if proc is not None and not proc.streams:
            self._try_reap(proc)

    def _try_reap(self, proc: _Proc) -> None:
        if not self._leader_exited(proc):
            # Pipes closed but the leader is not a zombie yet (usually a few microseconds away):
            # retry soon with backoff; the sweep covers a child that lives on without pipes.
            if proc.reap_delay < self.sweep_interval:
                self._later(proc.reap_delay, "reap", proc.execution.id)
                proc.reap_delay *= 4
            return
        # Domino tears the container down when the main process ends: kill what it left behind.
        self._signal_group(proc, signal.SIGKILL)
        returncode = proc.popen.wait()
        for fd in list(proc.streams):
            self._close_stream(proc, fd)
        del self._procs[proc.execution.id]
        self._after_exit(proc.execution, returncode)

    def _after_exit(self, execution: Execution, returncode: int) -> None:
        with self.store.lock:
            execution.exit_code = returncode
            stopped = execution.stop_requested
            if returncode != 0 and not stopped:
                execution.failure_message = f"Process exited with code {returncode}"
        if stopped:
            self.store.set_status(execution, "Stopped")
            return
        self.store.set_status(execution, "Finishing")
        self._finishing[execution.id] = "Succeeded" if returncode == 0 else "Failed"
        self._later(self.store.phase_delay, "finish", execution.id)

    def _sweep(self) -> None:
        now = time.monotonic()
        for proc in list(self._procs.values()):
            if proc.exited_at is None:
                if not self._leader_exited(proc):
                    continue
                proc.exited_at = now
            if not proc.streams:
                self._try_reap(proc)
            elif not proc.orphans_killed and now - proc.exited_at > self.orphan_grace:
                # Leader gone but a descendant still holds the pipes.
                self._signal_group(proc, signal.SIGKILL)
                proc.orphans_killed = True
            elif now - proc.exited_at > self.orphan_grace + 5:
                # Held by something outside the group (it called setsid): stop waiting for EOF.
                for fd in list(proc.streams):
                    self._close_stream(proc, fd)
                self._try_reap(proc)

    def _shutdown_all(self) -> None:
        procs = list(self._procs.values())
        for proc in procs:
            self._signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace
        while time.monotonic() < deadline and not all(self._leader_exited(p) for p in procs):
            time.sleep(0.02)
        for proc in procs:
            self._signal_group(proc, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=5)
            for fd in list(proc.streams):
                self._close_stream(proc, fd)
            with self.store.lock:
                proc.execution.stop_requested = True
            self.store.set_status(proc.execution, "Stopped")
        self._procs.clear()
        self._sel.close()
        with self._wake_lock:
            self._closed = True
            os.close(self._wake_r)
            os.close(self._wake_w)
