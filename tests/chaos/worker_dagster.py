"""Chaos worker: a one-op Dagster job (``chaos_kill_job``) run with ``execute_job`` in this process
(in-process executor), against the persistent instance in ``DAGSTER_HOME``.

``python worker_dagster.py first`` runs it. ``python worker_dagster.py reexecute`` takes the
latest run; if it is still ``STARTED`` (its worker was SIGKILLed), reports it failed — what
Dagster's run monitoring does when a run worker dies — and re-executes it *from failure*. The
Domino credentials come from ``DOMINO_API_HOST`` / ``DOMINO_USER_API_KEY``; ``CHAOS_COMMAND`` /
``CHAOS_TITLE`` name the job. Prints ``CHAOS-RESULT <json>``.
"""

from __future__ import annotations

import json
import os
import sys

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    ReexecutionOptions,
    execute_job,
    in_process_executor,
    job,
)
from dagster._core.definitions.reconstruct import ReconstructableJob

from domino_orchestrate.dagster import DominoResource, domino_job_op

victim = domino_job_op("victim", os.environ.get("CHAOS_COMMAND", "echo unset"),
                       title=os.environ.get("CHAOS_TITLE", "chaos-dagster-kill"))


@job(
    resource_defs={"domino": DominoResource(project="chaos/p", poll_freq=0.5,
                                            initial_interval=0.2, max_retries=8)},
    executor_def=in_process_executor,
)
def chaos_kill_job() -> None:
    victim()


def main() -> None:
    recon = ReconstructableJob.for_file(os.path.abspath(__file__), "chaos_kill_job")
    with DagsterInstance.get() as instance:
        print(f"CHAOS-PID {os.getpid()}", flush=True)
        if sys.argv[1] == "first":
            with execute_job(recon, instance) as result:
                out = {"run_id": result.run_id, "success": result.success}
        else:
            (parent,) = instance.get_runs(limit=1)
            status_before = parent.status.value
            if parent.status in (DagsterRunStatus.STARTED, DagsterRunStatus.STARTING):
                instance.report_run_failed(parent)
            options = ReexecutionOptions.from_failure(parent.run_id, instance)
            # The tag the UI, GraphQL and the retry daemon put on a from-failure re-execution
            # (execute_job leaves it off); it makes the run continue its parent's Domino job.
            with execute_job(recon, instance, reexecution_options=options,
                             tags={"dagster/is_resume_retry": "true"}) as result:
                out = {"run_id": result.run_id, "parent_run_id": parent.run_id,
                       "parent_status_before": status_before, "success": result.success,
                       "output": result.output_for_node("victim") if result.success else None}
    print("CHAOS-RESULT " + json.dumps(out, default=str), flush=True)


if __name__ == "__main__":
    main()
