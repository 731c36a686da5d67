"""Run the Prefect example flow against a given Domino (the demo uses the sandbox).

``run(host, api_key, project)`` returns one row per job: ``{orchestrator, task, job_id, state}``.
Without a configured ``PREFECT_API_URL`` it runs against a temporary local Prefect API (SQLite in a temp dir),
so it leaves nothing behind in ``~/.prefect``.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from domino_example_flow import domino_example_flow
from prefect.settings import PREFECT_API_URL

from domino_orchestrate.prefect import DominoCredentials


def run(host: str, api_key: str, project: str) -> list[dict[str, Any]]:
    """Run the example flow against ``host``; a failing job is expected and recorded."""
    credentials = DominoCredentials(host=host, api_key=api_key, project=project)
    with contextlib.ExitStack() as stack:
        if not PREFECT_API_URL.value():
            from prefect.testing.utilities import prefect_test_harness

            stack.enter_context(prefect_test_harness(server_startup_timeout=90))
        return domino_example_flow(credentials, poll_freq=0.5)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: run_demo.py HOST API_KEY OWNER/PROJECT")
    for row in run(*sys.argv[1:]):
        print(row)
