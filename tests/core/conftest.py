"""Core integration fixtures: one sandbox per test module over real HTTP, both drivers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from domino_orchestrate.core import AsyncDominoClient, DominoClient, RetryPolicy
from domino_orchestrate.sandbox import SandboxServer

PROJECT = "demo/quick-start"
FAST_RETRY = RetryPolicy(max_retries=6, initial_wait=0.05, max_wait=0.5, max_retry_after=2.0)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(projects={PROJECT: None}, phase_delay=0.05) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean_domino_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DOMINO_API_HOST", "DOMINO_USER_API_KEY", "DOMINO_TOKEN_FILE", "DOMINO_API_PROXY",
                 "DOMINO_MAX_RETRIES", "DOMINO_VERIFY_CERTIFICATE"):
        monkeypatch.delenv(name, raising=False)


class AsyncAsSync:
    """Runs each AsyncDominoClient call in its own event loop, so one scenario table serves both
    drivers."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            async def go() -> Any:
                async with AsyncDominoClient(**self._kwargs) as client:
                    return await getattr(client, name)(*args, **kwargs)

            return asyncio.run(go())

        return call


@pytest.fixture(params=["sync", "async"])
def make_client(request: pytest.FixtureRequest, sandbox: SandboxServer) -> Any:
    def make(**overrides: Any) -> Any:
        kwargs: dict[str, Any] = {"host": sandbox.url, "project": PROJECT, "api_key": sandbox.api_key,
                                  "retry_policy": FAST_RETRY, **overrides}
        return DominoClient(**kwargs) if request.param == "sync" else AsyncAsSync(**kwargs)

    return make
