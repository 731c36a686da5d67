"""A real headless Chromium (Debian's, driven by Playwright) and the lineage page served the way
users serve it, for the web page tests.

- ``chromium``: one persistent browser context per pytest session, launched from Debian's
  ``/usr/bin/chromium`` with a fresh user-data directory (Playwright never downloads a browser
  here). Mark tests that use it ``@pytest.mark.xdist_group("browser")`` so they share one worker.
- ``browser_page``: a new tab per test, closed afterwards; it fails the test if the page logged
  a Content-Security-Policy violation or threw a JavaScript error (there is no script to throw).
- ``ServedPage(store_path)``: ``domino-orchestrate lineage serve --store PATH --port 0`` in its
  own process group on loopback; ``url`` is read from uvicorn's "running on" line. Stopped with
  SIGINT (Ctrl-C) to its process group.

Import what you use (``from .browser import ServedPage, browser_page, chromium``): the suite
runs with ``--import-mode=importlib`` and this directory's conftest belongs to the store tests.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
#: The installed console script, as users run it (``python -m`` if this venv has none).
_SCRIPT = Path(sys.executable).with_name("domino-orchestrate")
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "domino_orchestrate"]

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "ServedPage", "browser_page", "chromium"]


class ServedPage:
    """The lineage page of the store at ``store_path``, served by the CLI in a subprocess."""

    def __init__(self, store_path: Path, startup_s: float = 60.0) -> None:
        self.store_path = store_path
        self.startup_s = startup_s
        self.url = ""
        self.log: list[str] = []
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> ServedPage:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
        self._process = subprocess.Popen(
            [*CLI, "lineage", "serve", "--store", str(self.store_path),
             "--host", "127.0.0.1", "--port", "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env=env, start_new_session=True)
        found = threading.Event()

        def read(stream: Any) -> None:  # keeps draining the log so the server never blocks
            for line in stream:
                self.log.append(line)
                match = re.search(r"running on (http://127\.0\.0\.1:\d+)", line)
                if match and not found.is_set():
                    self.url = match.group(1)
                    found.set()

        threading.Thread(target=read, args=(self._process.stderr,), daemon=True).start()
        deadline = time.monotonic() + self.startup_s
        while not found.wait(0.05):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("lineage serve did not start:\n" + "".join(self.log))
        return self

    def __exit__(self, *exc: object) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Playwright ``BrowserContext`` of Debian's Chromium, headless, with a fresh profile.

    Module-scoped on purpose: while Playwright's sync API is open, its event loop counts as
    running in this thread, so every later ``asyncio.run`` on the same xdist worker would fail."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():  # CI installs Debian's chromium: fail loudly rather than skip
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS),
            viewport={"width": 1400, "height": 900},
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def browser_page(chromium: Any) -> Iterator[Any]:
    """A fresh tab in the session's Chromium; closed after the test, which fails if the page
    reported a script error or a Content-Security-Policy violation."""
    page = chromium.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(message.text)
            if "Content Security Policy" in message.text else None)
    try:
        yield page
    finally:
        page.close()
    assert not problems, problems
