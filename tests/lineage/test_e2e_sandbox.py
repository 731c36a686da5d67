"""End to end: DominoClient.run_job against the sandbox over HTTP, lineage observers writing to
openlineage-python's file transport; every event validates and carries no secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from domino_orchestrate.core import (
    DominoClient,
    JobFailedError,
    PollOptions,
    PollTimeoutError,
)
from domino_orchestrate.core.lineage import (
    LineageInfo,
    ParentRun,
    lineage_env,
    lineage_observers,
    lineage_run_id,
    with_env_prefix,
)

from .conftest import read_events

pytest.importorskip("starlette")

FAST = PollOptions(poll_freq=0.5, initial_interval=0.2, stop_timeout=20)


def info(name: str) -> LineageInfo:
    return LineageInfo(
        orchestrator="cli", job_name=name, run_key=("e2e", name),
        parent=ParentRun("scheduler", "pipeline", "0b6f7c62-8d7e-4c5b-9a37-6f1b2b0e9d11"),
    )


def test_success_failure_and_timeout_end_to_end(
    domino_sandbox: Any, lineage_file: Path, ol_schema: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv = domino_sandbox
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_ENV", "true")  # the user opts in to env
    client = DominoClient(srv.url, "demo/quick-start", api_key=srv.api_key)
    with client:
        # Success; the job sees the lineage env (its parent is our run).
        ok = info("ok")
        env = lineage_env(ok, client.config)
        assert env, "file transport configured: lineage env expected"
        command = with_env_prefix('sleep 1; echo "parent=$OPENLINEAGE_PARENT_RUN_ID"', env)
        lines: list[str] = []
        snap = client.run_job(command, FAST, observers=lineage_observers(ok, client.config),
                              on_line=lambda line: lines.append(line.text),
                              idempotency_key="lineage-ok")
        assert snap.status.is_success
        assert f"parent={lineage_run_id(ok)}" in lines

        bad = info("bad")
        with pytest.raises(JobFailedError):
            client.run_job(f"echo failing; echo {srv.api_key}; exit 3", FAST,
                           observers=lineage_observers(bad, client.config))

        slow = info("slow")
        # Long enough for a poll to see the job Running (its RUNNING event) on a loaded machine.
        with pytest.raises(PollTimeoutError):
            client.run_job("sleep 60", PollOptions(poll_freq=0.5, initial_interval=0.2,
                                                   max_poll_time=5, stop_timeout=20),
                           observers=lineage_observers(slow, client.config))

    everything = read_events(lineage_file)
    for event in everything:
        ol_schema.validate(event)
    # The parent run (the scheduler's) exists: one START, however many of its jobs ran.
    parent = [e for e in everything if e["job"]["namespace"] == "scheduler"]
    assert [(e["job"]["name"], e["eventType"]) for e in parent] == [("pipeline", "START")]
    assert parent[0]["run"]["runId"] == "0b6f7c62-8d7e-4c5b-9a37-6f1b2b0e9d11"
    assert everything.index(parent[0]) == 0  # before its first job's START
    events = [e for e in everything if e not in parent]
    by_job: dict[str, list[str]] = {}
    for event in events:
        by_job.setdefault(event["job"]["name"], []).append(event["eventType"])
        assert event["job"]["namespace"] == "domino.demo.quick-start"
    assert srv.api_key not in lineage_file.read_text()
    assert by_job["ok"] == ["START", "RUNNING", "COMPLETE"]
    assert by_job["bad"][0] == "START" and by_job["bad"][-1] == "FAIL"
    assert by_job["slow"] == ["START", "RUNNING", "ABORT"]
    fail = next(e for e in events if e["eventType"] == "FAIL")
    assert "failing" in fail["run"]["facets"]["errorMessage"]["stackTrace"]
    assert "***" in fail["run"]["facets"]["errorMessage"]["stackTrace"]
    tags = {t["key"]: t["value"] for t in fail["run"]["facets"]["tags"]["tags"]}
    assert tags["domino.job_url"].endswith(tags["domino.job_id"])
    assert {e["run"]["runId"] for e in events if e["job"]["name"] == "ok"} == {lineage_run_id(ok)}


def test_retry_reattaches_under_the_same_lineage_run(
    domino_sandbox: Any, lineage_file: Path, ol_schema: Any
) -> None:
    srv = domino_sandbox
    lineage = info("retried")
    with DominoClient(srv.url, "demo/quick-start", api_key=srv.api_key) as client:
        first = client.start_job("sleep 1; echo done", idempotency_key="retry-key",
                                 observers=lineage_observers(lineage, client.config))
        # "Try 2" of the task: same key, same lineage info, new observers.
        observers = lineage_observers(lineage, client.config)
        second = client.start_job("sleep 1; echo done", idempotency_key="retry-key",
                                  observers=observers)
        assert second.attached and second.job_id == first.job_id
        client.wait(second, FAST, observers=observers)
        assert sum(srv.stats()["starts_by_title"].values()) == 1
    events = [e for e in read_events(lineage_file) if e["job"]["name"] == "retried"]
    assert {e["run"]["runId"] for e in events} == {lineage_run_id(lineage)}
    assert events[-1]["eventType"] == "COMPLETE"
    # The reattach is the same lineage run: its START went out once, from the first try.
    assert [e["eventType"] for e in events].count("START") == 1
    for event in events:
        ol_schema.validate(event)
