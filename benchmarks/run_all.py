"""Run every benchmark, each as its own subprocess, and write a combined markdown summary.

Runs engine_scale.py (--jobs 1000), sandbox_scale.py, detection_latency.py, large_stdout.py,
v1_status_polling.py, import_cost.py, lineage_store.py and dagster_log_volume.py one after another with this interpreter (so one failing
or timing out does not stop the others; their output is shown live). Then it reads the JSON each
wrote to benchmarks/results/ during this run (stale files from earlier runs are not used),
prints a markdown summary (exit code and duration per script, and every result table) and
writes it to benchmarks/results/summary.md. ``make bench`` runs this with DOMINO_OFFICIAL_PYTHON
set; without the official client's venv the comparison scripts measure ours only.

    .venv/bin/python benchmarks/run_all.py [--only NAME ...] [--engine-jobs 1000 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

#: name -> (script arguments, result files it writes)
SCRIPTS: dict[str, tuple[list[str], list[str]]] = {
    "engine_scale": (["--jobs", "{engine_jobs}"], ["engine_scale"]),
    "airflow_triggerer": ([], ["airflow_triggerer"]),
    "sandbox_scale": ([], ["sandbox_scale"]),
    "detection_latency": ([], ["detection_latency", "detection_latency_targets"]),
    "large_stdout": ([], ["large_stdout"]),
    "v1_status_polling": ([], ["v1_status_polling"]),
    "import_cost": ([], ["import_cost"]),
    "lineage_store": ([], ["lineage_store"]),
    "dagster_log_volume": ([], ["dagster_log_volume"]),
}


def run(name: str, args: list[str], timeout: float) -> dict[str, Any]:
    """Run one script, echoing its output; return exit code, duration and the output's tail."""
    cmd = [sys.executable, str(HERE / f"{name}.py"), *args]
    print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
    load = os.getloadavg()[0]
    started = time.monotonic()
    tail: deque[str] = deque(maxlen=30)
    proc = subprocess.Popen(cmd, cwd=HERE.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert proc.stdout is not None
    rc: int | str
    try:
        for line in proc.stdout:
            print(line, end="", flush=True)
            tail.append(line.rstrip("\n"))
            if time.monotonic() - started > timeout:
                raise subprocess.TimeoutExpired(cmd, timeout)
        rc = proc.wait(timeout=max(1.0, timeout - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        rc = f"timeout after {timeout:.0f} s"
    return {"rc": rc, "seconds": time.monotonic() - started, "tail": list(tail),
            "load": (load, os.getloadavg()[0])}


def fmt(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(",", ":"))
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def table(data: Any) -> list[str]:
    """A markdown table from a list of row dicts, or a key/value table from one dict."""
    if isinstance(data, dict):
        data = [{"metric": k, "value": v} for k, v in data.items()]
    if not data:
        return ["(no rows)"]
    columns: list[str] = []
    for row in data:
        columns += [c for c in row if c not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(fmt(row.get(c, "")) for c in columns) + " |" for row in data]
    return lines


def summary(outcomes: dict[str, dict[str, Any]], since: float) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpus = os.cpu_count()
    out = [f"# Benchmark summary ({stamp})", "",
           f"Machine: {cpus} CPUs. Load average (1 min) at each script's start and end is shown "
           "because timings (latency, CPU share, import times) are sensitive to other work on "
           "the machine.", "",
           "| script | exit | seconds | load avg start/end |", "|---|---|---|---|"]
    out += [f"| {name} | {o['rc']} | {o['seconds']:.0f} | {o['load'][0]:.1f} / {o['load'][1]:.1f} |"
            for name, o in outcomes.items()]
    for name, outcome in outcomes.items():
        out += ["", f"## {name}", ""]
        fresh = False
        for result in SCRIPTS[name][1]:
            path = RESULTS / f"{result}.json"
            if not path.exists() or path.stat().st_mtime < since:
                continue
            fresh = True
            if result != name:
                out += [f"### {result}", ""]
            try:
                out += [*table(json.loads(path.read_text())), ""]
            except (ValueError, TypeError) as exc:
                out += [f"(could not read {path.name}: {exc})", ""]
        if not fresh or outcome["rc"] != 0:
            out += ["No fresh results." if not fresh else "", "Last output lines:", "", "```",
                    *outcome["tail"], "```"]
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(SCRIPTS), default=list(SCRIPTS))
    parser.add_argument("--engine-jobs", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per script")
    args = parser.parse_args()
    since = time.time() - 1
    outcomes = {}
    for name in args.only:
        script_args: list[str] = []
        for arg in SCRIPTS[name][0]:
            if arg == "{engine_jobs}":
                script_args += [str(n) for n in args.engine_jobs]
            else:
                script_args.append(arg)
        outcomes[name] = run(name, script_args, args.timeout)
    text = summary(outcomes, since)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "summary.md").write_text(text)
    print("\n" + text)
    print(f"written to {RESULTS / 'summary.md'}")
    if any(o["rc"] != 0 for o in outcomes.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
