"""Fixtures for the Dagster integration tests: the sandbox, a sandbox-backed ``DominoResource``
with quick poll settings, and a fresh ephemeral Dagster instance."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dagster import DagsterInstance

from domino_orchestrate.dagster import DominoResource
from domino_orchestrate.sandbox.server import SandboxServer

PROJECT = "demo/quick-start"


@pytest.fixture
def srv(domino_sandbox: SandboxServer) -> SandboxServer:
    return domino_sandbox


@pytest.fixture
def domino(srv: SandboxServer) -> DominoResource:
    return DominoResource(
        host=srv.url, project=PROJECT, api_key=srv.api_key,
        poll_freq=0.5, initial_interval=0.2, stop_timeout=15,
    )


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as inst:
        yield inst
