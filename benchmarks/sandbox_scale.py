"""Scale check for the sandbox: 1,000 concurrent `sleep 60` jobs polled every 5 s.

Starts the sandbox as a subprocess, starts N jobs concurrently (httpx.AsyncClient, at most
`--max-connections` connections), polls each job every `--interval` seconds until all are
terminal (or `--duration` + 60 s passes), then reports server CPU seconds and peak RSS (server
process only, sampled with psutil), request rate, error count and final statuses. Writes JSON to
benchmarks/results/sandbox_scale.json.

    .venv/bin/python benchmarks/sandbox_scale.py [--jobs 1000] [--sleep 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil

from domino_orchestrate.sandbox import SandboxProcess

RESULTS = Path(__file__).resolve().parent / "results" / "sandbox_scale.json"


async def _sample(proc: psutil.Process, peak: dict[str, int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            peak["rss"] = max(peak["rss"], proc.memory_info().rss)
        except psutil.Error:
            return
        await asyncio.sleep(0.5)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sp = SandboxProcess(api_key="bench", phase_delay=0.05).start()
    server = psutil.Process(sp.pid)
    cpu0 = server.cpu_times()
    peak = {"rss": server.memory_info().rss}
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample(server, peak, stop))
    errors: Counter[str] = Counter()
    requests_made = 0
    limits = httpx.Limits(max_connections=args.max_connections, max_keepalive_connections=200)
    headers = {"X-Domino-Api-Key": "bench"}
    try:
        async with httpx.AsyncClient(
            base_url=sp.url, headers=headers, limits=limits, timeout=60
        ) as client:
            pid = (
                await client.get(
                    "/v4/gateway/projects/findProjectByOwnerAndName",
                    params={"ownerName": "demo", "projectName": "quick-start"},
                )
            ).json()["id"]

            async def call(method: str, path: str, **kw: Any) -> dict[str, Any] | None:
                nonlocal requests_made
                requests_made += 1
                try:
                    resp = await client.request(method, path, **kw)
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] += 1
                    return None
                if resp.status_code != 200:
                    errors[f"HTTP {resp.status_code}"] += 1
                    return None
                return dict(resp.json())

            t_start = time.monotonic()
            started = await asyncio.gather(
                *(
                    call(
                        "POST",
                        "/v4/jobs/start",
                        json={
                            "projectId": pid,
                            "commandToRun": f"sleep {args.sleep}",
                            "title": f"scale-{i}",
                        },
                    )
                    for i in range(args.jobs)
                )
            )
            start_seconds = time.monotonic() - t_start
            ids = [j["id"] for j in started if j]
            final: dict[str, str] = {}
            running_seen = 0

            async def poll(job_id: str, offset: float) -> None:
                nonlocal running_seen
                await asyncio.sleep(offset)
                seen_running = False
                deadline = time.monotonic() + args.sleep + 60
                while time.monotonic() < deadline:
                    job = await call("GET", f"/v4/jobs/{job_id}")
                    if job is not None:
                        status = job["statuses"]["executionStatus"]
                        if status == "Running" and not seen_running:
                            seen_running = True
                            running_seen += 1
                        if job["statuses"]["isCompleted"]:
                            final[job_id] = status
                            return
                    await asyncio.sleep(args.interval)
                final[job_id] = "timeout"

            t_poll = time.monotonic()
            # Spread the first polls over one interval, as independent pollers would be.
            await asyncio.gather(
                *(poll(j, args.interval * i / max(1, len(ids))) for i, j in enumerate(ids))
            )
            poll_seconds = time.monotonic() - t_poll
            stats = (await client.get("/__sandbox__/stats")).json()
    finally:
        stop.set()
        await sampler
        cpu1 = server.cpu_times()
        sp.stop()
    total_seconds = start_seconds + poll_seconds
    return {
        "jobs": args.jobs,
        "sleep_seconds": args.sleep,
        "poll_interval_seconds": args.interval,
        "max_connections": args.max_connections,
        "jobs_started": len(ids),
        "start_phase_seconds": round(start_seconds, 2),
        "wall_seconds": round(total_seconds, 1),
        "jobs_seen_running": running_seen,
        "final_statuses": dict(Counter(final.values())),
        "succeeded": sum(1 for s in final.values() if s == "Succeeded"),
        "requests": requests_made,
        "request_rate_per_s": round(requests_made / total_seconds, 1),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "server_cpu_seconds": round((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), 2),
        "server_peak_rss_mib": round(peak["rss"] / 2**20, 1),
        "server_request_counts": stats["requests"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--sleep", type=int, default=60)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--max-connections", type=int, default=200)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    width = max(len(k) for k in result)
    for key, value in result.items():
        if key != "server_request_counts":
            print(f"{key:<{width}}  {value}")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
