"""A Dagster run executed in process (``materialize()``, ``execute_in_process``, a ``dagster dev``
run on the in-process executor) ends its own lineage run without the daemon: its START goes out
with its first Domino job, and its COMPLETE / FAIL / ABORT with Dagster's own end event, which the
process that set ``DominoResource`` up records there. The run-status sensors stay for runs on
other executors, and never send a second end. Direct invocation keeps working without a ``with``.

Real parts: the sandbox runs each job as a process, openlineage-python's file transport writes
the events, every event is checked against the OpenLineage JSON Schema.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    SkipReason,
    asset,
    build_run_status_sensor_context,
    materialize,
)

from domino_orchestrate.dagster import (
    DominoResource,
    PipesDominoClient,
    domino_job_asset,
    domino_lineage_sensors,
)


@pytest.fixture
def lineage_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """OpenLineage on through its file transport only, with a private spool (the once-only
    markers live there)."""
    from domino_orchestrate.core.lineage import transports

    for key in list(os.environ):
        if key.startswith(("OPENLINEAGE", "DOMINO_ORCHESTRATE_", "MLFLOW_")):
            monkeypatch.delenv(key)
    path = tmp_path / "lineage.jsonl"
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "file")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", str(path))
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__APPEND", "true")
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_SPOOL", str(tmp_path / "spool"))
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_DELIVERY_WAIT", "0")
    transports._emitters.clear()
    yield path
    transports._emitters.clear()


def run_events(path: Path, run_id: str) -> list[dict[str, Any]]:
    """The events of Dagster run ``run_id``'s own lineage run (not its Domino jobs')."""
    from domino_orchestrate.core.lineage.ids import as_uuid

    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in events
            if e["job"]["namespace"] == "dagster" and e["run"]["runId"] == as_uuid(run_id)]


def fire_sensor(instance: DagsterInstance, run_id: str, suffix: str,
                event_type: DagsterEventType) -> Any:
    """What the daemon does when the run's status sensor ticks for this run."""
    [record] = instance.get_records_for_run(run_id, of_type=event_type).records
    sensor = next(s for s in domino_lineage_sensors() if s.name.endswith(suffix))
    return sensor(build_run_status_sensor_context(
        sensor_name=sensor.name, dagster_event=record.event_log_entry.dagster_event,
        dagster_instance=instance, dagster_run=instance.get_run_by_id(run_id)))


def test_materialize_completes_its_run_without_the_daemon(
    domino: DominoResource, instance: DagsterInstance, lineage_file: Path, run_event_check: Any,
) -> None:
    first = domino_job_asset("features", "echo features", pass_partition_key=False)
    second = domino_job_asset("model", "echo model", deps=[first], pass_partition_key=False)
    result = materialize([first, second], resources={"domino": domino}, instance=instance)
    assert result.success

    events = run_events(lineage_file, result.run_id)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert events[-1]["job"]["name"] == result.dagster_run.job_name
    assert "errorMessage" not in events[-1]["run"]["facets"]
    for event in events:
        run_event_check.validate(event)
    # The daemon's sensor, when one runs too, sends no second end.
    for _ in range(2):
        assert isinstance(fire_sensor(instance, result.run_id, "success",
                                      DagsterEventType.RUN_SUCCESS), SkipReason)
    assert [e["eventType"] for e in run_events(lineage_file, result.run_id)] == [
        "START", "COMPLETE"]


def test_a_failed_step_fails_the_run_without_the_daemon(
    domino: DominoResource, instance: DagsterInstance, lineage_file: Path, run_event_check: Any,
) -> None:
    ok = domino_job_asset("trained", "echo trained", pass_partition_key=False)
    broken = domino_job_asset("broken", "echo about to fail; exit 3", pass_partition_key=False)
    result = materialize([ok, broken], resources={"domino": domino}, instance=instance,
                         raise_on_error=False)
    assert not result.success

    events = run_events(lineage_file, result.run_id)
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    assert "broken" in events[-1]["run"]["facets"]["errorMessage"]["message"]
    for event in events:
        run_event_check.validate(event)
    for _ in range(2):
        assert isinstance(fire_sensor(instance, result.run_id, "failure",
                                      DagsterEventType.RUN_FAILURE), SkipReason)
    assert [e["eventType"] for e in run_events(lineage_file, result.run_id)] == ["START", "FAIL"]


def test_a_materialize_that_raises_still_fails_its_run(
    domino: DominoResource, instance: DagsterInstance, lineage_file: Path,
) -> None:
    """``materialize()`` as a script calls it (``raise_on_error=True``): Dagster records the run's
    failure before the step's exception propagates, and the run ends with it."""
    broken = domino_job_asset("broken", "exit 4", pass_partition_key=False)
    with pytest.raises(Exception, match="Failed"):
        materialize([broken], resources={"domino": domino}, instance=instance)
    [run] = instance.get_runs()
    assert [e["eventType"] for e in run_events(lineage_file, run.run_id)] == ["START", "FAIL"]


def test_a_run_without_domino_lineage_sends_no_end(
    domino: DominoResource, instance: DagsterInstance, lineage_file: Path,
) -> None:
    """Lineage off on the resource: no START, so no end either (nothing a consumer saw open)."""
    quiet = DominoResource(host=domino.host, project=domino.project, api_key=domino.api_key,
                           poll_freq=0.5, initial_interval=0.2, emit_lineage=False)
    result = materialize([domino_job_asset("quiet", "echo quiet", pass_partition_key=False)],
                         resources={"domino": quiet}, instance=instance)
    assert result.success
    assert not lineage_file.exists() or run_events(lineage_file, result.run_id) == []


@pytest.fixture
def recon_env(domino_sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sandbox for the step processes (they read DOMINO_* env); the jobs' definitions file."""
    for name in ("DOMINO_TOKEN_FILE", "DOMINO_API_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOMINO_API_HOST", domino_sandbox.url)
    monkeypatch.setenv("DOMINO_USER_API_KEY", domino_sandbox.api_key)
    return Path(__file__).with_name("run_end_defs.py")


def test_a_run_worker_on_the_in_process_executor_fails_its_run(
    recon_env: Path, lineage_file: Path, tmp_path: Path,
) -> None:
    """``execute_job`` as a run worker does (a ``dagster dev`` run with ``in_process_executor``),
    on a persistent instance: the run's end goes out with its last step."""
    from dagster import execute_job, instance_for_test
    from dagster._core.definitions.reconstruct import ReconstructableJob

    recon = ReconstructableJob.for_file(str(recon_env), "all_steps_in_process")
    with instance_for_test(temp_dir=str(tmp_path)) as instance, \
            execute_job(recon, instance) as result:
        assert not result.success
        run_id = result.run_id
    events = run_events(lineage_file, run_id)
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    assert "broken" in events[-1]["run"]["facets"]["errorMessage"]["message"]


def test_one_step_per_process_leaves_the_end_to_the_sensor(
    recon_env: Path, lineage_file: Path, tmp_path: Path,
) -> None:
    """On the multiprocess executor each step process sets its own resource up for its one step
    and never records the run's end (the first step's process must not COMPLETE a run whose
    second step fails). The run-status sensor ends it, once."""
    from dagster import execute_job, instance_for_test
    from dagster._core.definitions.reconstruct import ReconstructableJob

    recon = ReconstructableJob.for_file(str(recon_env), "one_step_per_process")
    with instance_for_test(temp_dir=str(tmp_path)) as instance:
        with execute_job(recon, instance) as result:
            assert not result.success
            run_id = result.run_id
        assert [e["eventType"] for e in run_events(lineage_file, run_id)] == ["START"]
        for _ in range(2):
            fire_sensor(instance, run_id, "failure", DagsterEventType.RUN_FAILURE)
    assert [e["eventType"] for e in run_events(lineage_file, run_id)] == ["START", "FAIL"]


def test_a_canceled_in_process_run_aborts(
    domino: DominoResource, instance: DagsterInstance, lineage_file: Path, run_event_check: Any,
) -> None:
    """A terminate of an in-process run: Dagster marks the run CANCELING and interrupts the step
    (as the run worker's SIGTERM handler does); the run's end is ABORT, as Dagster's CANCELED."""
    from dagster._core.errors import DagsterExecutionInterruptedError

    @asset
    def canceled(context, domino: DominoResource) -> None:  # type: ignore[no-untyped-def]
        domino.run_job(context, "echo before the terminate")
        context.instance.report_run_canceling(context.dagster_run)
        raise DagsterExecutionInterruptedError("terminated")

    result = materialize([canceled], resources={"domino": domino}, instance=instance,
                         raise_on_error=False)
    assert instance.get_run_by_id(result.run_id).status.value == "CANCELED"
    events = run_events(lineage_file, result.run_id)
    assert [e["eventType"] for e in events] == ["START", "ABORT"]
    for event in events:
        run_event_check.validate(event)


def test_an_asset_invoked_directly_still_gets_the_resource_without_a_with_block(
    domino: DominoResource,
) -> None:
    """Ending the run does not make ``DominoResource`` a resource with a teardown, which Dagster
    would allow in a directly invoked asset only inside ``with build_asset_context(...)``."""
    from dagster import build_asset_context

    @asset
    def project_of(context, domino: DominoResource) -> str:  # type: ignore[no-untyped-def]
        return domino.project

    assert project_of(build_asset_context(resources={"domino": domino})) == domino.project


def test_a_pipes_run_ends_too(
    domino: DominoResource, instance: DagsterInstance, lineage_file: Path,
) -> None:
    """``DominoResource`` nested in ``PipesDominoClient`` is set up for the run as well."""
    @asset
    def piped(context, domino_pipes: PipesDominoClient) -> Any:  # type: ignore[no-untyped-def]
        return domino_pipes.run(context=context, command="echo piped").get_materialize_result()

    result = materialize([piped], instance=instance,
                         resources={"domino_pipes": PipesDominoClient(domino=domino)})
    assert result.success
    assert [e["eventType"] for e in run_events(lineage_file, result.run_id)] == [
        "START", "COMPLETE"]
