"""The CLI as a user runs it: ``python -m domino_orchestrate`` in a real subprocess, pointed at the
sandbox (real jobs, real processes) or at the hostile server (answers Domino would never give).

- ``sandbox``: one ``SandboxServer`` per module, project ``cli/demo``.
- ``hostile``: a fresh hostile server (``tests/hostile/server.py``) per test; ``hostile_other``
  a second one playing another host; ``private_ca`` and ``tls_hostile`` (HTTPS) from
  ``tests/hostile/conftest.py``.
- ``cli_env(url, key)``: a clean environment for the CLI: the developer's DOMINO_*, proxy and
  CA-bundle variables never leak into a test.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from domino_orchestrate.sandbox import SandboxServer

PROJECT = "cli/demo"
CLI = [sys.executable, "-m", "domino_orchestrate"]
_SCRUB = ("DOMINO_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE",
          "CURL_CA_BUNDLE", "SSL_CERT_", "OPENLINEAGE", "PYTHONWARNINGS",
          # what decides colours, terminal detection and width (rich, typer): tests set them
          "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES",
          "TERMINAL_WIDTH", "GITHUB_ACTIONS", "PY_COLORS", "_TYPER", "_DOMINO_ORCHESTRATE_")


def _hostile_package() -> str:
    # tests/ is not a package (importlib mode): load tests/hostile as one, under a stable name of
    # our own, so its server and its TLS fixtures can be imported here.
    name = "domino_orchestrate_tests_hostile"
    if name not in sys.modules:
        package = ModuleType(name)
        package.__path__ = [str(Path(__file__).resolve().parents[1] / "hostile")]
        sys.modules[name] = package
    return name


hostile_server = importlib.import_module(f"{_hostile_package()}.server")
_hostile_fixtures = importlib.import_module(f"{_hostile_package()}.conftest")
private_ca = _hostile_fixtures.private_ca  # a CA and a 127.0.0.1 certificate signed by it
tls_hostile = _hostile_fixtures.tls_hostile  # the hostile server over HTTPS with that certificate


def cli_env(url: str, api_key: str, project: str | None = PROJECT, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(_SCRUB)}
    env.update(DOMINO_API_HOST=url, DOMINO_USER_API_KEY=api_key, PYTHONUNBUFFERED="1")
    if project:
        env["DOMINO_PROJECT"] = project
    env.update(extra)
    return env


def run_cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=timeout,
                          errors="surrogateescape")


def popen_cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)


def signal_after_first_line(proc: subprocess.Popen[str], first: str, signum: int) -> str:
    """Send ``signum`` once the CLI printed ``first``; its stderr once it exited (killed if not)."""
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == first
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return err


def one_error_line(stderr: str) -> str:
    """The CLI's one ``error: …`` line on ``stderr`` (and no traceback)."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def on_a_terminal(env: dict[str, str], *args: str, stdout_too: bool = True) -> str:
    """Run the CLI with its stderr — and its stdout unless ``stdout_too`` is False (then a pipe)
    — on a pseudo-terminal; asserts it exits 0 and returns everything the terminal showed."""
    import pty

    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([*CLI, *args], stdout=slave if stdout_too else subprocess.PIPE,
                                stderr=slave, env=env, start_new_session=True)
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the CLI closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=30) == 0
    finally:
        os.close(master)
    return b"".join(chunks).decode()


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(projects={PROJECT: None}, phase_delay=0.02, stop_grace=1.0) as srv:
        yield srv


@pytest.fixture
def env(sandbox: SandboxServer) -> dict[str, str]:
    return cli_env(sandbox.url, sandbox.api_key)


@pytest.fixture
def hostile() -> Iterator[Any]:
    with hostile_server.HostileServer() as server:
        yield server


@pytest.fixture
def hostile_other() -> Iterator[Any]:
    """A second hostile server: "another host", to check that nothing secret reached it."""
    with hostile_server.HostileServer() as server:
        yield server


def executions_titled(sandbox: SandboxServer, prefix: str) -> list[Any]:
    """The sandbox's own record of the executions whose title starts with ``prefix``."""
    return [e for e in sandbox.ctx.store.all() if (e.title or "").startswith(prefix)]
