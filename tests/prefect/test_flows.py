"""The run_domino_job / run_domino_run subflows against the sandbox: success with live log lines
and artifacts, failure with status and stdout tail, v1 runs, nested use inside a user flow, and no
secret in logs, artifacts, parameters or results."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.events.worker import EventsWorker

from domino_orchestrate.prefect import (
    DominoCredentials,
    run_domino_job,
    run_domino_job_async,
    run_domino_run,
    run_domino_run_async,
    start_domino_job,
    stop_domino_job,
    wait_for_domino_job,
)


def _title(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}"


def test_run_domino_job_succeeds_logs_lines_and_artifacts(creds: DominoCredentials, h: Any,
                                                          sandbox: Any) -> None:
    title = _title("ok")
    state = run_domino_job(
        creds, "echo first-line; sleep 0.6; echo second-line", title=title,
        poll_options=h.fast(), return_state=True,
    )
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["status"] == "Succeeded"
    assert summary["job_id"]
    assert h.starts(sandbox, title) == 1

    logs = h.read_logs(state.state_details.flow_run_id)
    assert "first-line" in logs and "second-line" in logs
    assert any(summary["job_id"] in m and "Started" in m for m in logs)

    artifacts = h.read_artifacts(state.state_details.flow_run_id)
    links = [a for a in artifacts if a.type == "markdown" and summary["job_id"] in str(a.data)]
    tables = [a for a in artifacts if a.type == "table"]
    assert links, [a.type for a in artifacts]
    assert summary["url"] in str(links[0].data)
    rows = json.loads(tables[0].data) if isinstance(tables[0].data, str) else tables[0].data
    assert rows[0]["status"] == "Succeeded"
    assert rows[0]["job_id"] == summary["job_id"]
    assert rows[0]["hardware_tier"]
    assert rows[0]["duration_s"] is not None and rows[0]["duration_s"] >= 0.5


def test_failed_job_fails_flow_with_status_and_tail(creds: DominoCredentials, h: Any,
                                                    sandbox: Any) -> None:
    title = _title("bad")
    state = run_domino_job(
        creds, "echo tail-a; echo tail-b; exit 3", title=title, poll_options=h.fast(),
        return_state=True,
    )
    assert state.is_failed()
    flow_run_id = state.state_details.flow_run_id
    h.read_logs(flow_run_id)  # flush
    # Task runs reach the server through Prefect's events pipeline: send what is queued, then
    # wait for this flow's to land (the server records them in the background).
    EventsWorker.drain_all(timeout=30)
    deadline = time.monotonic() + 90
    while True:
        with get_client(sync_client=True) as client:
            task_runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        wait_runs = [t for t in task_runs if t.name.startswith("wait_for_domino_job")]
        wait_state = wait_runs[0].state if wait_runs else None
        if (wait_state is not None and wait_state.is_failed()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert wait_state is not None and wait_state.is_failed()
    message = wait_state.message or ""
    assert "Failed" in message and "tail-b" in message, message
    try:
        state.result()
    except Exception as exc:
        assert "ended Failed" in str(exc) and "tail-a" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("a failed job must fail the flow")
    tables = [a for a in h.read_artifacts(flow_run_id) if a.type == "table"]
    rows = json.loads(tables[0].data) if isinstance(tables[0].data, str) else tables[0].data
    assert rows[0]["status"] == "Failed"
    assert h.starts(sandbox, title) == 1


def test_tasks_inside_a_user_flow_and_stop(creds: DominoCredentials, h: Any, domino: Any) -> None:
    title = _title("user")

    @flow
    def pipeline() -> dict[str, Any]:
        quick = run_domino_job(creds, "echo nested-ok", title=title + "-a", poll_options=h.fast())
        handle = start_domino_job(creds, "sleep 60", title=title + "-b")
        stopped = stop_domino_job(creds, handle, timeout=20)
        return {"quick": quick, "stopped": stopped}

    out = pipeline()
    assert out["quick"]["status"] == "Succeeded"
    assert out["stopped"]["status"] == "Stopped"
    assert domino.get_job(out["stopped"]["job_id"]).status.value == "Stopped"


def test_v1_run(creds: DominoCredentials, h: Any) -> None:
    state = run_domino_run(creds, "echo run-v1-line", is_direct=True, title=_title("v1"),
                           poll_options=h.fast(), return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["kind"] == "run" and summary["status"] == "Succeeded"
    assert "run-v1-line" in h.read_logs(state.state_details.flow_run_id)


def test_no_secret_anywhere(creds: DominoCredentials, h: Any, sandbox: Any) -> None:
    secret = sandbox.api_key
    ok = run_domino_job(creds, "echo fine", title=_title("sec"), poll_options=h.fast(),
                        return_state=True)
    bad = run_domino_job(creds, "echo nope; exit 1", title=_title("sec"), poll_options=h.fast(),
                         return_state=True)
    for state in (ok, bad):
        flow_run_id = state.state_details.flow_run_id
        texts = h.read_logs(flow_run_id)
        texts += [json.dumps(a.data, default=str) + str(a.description) for a in
                  h.read_artifacts(flow_run_id)]
        run = h.read_flow_run(flow_run_id)
        texts.append(json.dumps(run.parameters, default=str))
        texts.append(str(state.message))
        assert texts and not [t for t in texts if secret in t]
    assert secret not in repr(creds) and secret not in str(creds.model_dump())
    try:
        bad.result()
    except Exception as exc:
        assert secret not in str(exc) and secret not in repr(exc)


def test_wait_accepts_dict_handle_and_job_id(creds: DominoCredentials, h: Any) -> None:
    @flow
    def pipeline() -> list[str]:
        handle = start_domino_job(creds, "echo again", title=_title("ids"))
        by_dict = wait_for_domino_job(creds, handle.to_dict(), poll_options=h.fast())
        by_id = wait_for_domino_job(creds, handle.job_id, poll_options=h.fast())
        return [by_dict["status"], by_id["status"]]

    assert pipeline() == ["Succeeded", "Succeeded"]


async def test_async_flow_streams_lines(creds: DominoCredentials, h: Any, sandbox: Any) -> None:
    title = _title("async")

    @flow
    async def pipeline() -> list[dict[str, Any]]:
        # Two jobs followed concurrently from one event loop.
        return list(await asyncio.gather(
            run_domino_job_async(creds, "echo async-one; sleep 0.5; echo async-two",
                                 title=title + "-a", poll_options=h.fast()),
            run_domino_run_async(creds, "echo async-run", is_direct=True, title=title + "-b",
                                 poll_options=h.fast()),
        ))

    state = await pipeline(return_state=True)
    assert state.is_completed(), state.message
    job, run = await state.result()  # type: ignore[misc]  # awaitable in async context
    assert job["status"] == "Succeeded" and run["status"] == "Succeeded"
    assert run["kind"] == "run"

    logs = await asyncio.to_thread(h.read_logs, state.state_details.flow_run_id)
    assert {"async-one", "async-two", "async-run"} <= set(logs)
    assert h.starts(sandbox, title) == 2
