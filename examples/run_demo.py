"""`make demo`: a sandbox, the Airflow DAG, the Prefect flow, the Dagster job and the CLI against it.

Starts a Domino sandbox as its own process, points every example at it through the Domino
environment variables, writes OpenLineage events to a file, streams each example's output, prints
one summary row per Domino job (orchestrator, task, job id, final state, lineage events), and
stops the sandbox. Each orchestrator runs in its own subprocess, as it would in production.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from domino_orchestrate.sandbox import SandboxProcess

HERE = Path(__file__).resolve().parent
PROJECT = "demo/quick-start"
ROWS_MARK = "DEMO-ROWS:"
ORCHESTRATORS = ("airflow", "prefect", "dagster")


# The orchestrators' log records, by their formats (Airflow's structlog console, Prefect's and
# Dagster's default handlers): what the demo shows is picked from these.
_AIRFLOW_RECORD = re.compile(r"^\S+ \[(?P<level>\w+)\s*\] (?P<msg>.*?)\s+\[(?P<logger>[\w.]+)\]")
_PREFECT_RECORD = re.compile(r"^[\d:.]+ \| (?P<level>\w+)\s*\| (?P<logger>.+?) - (?P<msg>.*)$")
_DAGSTER_RECORD = re.compile(
    r"^\S+ \S+ \S+ - dagster - (?P<level>\w+) - \S+ - [0-9a-f-]{36} - (?:\d+ - )?(?P<msg>.*)$")


def story_line(name: str, line: str) -> str | None:
    """The part of one output line of the ``name`` example that tells the user's story (the
    Domino jobs, their streamed lines, how each ended), or None for the framework's own logging
    (migrations, DAG bundles, engine events, tracebacks), which stays in the log file."""
    line = line.rstrip("\n")
    if name == "airflow":
        record = _AIRFLOW_RECORD.match(line)
        if record:  # our operators log under airflow.task.operators.domino_orchestrate...
            return record["msg"] if "domino_orchestrate" in record["logger"] else None
        return line if line.startswith("Failure caused by ") else None
    if name == "prefect":
        record = _PREFECT_RECORD.match(line)
        if record and record["logger"].startswith(("Flow run ", "Task run ")):
            return f"{record['logger']}: {record['msg']}"
        return None
    if name == "dagster":
        record = _DAGSTER_RECORD.match(line)
        if record and record["level"] != "DEBUG":
            return record["msg"]
        return None
    return line


def run_orchestrator(name: str, env: dict[str, str], log_file: Path) -> list[dict[str, Any]]:
    """Run examples/<name>/run_demo.py's ``run()`` in a subprocess: every line of its output goes
    to ``log_file``, the user's story (:func:`story_line`) to the screen as it happens."""
    code = (
        "import json, os, sys; sys.path.insert(0, os.getcwd()); import run_demo; "
        "rows = run_demo.run(os.environ['DOMINO_API_HOST'], os.environ['DOMINO_USER_API_KEY'], "
        f"os.environ['DOMINO_PROJECT']); print({ROWS_MARK!r} + json.dumps(rows, default=str))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=HERE / name, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    rows: list[dict[str, Any]] = []
    with open(log_file, "w") as log:
        for line in proc.stdout:
            if line.startswith(ROWS_MARK):
                rows = json.loads(line[len(ROWS_MARK):])
                continue
            log.write(line)
            shown = story_line(name, line)
            if shown is not None:
                print(f"[{name}] {shown}", flush=True)
    print(f"[{name}] (everything {name} logged: {log_file})", flush=True)
    if proc.wait() != 0 and not rows:
        rows = [{"orchestrator": name, "task": "(example crashed)", "job_id": "-", "state": f"exit {proc.returncode}"}]
    return rows


def run_cli(env: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    # cli-fail declares an output and fails; cli-train then trains on it: the lineage store calls
    # cli-train stale (a dependency that failed) at the end of the demo.
    for task, command, datasets in (
        ("cli-fail", "python fail.py", ["--output", "demo:clean_table"]),
        ("cli-train", "python train.py 2", ["--input", "demo:clean_table", "--output", "demo:model"]),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "domino_orchestrate", "run", "--poll-freq", "1", "--title", task,
             *datasets, command],
            env=env, text=True, capture_output=True,
        )
        for line in (done.stdout + done.stderr).splitlines():
            print(f"[cli] {line}")
        job_id = next((w for w in done.stderr.split() if len(w) == 24), "-")
        state = "Succeeded" if done.returncode == 0 else next(
            (s for s in ("Failed", "Error", "Stopped") if s in done.stderr), f"exit {done.returncode}")
        rows.append({"orchestrator": "cli", "task": task, "job_id": job_id, "state": state})
    return rows


def lineage_counts(path: Path) -> Counter[str]:
    """Events per Domino job id, read from the OpenLineage file transport's output."""
    counts: Counter[str] = Counter()
    if not path.exists():
        return counts
    for line in path.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        tags = (event.get("run", {}).get("facets", {}).get("tags") or {}).get("tags") or []
        for tag in tags:
            if tag.get("key") == "domino.job_id":
                counts[tag.get("value")] += 1
    return counts


def show_trace(lineage_file: Path, store_path: Path) -> None:
    """Ask the lineage store what led to the newest output that had inputs, and what is stale."""
    from rich.console import Console

    from domino_orchestrate.trace import LineageStore
    from domino_orchestrate.trace.render import to_rich_tree

    with LineageStore(store_path) as store:
        store.import_files([lineage_file], skip_invalid=True)
        runs = store.recent(limit=100)
        target = next((run for run in runs if run.outputs and run.inputs), None)
        if target is None:
            return
        output = target.outputs[0].key
        console = Console()
        print(f"\n$ domino-orchestrate lineage trace {output} --store {store_path}")
        console.print(to_rich_tree(store.trace(output)))
        print(f"\n$ domino-orchestrate lineage stale --store {store_path}")
        for finding in store.stale() or []:
            console.print(f"{finding.run.component}: {finding.reason}", markup=False)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="domino-demo-"))
    lineage_file = work / "lineage.jsonl"
    with SandboxProcess(projects={PROJECT: str(HERE / "project")}, data_dir=work / "sandbox") as sandbox:
        print(f"Domino sandbox at {sandbox.url} (project {PROJECT}); lineage → {lineage_file}\n")
        env = {
            **os.environ,
            "DOMINO_API_HOST": sandbox.url,
            "DOMINO_USER_API_KEY": sandbox.api_key,
            "DOMINO_PROJECT": PROJECT,
            "OPENLINEAGE__TRANSPORT__TYPE": "file",
            "OPENLINEAGE__TRANSPORT__LOG_FILE_PATH": str(lineage_file),
            "OPENLINEAGE__TRANSPORT__APPEND": "true",
            "DOMINO_ORCHESTRATE_LINEAGE_SPOOL": str(work / "spool"),
            "AIRFLOW_HOME": str(work / "airflow"),
            "PREFECT_HOME": str(work / "prefect"),
            "DAGSTER_HOME": str(work / "dagster"),
            # Prefect's temporary server otherwise runs a telemetry job that contends for SQLite.
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        for folder in ("airflow", "prefect", "dagster"):
            Path(env[f"{folder.upper()}_HOME"]).mkdir(parents=True, exist_ok=True)
        rows: list[dict[str, Any]] = []
        for name in ORCHESTRATORS:
            print(f"\n=== {name} ===", flush=True)
            rows += run_orchestrator(name, env, work / f"{name}.log")
        print("\n=== cli ===", flush=True)
        rows += run_cli(env)
    counts = lineage_counts(lineage_file)
    print("\n| orchestrator | task | Domino job id | final state | lineage events |")
    print("|---|---|---|---|---|")
    for row in rows:
        events = counts.get(str(row.get("job_id")), 0)
        print(f"| {row['orchestrator']} | {row['task']} | {row['job_id']} | {row['state']} | {events} |")
    print(f"\n{sum(counts.values())} lineage events written to {lineage_file}")
    show_trace(lineage_file, work / "lineage.db")
    expected = {"Succeeded", "Failed"}
    seen = {row["state"] for row in rows}
    return 0 if rows and seen <= expected | {"Error"} and "Succeeded" in seen else 1


if __name__ == "__main__":
    raise SystemExit(main())
