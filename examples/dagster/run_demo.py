"""Materialize the example Dagster assets against a Domino (or the sandbox) and summarize them.

``run(host, api_key, project)`` returns one row per asset for the demo summary table:
``{"orchestrator": "dagster", "task": <asset>, "job_id": <Domino job id or None>, "state": <final
Domino status, e.g. "Succeeded" / "Failed">}``. The failing asset is expected to fail.

Run as a script to start an in-process sandbox and print the table.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from dagster import DagsterInstance, materialize

from domino_orchestrate.dagster import DominoResource


def _definitions() -> ModuleType:
    path = Path(__file__).with_name("definitions.py")
    spec = importlib.util.spec_from_file_location("domino_dagster_example_definitions", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(host: str, api_key: str, project: str) -> list[dict[str, Any]]:
    """Materialize every example asset in one run; one summary row per asset."""
    assets = _definitions().ASSETS
    domino = DominoResource(host=host, api_key=api_key, project=project,
                            poll_freq=1.0, initial_interval=0.2)
    rows: dict[str, dict[str, Any]] = {
        a.key.to_user_string(): {"orchestrator": "dagster", "task": a.key.to_user_string(),
                                 "job_id": None, "state": "NotRun"}
        for a in assets
    }
    with DagsterInstance.ephemeral() as instance:
        result = materialize(assets, resources={"domino": domino}, instance=instance,
                             raise_on_error=False)
        for event in result.all_events:
            if event.event_type_value == "ASSET_MATERIALIZATION":
                mat = event.step_materialization_data.materialization
                meta = mat.metadata
                rows[mat.asset_key.to_user_string()].update(
                    job_id=meta["domino_job_id"].value, state=meta["domino_status"].value)
            elif event.event_type_value == "STEP_FAILURE":
                task = event.step_key or ""
                data = event.step_failure_data.user_failure_data
                meta = data.metadata if data is not None else {}
                row = rows.setdefault(task, {"orchestrator": "dagster", "task": task})
                row["job_id"] = meta["domino_job_id"].value if "domino_job_id" in meta else None
                row["state"] = meta["domino_status"].value if "domino_status" in meta else "Failed"
    return list(rows.values())


def main() -> int:
    from domino_orchestrate.sandbox.server import SandboxServer

    with SandboxServer() as srv:
        rows = run(srv.url, srv.api_key, "demo/quick-start")
    for row in rows:
        print(f"{row['orchestrator']:<10} {row['task']:<15} {row['job_id'] or '-':<26} {row['state']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
