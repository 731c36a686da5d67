"""Helpers shared by the comparison benchmarks: driving the official client in its own venv,
reading facts from the sandbox, and summarising the sandbox's request counts.

The official client (``dominodatalab==2.2.0``, ``import domino``) pins old packages, so it lives
in a separate venv and is only ever run as a subprocess: a small script is written to a temp
file and run with that interpreter, with ``DOMINO_API_HOST`` / ``DOMINO_USER_API_KEY`` set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def official_python() -> str | None:
    """The interpreter of the official client's venv, or None when it is not installed."""
    candidates = [os.environ.get("DOMINO_OFFICIAL_PYTHON"), str(ROOT / ".venv-official/bin/python")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    return None


def run_script(
    python: str,
    source: str,
    args: list[str],
    env: dict[str, str] | None = None,
    timeout: float = 900,
) -> tuple[dict[str, Any], float]:
    """Run ``source`` with ``python`` in a fresh process; return (its last stdout line as JSON,
    wall seconds). The script's stderr is kept only for the error message on failure."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(textwrap.dedent(source))
        path = fh.name
    # stderr goes to a file, not a pipe: the official client logs every stdout line there.
    with tempfile.TemporaryFile() as err:
        try:
            started = time.monotonic()
            proc = subprocess.run(
                [python, path, *args],
                env={**os.environ, **(env or {})},
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                timeout=timeout,
                check=False,
            )
            wall = time.monotonic() - started
        finally:
            os.unlink(path)
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        if proc.returncode != 0 or not lines:
            err.seek(max(0, err.seek(0, os.SEEK_END) - 3000))
            tail = err.read().decode(errors="replace")
            raise RuntimeError(f"{python} {path} exited {proc.returncode}: {tail}")
    return json.loads(lines[-1]), wall


def official_env(url: str, api_key: str) -> dict[str, str]:
    return {"DOMINO_API_HOST": url, "DOMINO_USER_API_KEY": api_key, "DOMINO_LOG_LEVEL": "INFO"}


def our_python() -> str:
    return sys.executable


def job_json(url: str, api_key: str, job_id: str) -> dict[str, Any]:
    """GET /v4/jobs/{id} with the API key (call it after reading the stats: it counts)."""
    with httpx.Client(base_url=url, timeout=30, headers={"X-Domino-Api-Key": api_key}) as c:
        resp = c.get(f"/v4/jobs/{job_id}")
        resp.raise_for_status()
        return dict(resp.json())


def completed_at(url: str, api_key: str, job_id: str) -> float:
    """The job's completion time (epoch seconds) from ``stageTime.completedTime`` (epoch ms)."""
    ms = job_json(url, api_key, job_id)["stageTime"]["completedTime"]
    if ms is None:
        raise RuntimeError(f"job {job_id} has no completedTime")
    return float(ms) / 1000.0


def raw_output(url: str, job_id: str, stream: str = "stdout") -> bytes:
    """The bytes the job's process wrote, exactly (sandbox out-of-band route)."""
    with httpx.Client(base_url=url, timeout=120) as c:
        resp = c.get(f"/__sandbox__/executions/{job_id}/output", params={"stream": stream})
        resp.raise_for_status()
        return resp.content


def request_count(stats: dict[str, Any], contains: str | None = None) -> int:
    """Requests in a stats snapshot, all of them or those whose route key contains a string."""
    return sum(
        sum(statuses.values())
        for route, statuses in stats["requests"].items()
        if contains is None or contains in route
    )


def route_counts(stats: dict[str, Any]) -> dict[str, int]:
    return {route: sum(statuses.values()) for route, statuses in stats["requests"].items()}
