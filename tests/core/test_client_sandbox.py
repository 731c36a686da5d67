"""The core against the sandbox over real HTTP, each scenario through both drivers."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from domino_orchestrate.core import (
    AuthenticationError,
    ConfigurationError,
    DominoClient,
    JobFailedError,
    JobStatus,
    LogLine,
    PollOptions,
    PollTimeoutError,
    ProjectNotFoundError,
    RunSpec,
    StopNotConfirmedError,
)
from domino_orchestrate.sandbox import SandboxServer

from .conftest import FAST_RETRY, PROJECT

FAST = PollOptions(poll_freq=0.5, initial_interval=0.1, max_poll_time=60)


def lines_of(raw: bytes) -> list[str]:
    text = raw.decode()
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


def test_success_streams_every_line_in_order(make_client: Any, sandbox: SandboxServer) -> None:
    client = make_client()
    got: list[LogLine] = []
    command = "for i in $(seq 1 300); do echo \"line $i <&>\"; done; echo oops >&2; printf 'no newline'"
    final = client.run_job(command, FAST, title="ok", on_line=got.append)
    assert final.status is JobStatus.SUCCEEDED and final.url and final.job_id in final.url
    out, _ = sandbox.output(final.job_id)
    assert [line.text for line in got if line.stream == "stdout"] == lines_of(out)
    assert [line.text for line in got if line.stream == "stderr"] == ["oops"]
    assert got[-1].text == "no newline"


@pytest.mark.parametrize(("command", "status"), [("echo bye; exit 3", "Failed"),
                                                  ("/definitely/not/here", "Error")])
def test_failed_and_error_raise(make_client: Any, command: str, status: str) -> None:
    client = make_client()
    with pytest.raises(JobFailedError) as caught:
        client.run_run(RunSpec(command=(command,), is_direct=True), FAST) if status == "Error" \
            else client.run_job(command, FAST)
    assert caught.value.status.value == status
    if status == "Failed":
        assert caught.value.stdout_tail == ["bye"]


def test_v1_run_is_followed_by_id_not_by_listing(make_client: Any, sandbox: SandboxServer) -> None:
    sandbox.reset_stats()
    final = make_client().run_run(RunSpec(command=("echo v1 && sleep 0.3",), is_direct=True), FAST)
    assert final.kind == "run" and final.status.is_success
    requests = sandbox.stats()["requests"]
    assert "GET /v1/projects/{owner}/{project}/runs" not in requests
    assert sum(requests["GET /v1/projects/{owner}/{project}/runs/{runId}"].values()) >= 1


def test_timeout_stops_the_remote_job(make_client: Any, sandbox: SandboxServer) -> None:
    client = make_client()
    with pytest.raises(PollTimeoutError) as caught:
        client.run_job("sleep 60", PollOptions(poll_freq=0.5, initial_interval=0.1, max_poll_time=1.5))
    assert caught.value.stop_confirmed is True
    assert sandbox.execution_info(caught.value.job_id)["status"] == "Stopped"


def test_stop_confirms_and_a_stopped_job_is_a_failure(make_client: Any) -> None:
    client = make_client()
    handle = client.start_job("sleep 60")
    final = client.stop_job(handle, timeout=10)
    assert final.status is JobStatus.STOPPED
    with pytest.raises(JobFailedError, match="Stopped"):
        client.wait(handle, FAST)


def test_keyboard_interrupt_stops_the_job(sandbox: SandboxServer) -> None:
    client = DominoClient(sandbox.url, PROJECT, api_key=sandbox.api_key)
    handle = client.start_job("sleep 60")
    timer = threading.Timer(0.8, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        client.wait(handle, FAST)
    assert client.get_job(handle).status is JobStatus.STOPPED


def test_async_cancellation_stops_the_job(sandbox: SandboxServer) -> None:
    import asyncio

    from domino_orchestrate.core import AsyncDominoClient

    async def scenario() -> JobStatus:
        async with AsyncDominoClient(sandbox.url, PROJECT, api_key=sandbox.api_key) as client:
            handle = await client.start_job("sleep 60")
            task = asyncio.create_task(client.wait(handle, FAST))
            await asyncio.sleep(0.8)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return (await client.get_job(handle)).status

    assert asyncio.run(scenario()) is JobStatus.STOPPED


def test_rate_limit_retry_after_is_honoured(make_client: Any, sandbox: SandboxServer) -> None:
    client = make_client()
    handle = client.start_job("echo hi")
    sandbox.set_faults(rate=1.0, kinds=["429"], seed=1)
    timer = threading.Timer(1.6, lambda: sandbox.set_faults(rate=0.0))
    timer.start()
    started = time.monotonic()
    try:
        snapshot = client.get_job(handle)
    finally:
        timer.cancel()
        sandbox.set_faults(rate=0.0)
    waited = time.monotonic() - started
    assert snapshot.job_id == handle.job_id
    # The sandbox sends Retry-After: 1; backoff alone (0.05 s initial) would have retried sooner.
    assert waited >= 1.0


def test_lost_start_response_never_starts_twice(make_client: Any, sandbox: SandboxServer) -> None:
    client = make_client()
    sandbox.reset_stats()
    sandbox.set_faults(rate=1.0, kinds=["reset", "truncated", "502"], seed=7)
    try:
        threading.Timer(0.3, lambda: sandbox.set_faults(rate=0.0)).start()
        handle = client.start_job("echo once", idempotency_key="lost-start-key")
    finally:
        time.sleep(0.35)
        sandbox.set_faults(rate=0.0)
    final = client.wait(handle, FAST)
    assert final.status.is_success
    matches = client.find_by_idempotency_key("lost-start-key")
    assert len(matches) == 1


def test_idempotent_start_reattaches(make_client: Any) -> None:
    client = make_client()
    key = f"reattach-{time.time_ns()}"
    first = client.start_job("sleep 2", idempotency_key=key)
    second = client.start_job("sleep 2", idempotency_key=key)
    assert second.job_id == first.job_id and second.attached
    client.wait(second, FAST)
    third = client.start_job("sleep 2", idempotency_key=key)
    assert third.job_id == first.job_id, "a succeeded job is returned, not re-run"


def test_token_file_expiry_falls_back_to_api_key(
    sandbox: SandboxServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token = f"tok-{time.time_ns()}-secret"
    sandbox.add_token(token)
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    client = DominoClient(sandbox.url, PROJECT, domino_token_file=str(token_file),
                          api_key=sandbox.api_key, retry_policy=FAST_RETRY)
    handle = client.start_job("sleep 1")
    sandbox.expire_token(token)
    with caplog.at_level(logging.DEBUG, logger="domino_orchestrate"):
        assert client.wait(handle, FAST).status.is_success
    assert "using the API key instead" in caplog.text
    assert token not in caplog.text and sandbox.api_key not in caplog.text


def test_no_secret_in_errors_logs_or_reprs(sandbox: SandboxServer, caplog: pytest.LogCaptureFixture) -> None:
    secret = "wrong-key-0123456789"
    client = DominoClient(sandbox.url, PROJECT, api_key=secret, retry_policy=FAST_RETRY)
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthenticationError) as caught:
        client.start_job("echo hi")
    texts = [str(caught.value), repr(caught.value), repr(client), repr(client.config), caplog.text]
    assert all(secret not in text for text in texts)
    assert "HTTP 401" in str(caught.value)


def test_unknown_project_and_bad_tier_are_clear(sandbox: SandboxServer) -> None:
    with pytest.raises(ProjectNotFoundError, match="owner/name"):
        DominoClient(sandbox.url, "nobody/nothing", api_key=sandbox.api_key).start_job("x")
    client = DominoClient(sandbox.url, PROJECT, api_key=sandbox.api_key)
    with pytest.raises(ConfigurationError, match="available"):
        client.start_job("x", hardware_tier_name="gigantic")


def test_hardware_tier_by_name_reaches_the_job(sandbox: SandboxServer) -> None:
    client = DominoClient(sandbox.url, PROJECT, api_key=sandbox.api_key)
    tiers = client.hardware_tiers()
    chosen = next(t for t in tiers if not t.is_default)
    handle = client.start_job("echo tier", hardware_tier_name=chosen.name)
    details = client.runtime_details(handle)
    assert details["hardwareTier"]["id"] == chosen.id


def test_stop_not_confirmed_is_its_own_error(sandbox: SandboxServer) -> None:
    client = DominoClient(sandbox.url, PROJECT, api_key=sandbox.api_key)
    # A process that ignores SIGTERM still dies by SIGKILL after the sandbox's grace period;
    # a zero-second wait cannot see that, so the outcome is "requested, not confirmed".
    handle = client.start_job("trap '' TERM; sleep 30")
    time.sleep(0.5)
    with pytest.raises(StopNotConfirmedError, match="not confirmed"):
        client.stop_job(handle, timeout=0.0)
    client.stop_job(handle, timeout=20)


def test_interrupt_during_start_stops_the_job_it_created(
    sandbox: SandboxServer, mocker: Any
) -> None:
    from domino_orchestrate.core.observe import Observers

    client = DominoClient(sandbox.url, PROJECT, api_key=sandbox.api_key)
    # The start request went through, but the process is killed before the id is handed back.
    mocker.patch.object(Observers, "submitted", side_effect=KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        client.start_job("sleep 60", title="interrupted-start")
    mocker.stopall()
    (job,) = [j for j in client.list_jobs() if (j.title or "").startswith("interrupted-start")]
    assert job.status is JobStatus.STOPPED


def test_a_job_echoing_its_api_key_never_leaks_it(sandbox: SandboxServer) -> None:
    client = DominoClient(sandbox.url, PROJECT, api_key=sandbox.api_key)
    got: list[LogLine] = []
    with pytest.raises(JobFailedError) as caught:
        client.run_job(f"echo key={sandbox.api_key}; echo {sandbox.api_key} >&2; exit 1", FAST,
                       on_line=got.append)
    assert [line.text for line in got] == ["key=***", "***"]
    assert sandbox.api_key not in str(caught.value)
    assert caught.value.stdout_tail == ["key=***", "***"]
