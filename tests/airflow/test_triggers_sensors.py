"""DominoJobTrigger (serialization, events, cancellation vs kill) and DominoJobSensor."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(120)


def _trigger(sandbox: Any, job_id: str, **poll: Any) -> Any:
    from domino_orchestrate.airflow._lineage import lineage_to_dict
    from domino_orchestrate.airflow.triggers import DominoJobTrigger
    from domino_orchestrate.core import JobHandle, PollOptions
    from domino_orchestrate.core.lineage import Dataset, LineageInfo, ParentRun

    info = LineageInfo(orchestrator="airflow", job_name="d.t", run_key=("d", "t", "r", "-1"),
                       parent=ParentRun("default", "d.t", "run-1", "default", "d", "root-1"),
                       inputs=(Dataset("s3://b", "k"),))
    handle = JobHandle(job_id=job_id, project="demo/quick-start",
                       url=f"{sandbox.url}/jobs/demo/quick-start/{job_id}", idempotency_key="k")
    options = PollOptions(poll_freq=0.5, initial_interval=0.2, stop_timeout=15, **poll)
    return DominoJobTrigger("domino_default", handle.to_dict(), options.to_dict(),
                            lineage=lineage_to_dict(info), project="demo/quick-start")


def test_trigger_serialize_round_trips_with_primitives_only() -> None:
    from domino_orchestrate.airflow._lineage import lineage_from_dict
    from domino_orchestrate.airflow.triggers import DominoJobTrigger

    class _Srv:
        url = "http://127.0.0.1:1"

    trigger = _trigger(_Srv(), "job-1")
    classpath, kwargs = trigger.serialize()
    assert classpath == "domino_orchestrate.airflow.triggers.DominoJobTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs  # primitives only
    again = DominoJobTrigger(**json.loads(json.dumps(kwargs)))
    assert again.serialize() == (classpath, kwargs)
    info = lineage_from_dict(kwargs["lineage"])
    assert info.parent is not None and info.parent.root_run_id == "root-1"
    assert info.run_key == ("d", "t", "r", "-1")


async def _first_event(trigger: Any) -> Any:
    return await trigger.run().__anext__()


def test_trigger_yields_success_and_failed_events(domino_conn: Any, af: Any, capfd: Any) -> None:
    client = af.sandbox_client(domino_conn)
    good = client.start_job("echo trig-a; sleep 0.5; echo trig-b")
    bad = client.start_job("echo trig-doomed; exit 2")
    event = asyncio.run(_first_event(_trigger(domino_conn, good.job_id)))
    assert event.payload["status"] == "success"
    assert event.payload["snapshot"]["job_id"] == good.job_id
    assert event.payload["snapshot"]["status"] == "Succeeded"
    event = asyncio.run(_first_event(_trigger(domino_conn, bad.job_id)))
    assert event.payload["status"] == "failed"
    assert "Failed" in event.payload["message"] and event.payload["tail"] == ["trig-doomed"]
    out = capfd.readouterr()
    assert "trig-a" in out.out + out.err and "trig-b" in out.out + out.err
    assert domino_conn.api_key not in json.dumps(event.payload)


def test_trigger_timeout_event_stops_the_job(domino_conn: Any, af: Any) -> None:
    client = af.sandbox_client(domino_conn)
    slow = client.start_job("sleep 120")
    event = asyncio.run(_first_event(_trigger(domino_conn, slow.job_id, max_poll_time=1.5)))
    assert event.payload["status"] == "timeout"
    assert str(client.get_job(slow).status) == "Stopped"


def test_trigger_cancellation_leaves_the_job_running_but_on_kill_stops_it(
    domino_conn: Any, af: Any
) -> None:
    client = af.sandbox_client(domino_conn)
    job = client.start_job("echo up; sleep 120")
    trigger = _trigger(domino_conn, job.job_id)

    async def cancel_after_a_while() -> None:
        task = asyncio.ensure_future(_first_event(trigger))
        await asyncio.sleep(1.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_after_a_while())  # a triggerer restart
    time.sleep(0.5)
    assert str(client.get_job(job).status) == "Running"
    asyncio.run(trigger.on_kill())  # a user killed the task
    assert str(client.get_job(job).status) == "Stopped"


def test_sensor_poke_and_deferrable(domino_conn: Any, af: Any, capfd: Any, tmp_path: Any) -> None:
    import threading

    from airflow.sdk import DAG

    from domino_orchestrate.airflow import DominoJobSensor

    client = af.sandbox_client(domino_conn)
    ok = client.start_job("echo sensed; sleep 1")
    bad = client.start_job("echo sensor-doomed; sleep 1; exit 7")
    go = tmp_path / "go"
    # Runs until released, so it is still running when the deferrable sensor first looks.
    later = client.start_job(f"echo deferred-sensed; while [ ! -f {go} ]; do sleep 0.2; done")

    def release_soon(context: Any) -> None:
        threading.Timer(2.0, go.touch).start()

    with DAG("domino_sensor", schedule=None, params={"job": later.job_id}) as dag:
        DominoJobSensor(task_id="poke_ok", job_id=ok.job_id, poke_interval=0.5, timeout=60)
        DominoJobSensor(task_id="poke_bad", job_id=bad.job_id, poke_interval=0.5, timeout=60)
        DominoJobSensor(task_id="defer_ok", job_id="{{ params.job }}", poke_interval=0.5,
                        timeout=60, deferrable=True, on_execute_callback=release_soon)
    dr = af.run_dag(dag)
    out = capfd.readouterr().out
    tis = af.task_instances(dr)
    assert {k: str(v.state) for k, v in tis.items()} == {
        "poke_ok": "success", "poke_bad": "failed", "defer_ok": "success"}
    assert af.xcoms(dr, "poke_ok")["return_value"]["status"] == "Succeeded"
    assert af.xcoms(dr, "defer_ok")["job_id"] == later.job_id
    assert af.xcoms(dr, "defer_ok")["return_value"]["status"] == "Succeeded"
    assert "Deferring" in out and "deferred-sensed" in out  # followed (and streamed) by the trigger
    assert "ended Failed" in out and "sensor-doomed" in out
    assert sum(domino_conn.stats()["starts_by_title"].values()) == 3  # sensors start nothing


def test_triggers_started_together_share_one_setup(domino_conn: Any, af: Any, monkeypatch: Any) -> None:
    """A triggerer resuming many deferred tasks starts them one loop pass apart (as
    ``TriggerRunner.create_triggers`` does): the imports, the connection lookup and the shared
    client's creation happen once, not once per trigger that asked while they were in flight
    (1,000 triggers made 2,000 thread hand-offs and the triggerer's loop late)."""
    from domino_orchestrate.airflow import triggers
    from domino_orchestrate.airflow.hooks import DominoHook
    from domino_orchestrate.core import client as core_client

    jobs = [af.sandbox_client(domino_conn).start_job(f"echo shared-{i}").job_id for i in range(3)]
    monkeypatch.setattr(triggers, "_LOADED", False)
    monkeypatch.setattr(core_client, "_SHARED", {})  # this connection's client: not made yet
    lookups, hand_offs = [], []
    real_lookup, real_to_thread = DominoHook.aget_config, asyncio.to_thread

    # Each set-up step takes longer than starting all the triggers (as the first one does in
    # a busy triggerer: a thread pool spinning up, a secrets backend), so all of them ask.
    async def lookup(self: Any) -> Any:
        lookups.append(self.domino_conn_id)
        await asyncio.sleep(0.5)
        return await real_lookup(self)

    async def to_thread(func: Any, *args: Any, **kwargs: Any) -> Any:
        hand_offs.append(getattr(func, "__name__", repr(func)))
        await asyncio.sleep(0.5)
        return await real_to_thread(func, *args, **kwargs)

    monkeypatch.setattr(DominoHook, "aget_config", lookup)
    monkeypatch.setattr(triggers.asyncio, "to_thread", to_thread)

    async def resume_all() -> list[Any]:
        tasks = []
        for n in range(30):
            await asyncio.sleep(0)
            tasks.append(asyncio.create_task(_first_event(_trigger(domino_conn, jobs[n % 3]))))
        return list(await asyncio.gather(*tasks))

    events = asyncio.run(resume_all())
    assert [event.payload["status"] for event in events] == ["success"] * 30
    assert lookups == ["domino_default"]
    assert sorted(name for name in hand_offs if name in ("_load", "shared_async_client")) == [
        "_load", "shared_async_client"]
