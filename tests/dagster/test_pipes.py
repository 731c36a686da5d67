"""Dagster Pipes for Domino: a real dagster-pipes writer inside a sandbox job reports back to a
``PipesDominoClient`` under ``materialize()``; log volume; ``stream_logs=False``.

(No ``from __future__ import annotations``: Dagster reads the context annotation.)
"""


import shlex
import sys
import time
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    DagsterEventType,
    DagsterInstance,
    Failure,
    RetryPolicy,
    asset,
    materialize,
)

from domino_orchestrate.core.observe import LINES_PER_CALL
from domino_orchestrate.dagster import DominoResource, PipesDominoClient, domino_job_asset
from domino_orchestrate.sandbox.server import SandboxServer

JOB = """
import sys
from dagster_pipes import PipesCliArgsParamsLoader, open_dagster_pipes
print("job starting")
with open_dagster_pipes(params_loader=PipesCliArgsParamsLoader()) as pipes:
    pipes.log.info(f"rows counted for {pipes.asset_key}")
    pipes.report_asset_materialization(metadata={"rows": 42})
    if pipes.extras.get("check"):
        pipes.report_asset_check(check_name="has_rows", passed=True, metadata={"rows": 42})
    pipes.report_custom_message({"auc": 0.91, "extras": pipes.extras})
print("job done")
"""


def script(tmp_path: Path, text: str = JOB) -> str:
    path = tmp_path / "job.py"
    path.write_text(text)
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(path))}"


def starts(srv: SandboxServer) -> int:
    return sum(srv.stats()["starts_by_title"].values())


def user_logs(instance: DagsterInstance, run_id: str) -> list[str]:
    return [e.user_message for e in instance.all_logs(run_id) if e.dagster_event is None]


def test_a_pipes_job_reports_materialization_check_logs_and_custom_messages(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    command = script(tmp_path)
    seen: dict[str, Any] = {}

    @asset(check_specs=[AssetCheckSpec("has_rows", asset="orders")])
    def orders(context: AssetExecutionContext, domino_pipes: PipesDominoClient) -> Any:
        invocation = domino_pipes.run(context=context, command=command, extras={"check": True})
        seen["custom"] = invocation.get_custom_messages()
        yield from invocation.get_results()

    result = materialize([orders], instance=instance,
                         resources={"domino_pipes": PipesDominoClient(domino=domino)})

    assert result.success
    (mat,) = result.asset_materializations_for_node("orders")
    assert mat.metadata["rows"].value == 42
    job_id = mat.metadata["domino_job_id"].value  # the invocation's metadata: the Domino job
    assert mat.metadata["domino/message"].value.startswith(f"{job_id}#")
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and check.check_name == "has_rows" and check.metadata["rows"].value == 42
    assert list(seen["custom"]) == [{"auc": 0.91, "extras": {"check": True}}]
    logs = user_logs(instance, result.run_id)
    assert "rows counted for orders" in logs
    assert "job done" in logs
    # The command reached Domino as written, the Pipes context appended as arguments.
    (execution,) = srv.ctx.store.all()
    assert execution.command_display.startswith(command + " --dagster-pipes-context ")


def test_a_step_retry_reattaches_and_does_not_apply_recorded_results_again(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    command = script(tmp_path)

    @asset(retry_policy=RetryPolicy(max_retries=1))
    def orders(context: AssetExecutionContext, domino_pipes: PipesDominoClient) -> Any:
        invocation = domino_pipes.run(context=context, command=command)
        yield from invocation.get_results()
        if context.retry_number == 0:
            raise RuntimeError("the step fails after its results were recorded")

    result = materialize([orders], instance=instance,
                         resources={"domino_pipes": PipesDominoClient(domino=domino)})

    assert result.success
    assert starts(srv) == 1  # the retry reattached to the job the first attempt started
    mats = [e.asset_materialization for e in instance.all_logs(
        result.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)]
    reported = [m for m in mats if "rows" in m.metadata]
    assert len(reported) == 1, [m.metadata for m in mats]
    assert any("Reattached to Domino job" in m for m in user_logs(instance, result.run_id))


def test_a_20000_line_job_leaves_few_events_and_every_line_in_the_step_stdout(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance, tmp_path: Path,
    capfd: Any,
) -> None:
    noisy = domino_job_asset("noisy", script(tmp_path, "for i in range(20000): print(f'line {i}')"))
    started = time.monotonic()
    result = materialize([noisy], resources={"domino": domino}, instance=instance)
    took = time.monotonic() - started

    assert result.success
    events = instance.all_logs(result.run_id)
    assert len(events) < 100, len(events)
    out = capfd.readouterr().out
    assert all(f"line {i}\n" in out for i in (0, 1, 9999, 19999))
    assert out.count("\nline ") >= 19999
    batched = [m for m in user_logs(instance, result.run_id) if "lines of Domino stdout" in m]
    assert batched and batched[-1].endswith("line 19999")
    # 1.8 s at load 10 on 2 cores; the per-line behaviour this guards against took 477 s.
    assert took < 30, took


def test_small_fetches_still_reach_the_event_log_line_by_line(
    domino: DominoResource, instance: DagsterInstance
) -> None:
    lines = [f"small-{i}" for i in range(LINES_PER_CALL)]
    small = domino_job_asset("small", "; ".join(f"echo {line}" for line in lines))
    result = materialize([small], resources={"domino": domino}, instance=instance)
    assert [m for m in user_logs(instance, result.run_id) if m.startswith("small-")] == lines


def test_stream_logs_false_delivers_the_output_on_success_and_failure(
    srv: SandboxServer, instance: DagsterInstance
) -> None:
    quiet = DominoResource(host=srv.url, project="demo/quick-start", api_key=srv.api_key,
                           poll_freq=0.5, initial_interval=0.2, stream_logs=False)
    ok = domino_job_asset("ok", "echo quiet-one; echo quiet-two")
    bad = domino_job_asset("bad", "echo before-failing; exit 3")
    result = materialize([ok, bad], resources={"domino": quiet}, instance=instance,
                         raise_on_error=False)

    logs = user_logs(instance, result.run_id)
    assert "quiet-one" in logs and "quiet-two" in logs and "before-failing" in logs
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "before-failing" in str(failure.event_specific_data.error)  # type: ignore[union-attr]


def test_a_failed_pipes_job_fails_the_step_with_its_last_lines(
    domino: DominoResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    command = script(tmp_path, JOB + "\nraise SystemExit('no rows today')\n")

    @asset
    def orders(context: AssetExecutionContext, domino_pipes: PipesDominoClient) -> Any:
        return domino_pipes.run(context=context, command=command).get_materialize_result()

    result = materialize([orders], instance=instance, raise_on_error=False,
                         resources={"domino_pipes": PipesDominoClient(domino=domino)})
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    error = str(failure.event_specific_data.error)  # type: ignore[union-attr]
    assert "ended Failed" in error and "no rows today" in error
    assert Failure.__name__ in error or "Failure" in error
