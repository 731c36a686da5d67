"""Benchmark: bytes per v1 status poll in a project that already has 5,000 runs.

A sandbox (separate process) gets one project filled with 5,000 finished runs, created for real
through ``POST /v1/projects/{owner}/{project}/runs`` (``["true"]``, ``isDirect``; 50 requests in
flight at a time), then waited on until all are terminal. Then one new run ``sleep 6``
(isDirect) is followed to its end by each client in turn, with the sandbox stats reset before
each:

* ours: ``DominoClient.run_run(RunSpec(("sleep 6",), is_direct=True), PollOptions(poll_freq=5))``
  polls that one run: ``GET .../runs/{runId}``;
* official: ``runs_start_blocking(command=["sleep 6"], is_direct=True, poll_freq=5)`` (its own
  venv, a subprocess) polls the whole list: ``GET .../runs``, then searches it for the run.

Bytes per status poll are measured with the sandbox's own counter: after each client's run, the
stats are reset, the client's status route is fetched once with the same API key header, and
``stats()["bytes_sent"]`` is read (response-body bytes; the HTTP body length is reported too as a
cross-check). Status polls are counted from the per-route stats of the client's own run; totals
are that run's ``bytes_sent``.

    .venv/bin/python benchmarks/v1_status_polling.py [--runs 5000] [--sleep 6]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import httpx
from _bench import completed_at, official_env, official_python, request_count, run_script
from _common import report

from domino_orchestrate.core import DominoClient, PollOptions, RunSpec
from domino_orchestrate.sandbox import SandboxProcess

OWNER, NAME = "bench", "history"
P1 = f"/v1/projects/{OWNER}/{NAME}"
LIST_ROUTE = "GET /v1/projects/{owner}/{project}/runs"
ONE_ROUTE = "GET /v1/projects/{owner}/{project}/runs/{runId}"

OFFICIAL = """
import json, os, sys, time
from domino import Domino
client = Domino(os.environ["BENCH_PROJECT"])
start = client.runs_start_blocking(command=[sys.argv[1]], is_direct=True, poll_freq=5)
returned = time.time()
print(json.dumps({"returned_at": returned, "job_id": start["runId"]}))
"""


async def create_history(url: str, key: str, runs: int, concurrency: int) -> float:
    """Start ``runs`` real v1 runs (``true``) and wait until all of them are terminal."""
    started = time.monotonic()
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"X-Domino-Api-Key": key},
                                 limits=limits, timeout=120) as client:
        gate = asyncio.Semaphore(concurrency)
        body = {"command": ["true"], "isDirect": True, "commitId": None, "title": None,
                "tier": None, "publishApiEndpoint": None}

        async def start() -> None:
            async with gate:
                resp = await client.post(f"{P1}/runs", json=body)
                resp.raise_for_status()

        await asyncio.gather(*(start() for _ in range(runs)))
        while True:
            data = (await client.get(f"{P1}/runs")).json()["data"]
            if sum(1 for run in data if run["isCompleted"]) >= runs:
                break
            await asyncio.sleep(1)
    return time.monotonic() - started


def route_bytes(sb: SandboxProcess, path: str) -> tuple[int, int]:
    """(sandbox bytes_sent, HTTP body length) for one GET of ``path`` with the API key."""
    sb.reset_stats()
    with httpx.Client(base_url=sb.url, headers={"X-Domino-Api-Key": sb.api_key}, timeout=60) as c:
        resp = c.get(path)
        resp.raise_for_status()
    return int(sb.stats()["bytes_sent"]), len(resp.content)


def follow(sb: SandboxProcess, client: str, python: str | None, sleep: int) -> dict[str, Any]:
    sb.reset_stats()
    if client == "ours":
        with DominoClient(sb.url, f"{OWNER}/{NAME}", api_key=sb.api_key) as dc:
            spec = RunSpec(command=(f"sleep {sleep}",), is_direct=True)
            final = dc.run_run(spec, PollOptions(poll_freq=5))
            returned, run_id = time.time(), final.job_id
    else:
        assert python is not None
        env = {**official_env(sb.url, sb.api_key), "BENCH_PROJECT": f"{OWNER}/{NAME}"}
        out, _ = run_script(python, OFFICIAL, [f"sleep {sleep}"], env)
        returned, run_id = float(out["returned_at"]), str(out["job_id"])
    stats = sb.stats()
    route = ONE_ROUTE if client == "ours" else LIST_ROUTE
    polls = sum(stats["requests"].get(route, {}).values())
    path = f"{P1}/runs/{run_id}" if client == "ours" else f"{P1}/runs"
    per_poll, body_len = route_bytes(sb, path)
    latency = returned - completed_at(sb.url, sb.api_key, run_id)
    return {
        "client": client,
        "status_route": route.removeprefix("GET /v1/projects/{owner}/{project}"),
        "runs_in_project": None,
        "status_polls": polls,
        "bytes_per_status_poll": per_poll,
        "http_body_len": body_len,
        "status_poll_bytes": polls * per_poll,
        "requests": request_count(stats),
        "total_bytes": stats["bytes_sent"],
        "detection_latency_s": latency,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--sleep", type=int, default=6)
    args = parser.parse_args()
    python = official_python()
    clients = ["ours", "official"] if python else ["ours"]
    if not python:
        print("official client venv not found (DOMINO_OFFICIAL_PYTHON): measuring ours only")
    rows = []
    with SandboxProcess(projects={f"{OWNER}/{NAME}": None}) as sb:
        seconds = asyncio.run(create_history(sb.url, sb.api_key, args.runs, args.concurrency))
        print(f"  created {args.runs} runs in {seconds:.1f} s", flush=True)
        for client in clients:
            row = follow(sb, client, python, args.sleep)
            with httpx.Client(base_url=sb.url, headers={"X-Domino-Api-Key": sb.api_key}) as c:
                row["runs_in_project"] = len(c.get(f"{P1}/runs", timeout=60).json()["data"])
            rows.append(row)
            print(f"  {client}: {row['status_polls']} polls of {row['bytes_per_status_poll']} B",
                  flush=True)
    ours = next(r for r in rows if r["client"] == "ours")
    for row in rows:
        row["per_poll_vs_ours"] = f"{row['bytes_per_status_poll'] / ours['bytes_per_status_poll']:.0f}x"
    report("v1_status_polling", rows)


if __name__ == "__main__":
    main()
