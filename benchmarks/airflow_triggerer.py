"""Benchmark: 1,000 deferred Domino tasks in one Airflow triggerer process.

A deferrable ``DominoJobOperator`` hands its job to a ``DominoJobTrigger``; the triggerer runs
up to ``[triggerer] capacity`` (default 1,000) triggers as coroutines on one event loop. This
measures that loop with the real trigger class and Airflow's real connection lookup
(``AIRFLOW_CONN_DOMINO_DEFAULT``), without the scheduler and database around it (1,000 task
instances in SQLite would measure SQLite):

* a sandbox runs as its own process; N jobs (``sleep`` 10-30 s, a few lines of output) are
  started first (not measured);
* a fresh subprocess plays the triggerer: it builds N ``DominoJobTrigger`` objects exactly as
  the operator's ``defer`` does (``poll_freq=5``), then runs each ``trigger.run()`` as its own
  task the way ``TriggerRunner`` does (``create_triggers`` makes one task per loop pass, with
  ``await asyncio.sleep(0)`` between them; ``run_trigger`` iterates the trigger), beside a copy
  of ``TriggerRunner``'s block watchdog (wakes every 0.1 s; Airflow logs "Triggerer's async thread was blocked" when a wake
  comes more than ``[triggerer] blocked_main_thread_warning_threshold`` (0.2 s) late);
* reported: the process's CPU seconds and share of one core while following, peak RSS, the
  watchdog's warnings (when, and how much of each late wake the loop spent computing rather than
  waiting to be scheduled on a busy machine, and how much was a full garbage collection of the
  process's heap — Airflow's ~200,000 objects — rather than trigger code) and longest stall, how
  many triggers resumed with the right event (status ``success``, the snapshot naming its own
  job), and the sandbox's request count.

``--clients per-trigger`` reproduces the earlier behaviour (each trigger builds its own client in
the loop and closes it at the end) for comparison; the default ``shared`` is the current code.

    .venv/bin/python benchmarks/airflow_triggerer.py [--tasks 1000] [--clients shared per-trigger]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
from typing import Any

from _bench import run_script
from _common import report

from domino_orchestrate.core import AsyncDominoClient
from domino_orchestrate.sandbox import SandboxProcess

PROJECT = "bench/triggerer"

TRIGGERER = """
import asyncio, gc, json, os, resource, sys, time

mode, job_ids = sys.argv[1], json.loads(sys.argv[2])
import airflow.jobs.triggerer_job_runner  # what a triggerer process has loaded before any trigger
from airflow.configuration import conf
from domino_orchestrate.airflow.triggers import DominoJobTrigger
from domino_orchestrate.core import JobHandle, PollOptions

threshold = conf.getfloat("triggerer", "blocked_main_thread_warning_threshold", fallback=0.2)
capacity = conf.getint("triggerer", "capacity")
if mode == "per-trigger":  # the earlier behaviour: a new client per trigger, built in the loop
    from domino_orchestrate.airflow.hooks import DominoHook

    async def own_client(self):
        hook = DominoHook(self.conn_id, project=self.project)
        client = hook.async_client(await hook.aget_config())
        self._own = client
        return client

    DominoJobTrigger._client = own_client

def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

async def main():
    options = PollOptions(poll_freq=5, max_poll_time=900).to_dict()
    triggers = [DominoJobTrigger("domino_default", JobHandle(job_id=j, project=os.environ["BENCH_PROJECT"]).to_dict(),
                                 options, project=os.environ["BENCH_PROJECT"]) for j in job_ids]
    stalls, warned_at, busy, in_gc, done = [], [], [], [], False
    began = time.monotonic()
    collections = []  # (start, seconds) of each full garbage collection

    def on_gc(phase, info, started=[0.0]):
        if info["generation"] == 2:
            if phase == "start":
                started[0] = time.monotonic()
            else:
                collections.append((started[0], time.monotonic() - started[0]))

    gc.callbacks.append(on_gc)

    async def watchdog():
        while not done:
            last, cpu = time.monotonic(), time.thread_time()
            await asyncio.sleep(0.1)
            late = time.monotonic() - last
            stalls.append(late - 0.1)
            if late > threshold:
                warned_at.append(round(last - began, 1))
                # The loop's own CPU in that gap: on a busy machine a late wake can also be
                # time the process was not scheduled at all (load from other processes).
                busy.append(round(time.thread_time() - cpu, 2))
                # How much of the gap was CPython's full collection of the process's heap
                # (Airflow's own objects are most of it), rather than trigger code.
                in_gc.append(round(sum(d for at, d in collections if last <= at < last + late), 2))

    async def run_trigger(trigger):
        events = [event async for event in trigger.run()]
        own = getattr(trigger, "_own", None)
        if own is not None:
            await own.aclose()
        return events

    objects_at_start = len(gc.get_objects())
    dog = asyncio.create_task(watchdog())
    cpu0, wall0 = time.process_time(), time.monotonic()
    tasks = []
    for trigger in triggers:  # as TriggerRunner.create_triggers: one new trigger per loop pass
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(run_trigger(trigger)))
    results = await asyncio.gather(*tasks)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    done = True
    await dog
    right = sum(1 for job_id, events in zip(job_ids, results)
                if len(events) == 1 and events[0].payload["status"] == "success"
                and events[0].payload["snapshot"]["job_id"] == job_id)
    return {"capacity": capacity, "triggers": len(triggers), "follow_wall_s": wall, "cpu_s": cpu,
            "cpu_share_of_one_core_pct": 100 * cpu / wall, "peak_rss_mb": rss_mb(),
            "blocked_loop_warnings": len(warned_at), "warned_at_s": warned_at,
            "loop_cpu_in_those_gaps_s": busy,
            "full_gc_in_those_gaps_s": in_gc,
            "objects_tracked_at_start": objects_at_start,
            "longest_stall_s": max(stalls),
            "resumed_correctly": right}

print(json.dumps(asyncio.run(main())))
"""


async def start_jobs(url: str, api_key: str, tasks: int) -> list[str]:
    rng = random.Random(7)
    async with AsyncDominoClient(url, PROJECT, api_key=api_key) as client:
        gate = asyncio.Semaphore(50)

        async def start(i: int) -> str:
            async with gate:
                seconds = rng.uniform(10, 30)
                handle = await client.start_job(
                    f"echo task {i} starts; sleep {seconds:.1f}; echo task {i} ends")
                return handle.job_id

        return list(await asyncio.gather(*(start(i) for i in range(tasks))))


def measure(sandbox: SandboxProcess, tasks: int, mode: str) -> dict[str, Any]:
    job_ids = asyncio.run(start_jobs(sandbox.url, sandbox.api_key, tasks))
    sandbox.reset_stats()
    env = {
        "AIRFLOW_CONN_DOMINO_DEFAULT": json.dumps({
            "conn_type": "domino", "host": sandbox.url, "password": sandbox.api_key,
            "extra": {"project": PROJECT}}),
        "BENCH_PROJECT": PROJECT,
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",  # task-log lines would go to stderr
    }
    for name in ("DOMINO_API_HOST", "DOMINO_USER_API_KEY", "DOMINO_PROJECT"):
        os.environ.pop(name, None)
    out, _ = run_script(sys.executable, TRIGGERER, [mode, json.dumps(job_ids)], env,
                        timeout=1200)
    stats = sandbox.stats()
    return {"clients": mode, **out,
            "sandbox_requests": sum(sum(v.values()) for v in stats["requests"].values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--clients", nargs="*", default=["shared", "per-trigger"],
                        choices=["shared", "per-trigger"])
    args = parser.parse_args()
    rows = []
    with SandboxProcess(projects={PROJECT: None}) as sandbox:
        for mode in args.clients:
            rows.append(measure(sandbox, args.tasks, mode))
            print(f"  {mode}: {rows[-1]['resumed_correctly']}/{args.tasks} resumed, "
                  f"{rows[-1]['blocked_loop_warnings']} blocked-loop warnings", flush=True)
    report("airflow_triggerer", rows)


if __name__ == "__main__":
    main()
