"""Jobs loaded by file path for the run-end lineage tests (``execute_job`` needs a reconstructable
job): the same two Domino steps, the second failing, on the multiprocess executor (one step per
process) and on the in-process executor (a ``dagster dev`` run with ``in_process_executor``).
The resource reads host and API key from DOMINO_API_HOST / DOMINO_USER_API_KEY."""

from __future__ import annotations

from dagster import in_process_executor, job, multiprocess_executor

from domino_orchestrate.dagster import DominoResource, domino_job_op

prepare = domino_job_op("prepare", "echo prepared", pass_partition_key=False)
broken = domino_job_op("broken", "echo about to fail; exit 5", upstream=["prepare"],
                       pass_partition_key=False)
RESOURCES = {"domino": DominoResource(project="demo/quick-start", poll_freq=0.5,
                                      initial_interval=0.2)}


# The step processes fork from one server that imported Dagster and the integration once.
FORKSERVER = {"start_method": {"forkserver": {
    "preload_modules": ["dagster", "domino_orchestrate.dagster"]}}}


@job(resource_defs=RESOURCES, executor_def=multiprocess_executor.configured(FORKSERVER))
def one_step_per_process() -> None:
    broken(prepare())


@job(resource_defs=RESOURCES, executor_def=in_process_executor)
def all_steps_in_process() -> None:
    broken(prepare())
