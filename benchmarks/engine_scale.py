"""Benchmark: 1,000 concurrent Domino jobs followed by the async engine in one process.

Starts a sandbox as a separate process, submits N jobs (`sleep` 10-30 s), follows all of them
with one AsyncDominoClient in one event loop (poll_freq=5, stdout streaming on), and reports
this process's CPU share of one core, peak RSS, p50/p99 detection latency (seen terminal minus
the sandbox's completion time) and errors. Targets: < 25 % of one core, < 300 MB, zero errors.

    python benchmarks/engine_scale.py [--jobs 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import time
from datetime import datetime, timezone

from _common import median, percentile, report

from domino_orchestrate.core import AsyncDominoClient, JobFailedError, PollOptions
from domino_orchestrate.sandbox import SandboxProcess


async def follow_all(url: str, api_key: str, jobs: int, poll_freq: float) -> dict[str, object]:
    rng = random.Random(1)
    latencies: list[float] = []
    errors: list[str] = []
    async with AsyncDominoClient(url, "bench/scale", api_key=api_key) as client:
        gate = asyncio.Semaphore(50)

        async def submit(i: int) -> object:
            async with gate:
                return await client.start_job(f"echo start {i}; sleep {rng.uniform(10, 30):.1f}; echo done {i}")

        handles = await asyncio.gather(*(submit(i) for i in range(jobs)))
        options = PollOptions(poll_freq=poll_freq, max_poll_time=600)
        cpu0, wall0 = time.process_time(), time.monotonic()
        lines = 0

        def count(_line: object) -> None:
            nonlocal lines
            lines += 1

        async def follow(handle: object) -> None:
            try:
                final = await client.wait(handle, options, on_line=count)  # type: ignore[arg-type]
            except JobFailedError as exc:
                errors.append(f"{exc.job_id}: {exc.status}")
                return
            except Exception as exc:  # counted, not raised: the figure is the error count
                errors.append(repr(exc))
                return
            seen = datetime.now(timezone.utc)
            if final.completed_at:
                latencies.append((seen - final.completed_at).total_seconds())

        await asyncio.gather(*(follow(h) for h in handles))
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    return {
        "jobs": jobs,
        "poll_freq_s": poll_freq,
        "follow_wall_s": wall,
        "cpu_s": cpu,
        "cpu_share_of_one_core_pct": 100 * cpu / wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "latency_p50_s": median(latencies),
        "latency_p99_s": percentile(latencies, 99),
        "stdout_lines": lines,
        "errors": len(errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--poll-freq", type=float, default=5.0)
    args = parser.parse_args()
    with SandboxProcess(projects={"bench/scale": None}) as sandbox:
        row = asyncio.run(follow_all(sandbox.url, sandbox.api_key, args.jobs, args.poll_freq))
        stats = sandbox.stats()
    row["sandbox_requests"] = sum(sum(v.values()) for v in stats["requests"].values())
    report("engine_scale", [row])


if __name__ == "__main__":
    main()
