"""Delivery against a real HTTP receiver on 127.0.0.1: the Databand bulk transport (gzip, Bearer
auth, batching, order) and spool-and-deliver when the backend is down, then up."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from domino_orchestrate.core import (
    DominoConfig,
    JobHandle,
    JobSnapshot,
    JobSpec,
    JobStatus,
    LogLine,
)
from domino_orchestrate.core.lineage import LineageInfo, flush_spool, lineage_observers
from domino_orchestrate.core.lineage.config import LineageSettings
from domino_orchestrate.core.lineage.spool import Spool
from domino_orchestrate.core.lineage.transports import (
    DatabandConfig,
    DatabandTransport,
    DeliveryError,
    SpoolingTransport,
)

from .conftest import Receiver, use_databand

API_KEY = "domino-api-key-abcdef123"


def config() -> DominoConfig:
    return DominoConfig.resolve("http://127.0.0.1:1", "alice/churn", api_key=API_KEY)


def info(n: int) -> LineageInfo:
    return LineageInfo(orchestrator="dagster", job_name=f"asset_{n}", run_key=("run-1", f"a{n}"))


def run_job(observers: list[Any], n: int, ok: bool = True) -> None:
    """Drive observers as core's wait would for one job."""
    handle = JobHandle(f"job-{n}", url=f"http://domino/jobs/alice/churn/job-{n}")
    for obs in observers:
        obs.on_submitted(handle, JobSpec(command=f"echo {API_KEY}"))
    running = JobSnapshot(f"job-{n}", JobStatus.RUNNING, "Running")
    final = JobSnapshot(f"job-{n}", JobStatus.SUCCEEDED if ok else JobStatus.FAILED,
                        "Succeeded" if ok else "Failed")
    for obs in observers:
        obs.on_status(running)
        obs.on_line(LogLine(f"token is {API_KEY}"))
        obs.on_finished(final, None)


def test_databand_posts_gzip_json_lists_with_bearer_token(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver, ol_schema: Any
) -> None:
    use_databand(monkeypatch, receiver)
    run_job(lineage_observers(info(1), config()), 1)
    assert [p["path"] for p in receiver.posts] == ["/api/v1/tracking/open-lineage/abc/events/bulk"] * 3
    post = receiver.posts[0]
    assert post["headers"]["Content-Encoding"] == "gzip"
    assert post["headers"]["Content-Type"] == "application/json"
    assert post["headers"]["Authorization"] == f"Bearer {receiver.token}"
    assert post["raw"][:2] == b"\x1f\x8b"
    assert [e["eventType"] for e in receiver.events] == ["START", "RUNNING", "COMPLETE"]
    for event in receiver.events:
        ol_schema.validate(event)
    assert API_KEY not in json.dumps(receiver.events)
    assert receiver.token not in json.dumps(receiver.events)


def test_databand_batches_through_openlineage_yml(receiver: Receiver) -> None:
    Path("openlineage.yml").write_text(
        f"transport:\n  type: databand\n  url: {receiver.url}\n  token: {receiver.token}\n"
        "  batch_size: 4\n"
    )
    observers = lineage_observers(info(1), config())
    assert observers, "type: databand in openlineage.yml must enable lineage"
    run_job(observers, 1)  # 3 events: buffered, then flushed by on_finished
    assert [len(p["events"]) for p in receiver.posts] == [3]
    # Two jobs at once: START a, START b, RUNNING a, RUNNING b fill one batch of 4; each end
    # flushes what is buffered.
    a, b = lineage_observers(info(2), config())[0], lineage_observers(info(3), config())[0]
    for n, obs in ((2, a), (3, b)):
        obs.on_submitted(JobHandle(f"job-{n}"), JobSpec(command="true"))
    for n, obs in ((2, a), (3, b)):
        obs.on_status(JobSnapshot(f"job-{n}", JobStatus.RUNNING, "Running"))
    assert [len(p["events"]) for p in receiver.posts] == [3, 4]
    for n, obs in ((2, a), (3, b)):
        obs.on_finished(JobSnapshot(f"job-{n}", JobStatus.SUCCEEDED, "Succeeded"), None)
    assert [len(p["events"]) for p in receiver.posts] == [3, 4, 1, 1]
    names = [(e["job"]["name"], e["eventType"]) for e in receiver.events]
    assert names == [("asset_1", t) for t in ("START", "RUNNING", "COMPLETE")] + [
        ("asset_2", "START"), ("asset_3", "START"), ("asset_2", "RUNNING"),
        ("asset_3", "RUNNING"), ("asset_2", "COMPLETE"), ("asset_3", "COMPLETE"),
    ]


def test_rejected_token_is_a_failure_and_nothing_leaks(tmp_path: Path, receiver: Receiver) -> None:
    transport = DatabandTransport(DatabandConfig(url=receiver.url, token="wrong-token-xyz"))
    with pytest.raises(DeliveryError) as caught:
        transport.emit_batch([{"run": {"runId": "x"}}])
    assert "401" in str(caught.value) and "wrong-token-xyz" not in str(caught.value)
    assert caught.value.events == [{"run": {"runId": "x"}}]
    assert "wrong-token-xyz" not in repr(transport) + repr(transport.config)


def test_backend_down_then_up_spools_and_delivers_once_in_order(
    monkeypatch: pytest.MonkeyPatch, make_receiver: Any, clean_lineage_env: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = make_receiver()  # not started: connection refused
    use_databand(monkeypatch, rec)
    started = time.monotonic()
    for n in range(4):
        run_job(lineage_observers(info(n), config()), n, ok=n != 2)
    # 12 refused connections spooled: a fraction of a second, also at load 10; retrying each
    # with a backoff would take minutes.
    assert time.monotonic() - started < 5, "a dead backend must not slow the job down"
    spool = Spool(clean_lineage_env / "databand")
    assert spool.count() == 12
    assert "spooled" in caplog.text and API_KEY not in caplog.text and rec.token not in caplog.text
    rec.start()
    delivered, remaining = flush_spool()
    assert (delivered, remaining) == (12, 0)
    got = [(e["job"]["name"], e["eventType"]) for e in rec.events]
    assert got == [
        (f"asset_{n}", t)
        for n in range(4) for t in ("START", "RUNNING", "FAIL" if n == 2 else "COMPLETE")
    ]
    assert len(rec.posts) == 1, "the backlog goes out as one batch"
    assert flush_spool() == (0, 0)  # nothing is delivered twice
    assert len(rec.events) == 12


def test_later_emission_delivers_the_backlog_first(
    monkeypatch: pytest.MonkeyPatch, make_receiver: Any, clean_lineage_env: Path
) -> None:
    rec = make_receiver()
    use_databand(monkeypatch, rec)
    run_job(lineage_observers(info(1), config()), 1)  # spooled
    rec.start()
    # A new process (fresh emitter, no cooldown) emits the next job's events.
    from domino_orchestrate.core.lineage import transports

    transports._emitters.clear()
    run_job(lineage_observers(info(2), config()), 2)
    got = [(e["job"]["name"], e["eventType"]) for e in rec.events]
    assert got == [(f"asset_{n}", t) for n in (1, 2) for t in ("START", "RUNNING", "COMPLETE")]
    assert Spool(clean_lineage_env / "databand").count() == 0


def test_events_of_a_spooled_run_queue_behind_it(tmp_path: Path, receiver: Receiver) -> None:
    class Flaky(DatabandTransport):
        fail = True

        def emit_batch(self, events: Any) -> None:
            if self.fail:
                raise DeliveryError("down", events)
            super().emit_batch(events)

    inner = Flaky(DatabandConfig(url=receiver.url, token=receiver.token))
    clock = [0.0]
    dest = SpoolingTransport(inner, Spool(tmp_path / "s"), "t", cooldown_s=10,
                             clock=lambda: clock[0])
    dest.emit({"run": {"runId": "r1"}, "n": 1})  # fails -> spooled, cooldown starts
    inner.fail = False
    dest.emit({"run": {"runId": "r1"}, "n": 2})  # in cooldown -> spooled behind n=1
    assert receiver.events == [] and dest.spool.count() == 2
    clock[0] = 11.0  # cooldown over: backlog first, then the new event
    dest.emit({"run": {"runId": "r1"}, "n": 3})
    assert [e["n"] for e in receiver.events] == [1, 2, 3]


def test_two_flushers_never_send_an_event_twice(
    monkeypatch: pytest.MonkeyPatch, make_receiver: Any, clean_lineage_env: Path
) -> None:
    rec = make_receiver()
    use_databand(monkeypatch, rec)
    spool = Spool(clean_lineage_env / "databand")
    for n in range(300):
        spool.put({"run": {"runId": f"r{n % 7}"}, "n": n})
    rec.start()
    results: list[tuple[int, int]] = []
    threads = [threading.Thread(target=lambda: results.append(flush_spool())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(d for d, _ in results) == 300
    ns = [e["n"] for e in rec.events]
    assert sorted(ns) == list(range(300)) and len(ns) == 300


def test_stale_claims_of_a_dead_sender_are_recovered(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", stale_after=0.0)
    spool.put({"run": {"runId": "r"}, "n": 1})
    claimed = spool.claim(spool.pending()[0])
    assert claimed is not None and spool.pending() == [] and spool.count() == 1
    assert spool.has_run("r")
    time.sleep(0.01)
    assert spool.recover_stale() == 1  # its owner died before done()/release()
    again = spool.claim(spool.pending()[0])
    assert again is not None and again.event["n"] == 1


def test_settings_fingerprint_changes_with_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    a = LineageSettings.from_env().fingerprint()
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "console")
    assert LineageSettings.from_env().fingerprint() != a
