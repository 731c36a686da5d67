"""Example Prefect flow: two Domino jobs as subflows, one that succeeds and one that fails.

Run it against a real Domino (or the sandbox) with::

    export DOMINO_API_HOST=https://domino.example.com DOMINO_USER_API_KEY=...
    python examples/prefect/domino_example_flow.py owner/project

Each job streams its stdout into the flow's logs, leaves a link artifact to its Domino page and a
status table artifact, and is stopped if the flow run is cancelled or times out.
"""

from __future__ import annotations

import sys
from typing import Any

from prefect import flow, get_run_logger

from domino_orchestrate.core import PollOptions
from domino_orchestrate.prefect import DominoCredentials, run_domino_job

#: The demo's two jobs: (task name, command). The second one fails on purpose.
JOBS: list[tuple[str, str]] = [
    ("train", "echo 'training model'; sleep 1; echo 'accuracy=0.93'"),
    ("validate", "echo 'validating model'; echo 'schema mismatch in column age'; exit 1"),
]


@flow(name="domino-example")
def domino_example_flow(credentials: DominoCredentials, poll_freq: float = 1.0) -> list[dict[str, Any]]:
    """Run each job of ``JOBS``; return one row per job with its Domino job id and final status.

    A failing job does not stop the others: its subflow fails (visible in the UI with the job's
    status and last lines), and its row records the failure.
    """
    logger = get_run_logger()
    options = PollOptions(poll_freq=poll_freq, initial_interval=min(0.5, poll_freq))
    rows: list[dict[str, Any]] = []
    for name, command in JOBS:
        state = run_domino_job(credentials, command, title=f"prefect-example-{name}",
                               poll_options=options, return_state=True)
        outcome = state.result(raise_on_failure=False)
        if isinstance(outcome, BaseException):
            snapshot = getattr(outcome, "snapshot", None)
            job_id = getattr(outcome, "job_id", None)
            status = snapshot.status.value if snapshot is not None else type(outcome).__name__
            logger.warning("Job %s failed as expected: %s", name, str(outcome).splitlines()[0])
        else:
            job_id, status = outcome["job_id"], outcome["status"]
        rows.append({"orchestrator": "prefect", "task": name, "job_id": job_id, "state": status})
    return rows


if __name__ == "__main__":
    project = sys.argv[1] if len(sys.argv) > 1 else None
    for row in domino_example_flow(DominoCredentials(project=project)):
        print(row)
