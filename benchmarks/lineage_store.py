"""Benchmark: the lineage store (``domino_orchestrate.trace``) ingesting 100,000 OpenLineage events
and answering ``trace`` on a 10-deep pipeline.

The events are what our emitter sends (``core.lineage.events.build_event``: dominoJob, tags,
parent, processing_engine facets; START, RUNNING, COMPLETE per run), for a pipeline of 10 stages
(stage 0 -> stage 1 -> ... -> stage 9, each reading the previous stage's output) run again and
again until there are ``--events`` events, written as JSON lines the way the file transport
writes them. Measured:

- ingest: ``lineage import`` of that file into an empty SQLite store (events/s, wall clock,
  including reading and parsing the file; and per second of this process's CPU time, which a
  busy machine does not distort); then importing it again (all duplicates);
- trace: ``trace(<last stage's output>)`` (the newest run of stage 9, ten runs deep), median
  and worst of ``--repeat`` calls, and the same by run id;
- also ``recent(20)`` and ``stale()`` (latest run of each component).

Goals (issue 15): ingest >= 5,000 events/s, trace <= 100 ms on SQLite. The CPU-second rate is
the one to compare between machines and runs: on 2 cores with a load average of 4 the wall-clock
rate is about half of it. ``--store URL`` runs it
on another store (e.g. ``postgresql+psycopg://…``; it must be empty).

    .venv/bin/python benchmarks/lineage_store.py [--events 100000] [--depth 10] [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from _common import report

from domino_orchestrate.core.lineage import Dataset, LineageInfo, ParentRun
from domino_orchestrate.core.lineage.events import DominoFacts, LineageRun, build_event

INGEST_GOAL = 5000.0
TRACE_GOAL_MS = 100.0
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
STATES = ("START", "RUNNING", "COMPLETE")


def templates(depth: int) -> list[list[str]]:
    """Per stage, its three events as JSON text with placeholders for ids and times."""
    from openlineage.client.event_v2 import RunState
    from openlineage.client.serde import Serde

    result = []
    for stage in range(depth):
        info = LineageInfo(
            orchestrator="airflow", job_name=f"stage{stage}", run_key=("bench", str(stage)),
            parent=ParentRun("airflow", "bench_dag", "@PARENT@"),
            inputs=(Dataset("s3://bench", f"stage{stage - 1}.parquet"),) if stage else (),
            outputs=(Dataset("s3://bench", f"stage{stage}.parquet"),),
            tags={"team": "bench"},
        )
        run = LineageRun.create(info, "domino.bench.pipeline", "bench/pipeline")
        facts = DominoFacts(job_id="@JOB@", url="https://domino.example.com/jobs/@JOB@",
                            commit_id="c0ffee", kind="job", status="Succeeded", title=f"stage{stage}")
        texts = []
        for state in STATES:
            event = build_event(run, RunState[state], facts, event_time=T0)
            text = Serde.to_json(event).replace(run.run_id, "@RUN@")
            texts.append(text.replace(T0.isoformat(), "@TIME@"))
        result.append(texts)
    return result


def write_events(path: Path, count: int, depth: int) -> int:
    """Whole pipeline runs until ``count`` events; returns how many were written."""
    stages = templates(depth)
    written, round_ = 0, 0
    with path.open("w") as out:
        while written < count:
            parent = str(uuid.uuid4())
            for stage, texts in enumerate(stages):
                run_id, job = str(uuid.uuid4()), uuid.uuid4().hex[:24]
                start = T0 + timedelta(hours=round_, minutes=stage * 5)
                for index, text in enumerate(texts):
                    when = (start + timedelta(minutes=index * 2)).isoformat()
                    out.write(text.replace("@RUN@", run_id).replace("@JOB@", job)
                              .replace("@TIME@", when).replace("@PARENT@", parent) + "\n")
                written += len(texts)
            round_ += 1
    return written


def timed(fn: Any, repeat: int) -> tuple[float, float]:
    """Median and worst wall time of ``fn()`` in ms."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--store", help="an empty store's URL (default: a new SQLite file)")
    args = parser.parse_args()

    from domino_orchestrate.trace.store import LineageStore

    with tempfile.TemporaryDirectory(prefix="lineage-bench-") as tmp:
        path = Path(tmp) / "events.jsonl"
        count = write_events(path, args.events, args.depth)
        size_mb = path.stat().st_size / 1e6
        with LineageStore(args.store or Path(tmp) / "lineage.db") as store:
            started, cpu = time.perf_counter(), time.process_time()
            result = store.import_files([path])
            ingest_s = time.perf_counter() - started
            ingest_cpu_s = time.process_time() - cpu
            started = time.perf_counter()
            again = store.import_files([path])
            again_s = time.perf_counter() - started
            assert result.new == count and again.new == 0, (result, again)
            output = f"stage{args.depth - 1}.parquet"
            root = store.trace(output)
            depth = 1
            node = root
            while node.upstream:
                node, depth = node.upstream[0], depth + 1
            assert depth == args.depth, depth
            trace_ms, trace_worst = timed(lambda: store.trace(output), args.repeat)
            by_id_ms, _ = timed(lambda: store.trace(root.run.run_id), args.repeat)
            recent_ms, _ = timed(lambda: store.recent(20), args.repeat)
            stale_ms, _ = timed(lambda: store.stale(), max(3, args.repeat // 4))
            backend = store.url.split(":", 1)[0]
    rows = [{
        "store": backend, "events": count, "file MB": round(size_mb, 1),
        "ingest s": round(ingest_s, 2), "ingest events/s": round(count / ingest_s),
        "ingest events/CPU-s": round(count / ingest_cpu_s),
        "re-import events/s": round(count / again_s),
        "trace depth": depth, "trace ms (median)": round(trace_ms, 1),
        "trace ms (worst)": round(trace_worst, 1), "trace by run id ms": round(by_id_ms, 1),
        "recent(20) ms": round(recent_ms, 1), "stale() ms": round(stale_ms, 1),
        "goals met": count / ingest_s >= INGEST_GOAL and trace_ms <= TRACE_GOAL_MS,
        # Wall-clock rates depend on what else the machine runs: the 1-minute load average
        # (against os.cpu_count()) says how much of a core this process could have had.
        "load (1 min)": round(os.getloadavg()[0], 2), "CPUs": os.cpu_count(),
    }]
    report("lineage_store", rows)
    return 0 if rows[0]["goals met"] else 1


if __name__ == "__main__":
    sys.exit(main())
