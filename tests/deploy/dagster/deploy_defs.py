"""The code location the Dagster deployment tests load with ``dagster dev -f``: jobs whose ops run
Domino jobs on the test sandbox. Host and API key come from DOMINO_API_HOST / DOMINO_USER_API_KEY,
set by the fixture for the whole deployment (webserver, daemon, code server, run workers)."""


import os
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    Definitions,
    OpExecutionContext,
    define_asset_job,
    in_process_executor,
    job,
    op,
)
from dagster import asset as dagster_asset

from domino_orchestrate.dagster import (
    DominoResource,
    PipesDominoClient,
    domino_job_asset,
    domino_job_op,
)

PROJECT = "demo/quick-start"

#: Prints a line when it gets SIGTERM (the sandbox's stop), i.e. after the follower's last fetch.
LONG_COMMAND = (
    "trap 'echo got-term; sleep 0.3; echo cleanup-done; exit 143' TERM; "
    "echo started; sleep 120 & wait"
)


def domino(**settings: Any) -> DominoResource:
    return DominoResource(project=PROJECT, poll_freq=1.0, initial_interval=0.2, stop_timeout=20,
                          **settings)


long_step = domino_job_op("long_step", LONG_COMMAND)


@job
def long_multiprocess() -> None:
    long_step()


@job(executor_def=in_process_executor)
def long_in_process() -> None:
    long_step()


@job
def long_max_runtime() -> None:
    """The test tags its run with dagster/max_runtime once the Domino job runs."""
    long_step()


@job(resource_defs={"domino": domino(on_worker_shutdown="leave_running")},
     tags={"dagster/max_retries": "1"}, executor_def=in_process_executor)
def long_drained() -> None:
    """A node drain: the run worker gets SIGTERM; the job is left for the run retry."""
    domino_job_op("drained_step", "echo started; sleep 6; echo drained-job-done")()


@op(required_resource_keys={"domino"})
def deaf_step(context: OpExecutionContext) -> None:
    """Its interrupt never arrives, as when Python drops it inside a finalizer: the step ignores
    SIGINT (Dagster's one interrupt of a step) while it follows its job."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    context.resources.domino.run_job(context, LONG_COMMAND)


@job
def long_deaf() -> None:
    deaf_step()


@op(required_resource_keys={"domino"})
def build(context: OpExecutionContext) -> dict[str, Any]:
    """Runs a Domino job, then fails the first attempt of each run chain in its own
    post-processing: the failed run leaves behind a Domino job that succeeded."""
    result = context.resources.domino.run_job(context, "echo building; sleep 1; echo built")
    marker = Path(os.environ["DOMINO_DEPLOY_MARKERS"]) / (context.run.root_run_id or context.run_id)
    if not marker.exists():
        marker.touch()
        raise RuntimeError("post-processing failed on the first attempt")
    return result.to_dict()


@job(executor_def=in_process_executor)
def build_then_fail_once() -> None:
    build()


#: A Dagster Pipes process (dagster-pipes' own writer) run as a Domino job by PipesDominoClient.
PIPES_SCRIPT = """
from dagster_pipes import PipesCliArgsParamsLoader, open_dagster_pipes
with open_dagster_pipes(params_loader=PipesCliArgsParamsLoader()) as pipes:
    pipes.log.info("counted the orders")
    pipes.report_asset_materialization(metadata={"rows": 42})
    pipes.report_asset_check(check_name="has_rows", passed=True, metadata={"rows": 42})
"""


def python_command(name: str, source: str) -> str:
    """``python <script>`` for a script written next to the markers (the sandbox runs it)."""
    script = Path(os.environ["DOMINO_DEPLOY_MARKERS"]).parent / name
    script.write_text(source)
    return f"python {script}"


@dagster_asset(check_specs=[AssetCheckSpec("has_rows", asset="pipes_orders")])
def pipes_orders(context: AssetExecutionContext, domino_pipes: PipesDominoClient) -> Any:
    """Reports through Pipes; the first attempt of each run chain then fails in its own
    post-processing, after its results were recorded."""
    invocation = domino_pipes.run(context=context, command=python_command("pipes_job.py",
                                                                          PIPES_SCRIPT))
    yield from invocation.get_results()
    marker = Path(os.environ["DOMINO_DEPLOY_MARKERS"]) / f"pipes-{context.run.root_run_id or context.run_id}"
    if not marker.exists():
        marker.touch()
        raise RuntimeError("post-processing failed on the first attempt")


pipes_noisy = domino_job_asset(
    "pipes_noisy", python_command("noisy_job.py", "for i in range(20000): print(f'line {i}')"))

defs = Definitions(
    jobs=[long_multiprocess, long_in_process, long_max_runtime, long_drained, long_deaf,
          build_then_fail_once,
          define_asset_job("pipes_job", selection=[pipes_orders, pipes_noisy])],
    assets=[pipes_orders, pipes_noisy],
    resources={"domino": domino(), "domino_pipes": PipesDominoClient(domino=domino())},
)
