"""Fixtures for the Prefect integration tests: one Prefect test harness (temporary local API) per
xdist worker, one shared sandbox, credentials for it, and helpers that read logs, artifacts and
states back through the Prefect API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.sorting import LogSort
from prefect.logging.handlers import APILogWorker

from domino_orchestrate.core import DominoClient, JobSnapshot, PollOptions
from domino_orchestrate.prefect import DominoCredentials
from domino_orchestrate.sandbox.server import SandboxServer

PROJECT = "demo/quick-start"
OTHER_PROJECT = "demo/other"
#: Fast polling for tests.
FAST = {"poll_freq": 0.5, "initial_interval": 0.2, "stop_timeout": 20.0}


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(projects={PROJECT: None, OTHER_PROJECT: None}) as srv:
        yield srv


@pytest.fixture
def creds(sandbox: SandboxServer, prefect_api: str) -> DominoCredentials:
    return DominoCredentials(host=sandbox.url, api_key=sandbox.api_key, project=PROJECT)


@pytest.fixture
def domino(sandbox: SandboxServer) -> Iterator[DominoClient]:
    with DominoClient(sandbox.url, PROJECT, api_key=sandbox.api_key) as client:
        yield client


class H:
    """Test helpers (a fixture, since test modules cannot import conftest in importlib mode)."""

    @staticmethod
    def fast(**overrides: Any) -> PollOptions:
        return PollOptions(**{**FAST, **overrides})


    @staticmethod
    def starts(sandbox: SandboxServer, title: str) -> int:
        """How many jobs the sandbox started whose title contains ``title``."""
        counts = sandbox.stats()["starts_by_title"]
        return sum(n for t, n in counts.items() if title in t)


    @staticmethod
    def jobs_titled(client: DominoClient, title: str) -> list[JobSnapshot]:
        return [j for j in client.list_jobs(page_size=100) if j.title and title in j.title]


    @staticmethod
    def wait_for(predicate: Any, timeout: float = 30.0, every: float = 0.2) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(every)
        raise AssertionError(f"condition not met within {timeout}s")


    @staticmethod
    def flow_run_tree(flow_run_id: Any) -> list[Any]:
        """The flow run and all its subflow runs (ids)."""
        ids = [flow_run_id]
        frontier = [flow_run_id]
        with get_client(sync_client=True) as client:
            while frontier:
                children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=frontier)))
                frontier = [c.id for c in children]
                ids.extend(frontier)
        return ids


    @staticmethod
    def read_logs(flow_run_id: Any) -> list[str]:
        """Messages logged by a flow run, its tasks and its subflows (after flushing the logger:
        it returns once every queued line is sent, so a generous timeout costs nothing)."""
        APILogWorker.drain_all(timeout=60)
        ids = H.flow_run_tree(flow_run_id)
        messages: list[str] = []
        with get_client(sync_client=True) as client:
            while True:  # the API answers at most 200 entries at a time
                page = client.read_logs(
                    log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)),
                    sort=LogSort.TIMESTAMP_ASC, limit=200, offset=len(messages))
                messages += [entry.message for entry in page]
                if len(page) < 200:
                    return messages


    @staticmethod
    def read_artifacts(flow_run_id: Any) -> list[Any]:
        ids = H.flow_run_tree(flow_run_id)
        with get_client(sync_client=True) as client:
            return list(client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids))))


    @staticmethod
    def read_flow_run(flow_run_id: Any) -> Any:
        with get_client(sync_client=True) as client:
            return client.read_flow_run(flow_run_id)


@pytest.fixture
def h() -> type[H]:
    return H
