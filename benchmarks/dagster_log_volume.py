"""Benchmark: what a noisy Domino job costs a Dagster step — events and step overhead.

A job prints N lines (1k, 20k, 200k) as fast as it can; a ``domino_job_asset`` follows it under
``materialize()`` with a persistent temporary Dagster instance (SQLite, as ``dagster dev``), once
per mode:

* ``per_line`` — before issue 16: every stdout line was one ``context.log`` call, i.e. one event;
* ``batched`` — now: lines go to the step's captured stdout/stderr, and ``context.log`` gets one
  event per stream for a fetch of more than 20 lines (``core.observe.LineBatcher``).

Reported per run: events in the run, the event DB's size, the step's wall time (STEP_START to
STEP_SUCCESS), the Domino job's duration, and the overhead (step time minus job time).

    .venv/bin/python benchmarks/dagster_log_volume.py [--lines 1000 20000 200000]
                                                      [--modes per_line batched]
                                                      [--per-line-max 20000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import report


def per_line_event_log() -> None:
    """Restore the pre-issue-16 behaviour: one event per line, nothing batched."""
    from domino_orchestrate.dagster import resource

    def on_line(self: Any, line: Any) -> None:
        if self.tail is not None:
            self.tail.append(line.text)
        (self.context.log.warning if line.stream == "stderr" else self.context.log.info)(line.text)

    resource._EventLog.on_line = on_line  # type: ignore[method-assign]
    resource._EventLog.on_fetched = lambda self: None  # type: ignore[method-assign]
    resource._EventLog.on_finished = lambda self, snapshot, error: None  # type: ignore[method-assign]


def measure(lines: int, srv: Any, workdir: Path) -> dict[str, Any]:
    from dagster import DagsterEventType, DagsterInstance, materialize

    from domino_orchestrate.dagster import DominoResource, domino_job_asset

    script = workdir / f"print_{lines}.py"
    script.write_text(f"for i in range({lines}): print(f'line {{i}} of the job')\n")
    domino = DominoResource(host=srv.url, project="demo/quick-start", api_key=srv.api_key)
    noisy = domino_job_asset("noisy", f"{sys.executable} {script}")
    with tempfile.TemporaryDirectory() as home, DagsterInstance.local_temp(home) as instance:
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink):  # the step's own stdout: every line lands here
            result = materialize([noisy], resources={"domino": domino}, instance=instance)
        logs = instance.all_logs(result.run_id)
        times = {e.dagster_event.event_type: e.timestamp for e in logs  # type: ignore[union-attr]
                 if e.dagster_event and e.dagster_event.event_type in (
                     DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS)}
        step_s = times[DagsterEventType.STEP_SUCCESS] - times[DagsterEventType.STEP_START]
        (mat,) = result.asset_materializations_for_node("noisy")
        job_s = float(mat.metadata["domino_duration_s"].value)  # type: ignore[arg-type]
        db_bytes = sum(p.stat().st_size for p in Path(home).rglob("*.db"))
        return {"events": len(logs), "event_db_mb": round(db_bytes / 1e6, 2),
                "step_s": round(step_s, 2), "job_s": round(job_s, 2),
                "overhead_s": round(step_s - job_s, 2),
                "lines_in_step_stdout": sink.getvalue().count(" of the job\n")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1000, 20000, 200000])
    parser.add_argument("--modes", nargs="+", default=["per_line", "batched"],
                        choices=["per_line", "batched"])
    parser.add_argument("--per-line-max", type=int, default=20000,
                        help="largest job measured per line (200k events take many minutes)")
    args = parser.parse_args()

    from domino_orchestrate.sandbox.server import SandboxServer

    rows = []
    with SandboxServer() as srv, tempfile.TemporaryDirectory() as tmp:
        # Batched first: patching in the old behaviour is one way.
        for mode in sorted(args.modes, key=lambda m: m != "batched"):
            if mode == "per_line":
                per_line_event_log()
            for lines in args.lines:
                if mode == "per_line" and lines > args.per_line_max:
                    continue
                started = time.monotonic()
                row = {"mode": mode, "lines": lines, **measure(lines, srv, Path(tmp))}
                row["wall_s"] = round(time.monotonic() - started, 1)
                rows.append(row)
                print(row, file=sys.stderr, flush=True)
    report("dagster_log_volume", rows)


if __name__ == "__main__":
    main()
