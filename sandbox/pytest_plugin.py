"""pytest plugin (entry point `pytest11`): sandbox fixtures for users' and our own tests.

Fixtures: `domino_sandbox` (function scope: a fresh `SandboxServer` on a free port) and
`domino_sandbox_session` (one per session). The sandbox is imported inside the fixtures, so
installing this package never breaks a pytest run that doesn't use them (or lacks starlette).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .server import SandboxServer


@pytest.fixture
def domino_sandbox() -> Iterator[SandboxServer]:
    """A fresh sandbox (project `demo/quick-start`, empty folder), stopped after the test."""
    from .server import SandboxServer

    with SandboxServer() as srv:
        yield srv


@pytest.fixture(scope="session")
def domino_sandbox_session() -> Iterator[SandboxServer]:
    """One sandbox shared by the whole session; reset its faults and stats if you change them."""
    from .server import SandboxServer

    with SandboxServer() as srv:
        yield srv
