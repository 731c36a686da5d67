"""Benchmark: 1,000 (and 5,000) concurrent Domino jobs followed by the async engine in one process.

For each size, starts a sandbox as a separate process, submits N jobs (`sleep` 10-30 s), follows
all of them with one AsyncDominoClient in one event loop (stdout streaming on), and reports this
process's CPU (user + system) and its share of one core while following, CPU per request the
sandbox served meanwhile, peak RSS, p50/p99 detection latency (seen terminal minus the sandbox's
completion time) and errors. Targets: <= 10 % of one core and <= 0.5 ms CPU per request at
1,000 jobs (poll_freq 5), < 300 MB, zero errors. 5,000 jobs poll every 15 s so the sandbox (on
the same cores) keeps up; the rows show how CPU and memory grow with the number of jobs.

A smaller run (``--jobs 200``) gives a per-request figure that a loaded machine disturbs less.

    python benchmarks/engine_scale.py [--jobs 200 1000 5000] [--poll-freq 5 5 15]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import time
from datetime import datetime, timezone
from typing import Any

from _common import median, percentile, report

from domino_orchestrate.core import AsyncDominoClient, JobFailedError, PollOptions
from domino_orchestrate.sandbox import SandboxProcess


async def follow_all(url: str, api_key: str, jobs: int, poll_freq: float,
                     reset_stats: Any) -> dict[str, object]:
    rng = random.Random(1)
    latencies: list[float] = []
    errors: list[str] = []
    async with AsyncDominoClient(url, "bench/scale", api_key=api_key) as client:
        gate = asyncio.Semaphore(50)

        async def submit(i: int) -> object:
            async with gate:
                return await client.start_job(f"echo start {i}; sleep {rng.uniform(10, 30):.1f}; echo done {i}")

        handles = await asyncio.gather(*(submit(i) for i in range(jobs)))
        reset_stats()
        options = PollOptions(poll_freq=poll_freq, max_poll_time=900)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        usage0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
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
        usage, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - wall0
    user, system = usage.ru_utime - usage0.ru_utime, usage.ru_stime - usage0.ru_stime
    return {
        "jobs": jobs,
        "poll_freq_s": poll_freq,
        "follow_wall_s": wall,
        "cpu_s": user + system,
        "user_s": user,
        "system_s": system,
        "cpu_share_of_one_core_pct": 100 * (user + system) / wall,
        "rss_before_follow_mb": rss0,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "latency_p50_s": median(latencies),
        "latency_p99_s": percentile(latencies, 99),
        "stdout_lines": lines,
        "errors": len(errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, nargs="+", default=[1000])
    parser.add_argument("--poll-freq", type=float, nargs="+", default=None,
                        help="one per --jobs value (default: 5 s up to 1,000 jobs, 15 s above)")
    args = parser.parse_args()
    freqs = args.poll_freq or [5.0 if n <= 1000 else 15.0 for n in args.jobs]
    rows = []
    for jobs, poll_freq in zip(args.jobs, freqs, strict=True):
        with SandboxProcess(projects={"bench/scale": None}) as sandbox:
            # Submissions are not measured: the count covers the following only.
            row = asyncio.run(follow_all(sandbox.url, sandbox.api_key, jobs, poll_freq,
                                         sandbox.reset_stats))
            stats = sandbox.stats()
        requests = sum(sum(v.values()) for v in stats["requests"].values())
        row["sandbox_requests_while_following"] = requests
        row["status_polls"] = sum(sum(v.values()) for route, v in stats["requests"].items()
                                  if route == "GET /v4/jobs/{jobId}")
        row["stdout_fetches"] = sum(sum(v.values()) for route, v in stats["requests"].items()
                                    if route.endswith("/stdout"))
        row["cpu_ms_per_request"] = 1000 * float(row["cpu_s"]) / max(1, requests)  # type: ignore[arg-type]
        rows.append(row)
        print(f"  {jobs} jobs: {row['cpu_ms_per_request']:.3f} ms CPU per request", flush=True)
    report("engine_scale", rows)


if __name__ == "__main__":
    main()
