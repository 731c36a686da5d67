"""``run_domino_job(..., return_state=True)`` / ``run_domino_run`` return a state whose result
survives Prefect adopting the API's copy of that state.

When the response to a run's final-state request is lost after the Prefect API committed it (a
60 s read timeout on a loaded server, a dropped connection), Prefect's client sends the same
transition again, the API rejects it as a duplicate and answers with its stored copy, and the
flow engine returns that copy. The copy holds the result only if it was persisted: otherwise
``state.result()`` raises ``MissingResult`` (and a failed run's error becomes a bare
``FailedRun``). These tests lose that response on purpose, once per run, for the subflows and
for ``examples/prefect/domino_example_flow.py``, which reads its rows from such states."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from domino_orchestrate.core import JobFailedError
from domino_orchestrate.prefect import DominoCredentials, arun_domino_run, run_domino_job

from ..conftest import load_module

FINAL_STATE_TYPES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _final_state_proposal(request: httpx.Request) -> bool:
    if request.method != "POST" or not request.url.path.endswith("/set_state"):
        return False
    body = json.loads(request.content or b"{}")
    return body.get("state", {}).get("type") in FINAL_STATE_TYPES


@pytest.fixture
def lost_final_state_responses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The first response to each run's final-state request is dropped after the API answered
    it (raised as the ``ReadTimeout`` a client sees then), so Prefect's client retries; yields
    the ``set_state`` paths whose response was dropped."""
    lost: list[str] = []

    def should_lose(request: httpx.Request) -> bool:
        if not _final_state_proposal(request) or request.url.path in lost:
            return False
        lost.append(request.url.path)
        return True

    sync_send, async_send = httpx.Client.send, httpx.AsyncClient.send

    def send(self: httpx.Client, request: httpx.Request, *args: Any, **kwargs: Any) -> Any:
        response = sync_send(self, request, *args, **kwargs)
        if should_lose(request):
            response.read()
            raise httpx.ReadTimeout("response lost (test)", request=request)
        return response

    async def asend(self: httpx.AsyncClient, request: httpx.Request, *args: Any,
                    **kwargs: Any) -> Any:
        response = await async_send(self, request, *args, **kwargs)
        if should_lose(request):
            await response.aread()
            raise httpx.ReadTimeout("response lost (test)", request=request)
        return response

    monkeypatch.setattr(httpx.Client, "send", send)
    monkeypatch.setattr(httpx.AsyncClient, "send", asend)
    yield lost


def _title(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}"


def _lost_for(state: Any, lost: list[str]) -> bool:
    return any(path.endswith(f"/flow_runs/{state.state_details.flow_run_id}/set_state")
               for path in lost)


def test_completed_state_keeps_the_summary_after_a_lost_response(
        creds: DominoCredentials, h: Any, lost_final_state_responses: list[str]) -> None:
    state = run_domino_job(creds, "echo done", title=_title("lost-ok"), poll_options=h.fast(),
                           return_state=True)
    assert _lost_for(state, lost_final_state_responses)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["status"] == "Succeeded" and summary["job_id"]


def test_failed_state_keeps_the_job_failure_after_a_lost_response(
        creds: DominoCredentials, h: Any, lost_final_state_responses: list[str]) -> None:
    state = run_domino_job(creds, "echo broken; exit 3", title=_title("lost-fail"),
                           poll_options=h.fast(), return_state=True)
    assert _lost_for(state, lost_final_state_responses)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, JobFailedError), repr(error)
    assert error.status.value == "Failed" and error.job_id
    assert "broken" in error.stdout_tail


async def test_async_run_state_keeps_the_summary_after_a_lost_response(
        creds: DominoCredentials, h: Any, lost_final_state_responses: list[str]) -> None:
    state = await arun_domino_run(creds, "echo run-v1", is_direct=True, title=_title("lost-run"),
                                  poll_options=h.fast(), return_state=True)
    assert _lost_for(state, lost_final_state_responses)
    assert state.is_completed(), state.message
    summary = await state.result()  # awaitable in async code
    assert summary["status"] == "Succeeded" and summary["kind"] == "run"


def test_example_rows_survive_lost_responses(
        creds: DominoCredentials, lost_final_state_responses: list[str]) -> None:
    """The example's flow (what ``test_example.py`` runs as a script) with every run's final-state
    response lost once: both rows still carry the job id and status."""
    path = Path(__file__).resolve().parents[2] / "examples" / "prefect" / "domino_example_flow.py"
    example = load_module("prefect_example_lost_responses", path)

    rows = example.domino_example_flow(creds, poll_freq=0.5)
    assert len(lost_final_state_responses) == 3  # the two subflows and the example's flow
    assert [(r["task"], r["state"]) for r in rows] == [("train", "Succeeded"),
                                                        ("validate", "Failed")]
    assert all(r["job_id"] for r in rows)
