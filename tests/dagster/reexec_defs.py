"""A job loaded by file path for the re-execution test (``execute_job`` needs a reconstructable
job). The resource reads host and API key from DOMINO_API_HOST / DOMINO_USER_API_KEY."""

from __future__ import annotations

from dagster import in_process_executor, job

from domino_orchestrate.dagster import DominoResource, domino_job_op

train = domino_job_op("train", "echo reexec-start; sleep 1; echo reexec-done")


@job(
    resource_defs={
        "domino": DominoResource(project="demo/quick-start", poll_freq=0.5, initial_interval=0.2)
    },
    executor_def=in_process_executor,
)
def reexec_job() -> None:
    train()
