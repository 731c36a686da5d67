"""Benchmark: what importing our Airflow / Prefect / Dagster integration adds on top of the
framework itself, as a DAG / flow / definitions file would import them.

For each framework, 7 fresh interpreters (after one untimed warm-up run that fills the bytecode
caches) each time, with ``time.perf_counter``:

1. the framework's usual imports (``from airflow.sdk import DAG``; ``from prefect import flow,
   task``; ``from dagster import Definitions, asset``), then
2. our integration's public names on top, in the same process (``from domino_orchestrate.airflow
   import DominoJobOperator``, which loads the operator module; ``from domino_orchestrate.prefect
   import DominoCredentials, start_domino_job, wait_for_domino_job`` — and, as its own row,
   ``run_domino_job``, whose first use makes Prefect build four subflows' parameter schemas;
   ``from domino_orchestrate.dagster import DominoResource,
   domino_job_asset``).

The figure is the median of step 2 (the import cost on top of the framework), alongside the
median framework time and the median total. Target: under 50 ms each. A framework or integration
that is missing or fails to import is reported as "unavailable" with the error. ``AIRFLOW_HOME``
points at a temp dir so no airflow.cfg is written to the home directory.

    .venv/bin/python benchmarks/import_cost.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from _common import median, report

TARGET_MS = 50.0

CASES = {
    "airflow": ("from airflow.sdk import DAG",
                "from domino_orchestrate.airflow import DominoJobOperator"),
    "prefect": ("from prefect import flow, task",
                "from domino_orchestrate.prefect import DominoCredentials, start_domino_job, "
                "wait_for_domino_job"),
    # Touching a prebuilt subflow defines it: Prefect computes each flow's parameter schema then.
    "prefect (+ run_domino_job subflow)": ("from prefect import flow, task",
                "from domino_orchestrate.prefect import run_domino_job"),
    "dagster": ("from dagster import Definitions, asset",
                "from domino_orchestrate.dagster import DominoResource, domino_job_asset"),
}

PROBE = """
import json, sys, time
t0 = time.perf_counter()
try:
    exec(sys.argv[1])
except BaseException as exc:
    print(json.dumps({"error": "framework: " + type(exc).__name__ + ": " + str(exc)[:200]}))
    raise SystemExit(0)
t1 = time.perf_counter()
try:
    exec(sys.argv[2])
except BaseException as exc:
    print(json.dumps({"error": "ours: " + type(exc).__name__ + ": " + str(exc)[:200]}))
    raise SystemExit(0)
t2 = time.perf_counter()
print(json.dumps({"framework_ms": (t1 - t0) * 1000, "ours_ms": (t2 - t1) * 1000}))
"""


def probe(framework: str, ours: str, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, framework, ours],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"}
    return dict(json.loads(lines[-1]))


def unavailable(row: dict[str, Any], error: str) -> dict[str, Any]:
    return {**row, "framework_ms": "unavailable", "ours_on_top_ms": "unavailable",
            "ours_min_max_ms": "", "total_ms": "unavailable", "under_50ms": "unavailable",
            "error": error}


def measure(name: str, runs: int, env: dict[str, str]) -> dict[str, Any]:
    framework, ours = CASES[name]
    row: dict[str, Any] = {"integration": f"domino_orchestrate.{name}", "framework_import": framework,
                           "our_import": ours}
    warm = probe(framework, ours, env)  # untimed: fills the bytecode caches
    if "error" in warm:
        return unavailable(row, warm["error"])
    samples = [probe(framework, ours, env) for _ in range(runs)]
    errors = [s["error"] for s in samples if "error" in s]
    if errors:
        return unavailable(row, errors[0])
    on_top = [s["ours_ms"] for s in samples]
    return {**row, "framework_ms": median([s["framework_ms"] for s in samples]),
            "ours_on_top_ms": median(on_top),
            "ours_min_max_ms": f"{min(on_top):.1f}-{max(on_top):.1f}",
            "total_ms": median([s["framework_ms"] + s["ours_ms"] for s in samples]),
            "under_50ms": median(on_top) < TARGET_MS, "error": ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--only", nargs="*", choices=sorted(CASES), default=sorted(CASES))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="import-cost-") as home:
        env = {**os.environ, "AIRFLOW_HOME": home, "PREFECT_HOME": home, "DAGSTER_HOME": home}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for name in args.only:
            rows.append(measure(name, args.runs, env))
            print(f"  {name}: {rows[-1]['ours_on_top_ms']}", flush=True)
    report("import_cost", rows)


if __name__ == "__main__":
    main()
