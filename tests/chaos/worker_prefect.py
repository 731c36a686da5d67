"""Chaos worker: run the flow ``chaos_kill_flow`` (start a Domino job, wait for it) as one flow run.

``python worker_prefect.py <id-file>``: the first invocation creates the flow run and writes its id
to ``<id-file>``; a later invocation re-runs *that same flow run id*: it first does what Prefect
does to a run whose worker died (the run is still ``Running``: mark it ``Crashed``) and what a retry
of it does (``AwaitingRetry``), then executes it with ``prefect.flow_engine.run_flow`` — the way a
worker executes a flow run it picked up. The Domino credentials come from ``DOMINO_API_HOST`` /
``DOMINO_USER_API_KEY``; ``CHAOS_COMMAND`` / ``CHAOS_TITLE`` name the job. Prints
``CHAOS-RESULT <json>``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from prefect import flow

from domino_orchestrate.prefect import DominoCredentials, start_domino_job, wait_for_domino_job


@flow(name="chaos_kill_flow")
def chaos_kill_flow(command: str, title: str) -> dict[str, Any]:
    creds = DominoCredentials(project="chaos/p", max_retries=8)
    handle = start_domino_job(creds, command, title=title)
    summary = wait_for_domino_job(creds, handle,
                                  poll_options={"poll_freq": 0.5, "initial_interval": 0.2})
    return {**summary, "attached": handle.attached, "handle_job_id": handle.job_id}


def main() -> None:
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow
    from prefect.states import AwaitingRetry, Crashed

    id_file = Path(sys.argv[1])
    params = {"command": os.environ["CHAOS_COMMAND"], "title": os.environ["CHAOS_TITLE"]}
    with get_client(sync_client=True) as client:
        if id_file.exists():
            run_id = id_file.read_text().strip()
            before = client.read_flow_run(run_id).state
            client.set_flow_run_state(run_id, Crashed(message="worker process killed"), force=True)
            client.set_flow_run_state(run_id, AwaitingRetry(), force=True)
        else:
            before = None
            run_id = str(client.create_flow_run(chaos_kill_flow, parameters=params).id)
            id_file.write_text(run_id)
        flow_run = client.read_flow_run(run_id)
    print(f"CHAOS-PID {os.getpid()}", flush=True)
    result = run_flow(chaos_kill_flow, flow_run=flow_run, parameters=params)
    with get_client(sync_client=True) as client:
        after = client.read_flow_run(run_id)
    print("CHAOS-RESULT " + json.dumps({
        "flow_run_id": run_id, "state_before": before.type.value if before else None,
        "state": after.state.type.value if after.state else None,
        "run_count": after.run_count, **(result or {}),
    }, default=str), flush=True)


if __name__ == "__main__":
    main()
