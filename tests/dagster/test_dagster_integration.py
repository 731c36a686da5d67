"""The Dagster integration against the sandbox over real HTTP: ``materialize`` /
``execute_in_process`` / ``execute_job`` with ``DominoResource``, ``domino_job_asset`` and
``domino_job_op`` — stdout streaming, metadata, failures, termination, retries, re-execution,
partitions, upstream values, lineage hand-off and secrets."""


import json
import logging
import time as real_time
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    DagsterExecutionInterruptedError,
    DagsterInstance,
    EnvVar,
    Failure,
    MaterializeResult,
    ReexecutionOptions,
    RetryPolicy,
    StaticPartitionsDefinition,
    UrlMetadataValue,
    asset,
    asset_check,
    execute_job,
    instance_for_test,
    job,
    materialize,
)
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._serdes import serialize_value
from pydantic import ValidationError

from domino_orchestrate.core import ConfigurationError, DominoClient, JobStatus, RunSpec
from domino_orchestrate.core import client as client_module
from domino_orchestrate.core.command import with_env_prefix
from domino_orchestrate.dagster import (
    DominoJobResult,
    DominoResource,
    domino_job_asset,
    domino_job_op,
)
from domino_orchestrate.sandbox.server import SandboxServer

PROJECT = "demo/quick-start"


def user_logs(instance: DagsterInstance, run_id: str) -> list[str]:
    """The messages steps sent to ``context.log`` (not framework events)."""
    return [e.user_message for e in instance.all_logs(run_id) if e.dagster_event is None]


def event_log_text(instance: DagsterInstance, run_id: str) -> str:
    """Everything Dagster stored for a run: events, metadata, messages and the run record."""
    parts = [serialize_value(entry) for entry in instance.all_logs(run_id)]
    parts.append(serialize_value(instance.get_run_by_id(run_id)))
    return "\n".join(parts)


def starts(srv: SandboxServer) -> int:
    return sum(srv.stats()["starts_by_title"].values())


def watcher(srv: SandboxServer) -> DominoClient:
    return DominoClient(srv.url, PROJECT, api_key=srv.api_key)


def flaky_wait(mocker: Any, failures: int = 1) -> dict[str, int]:
    """Make the first ``failures`` waits die right after the start, like a lost run worker."""
    real_wait = DominoClient.wait
    calls = {"n": 0}

    def wait(self: DominoClient, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise RuntimeError("run worker lost right after the Domino job started")
        return real_wait(self, *args, **kwargs)

    mocker.patch.object(DominoClient, "wait", wait)
    return calls


# --- success, metadata, secrets ------------------------------------------------------------------


def test_success_streams_stdout_and_attaches_metadata(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance
) -> None:
    trained = domino_job_asset("trained", "echo line-one; echo line-two >&2; echo line-three",
                               title="nightly training")
    result = materialize([trained], resources={"domino": domino}, instance=instance)

    assert result.success
    logs = user_logs(instance, result.run_id)
    # Each stdout line reaches context.log once, in order; stderr as a warning (the order across
    # the two streams is not defined).
    assert [m for m in logs if m in {"line-one", "line-three"}] == ["line-one", "line-three"]
    (err,) = [e for e in instance.all_logs(result.run_id) if e.user_message == "line-two"]
    assert err.level == logging.WARNING
    (mat,) = result.asset_materializations_for_node("trained")
    meta = mat.metadata
    job_id = meta["domino_job_id"].value
    assert isinstance(meta["domino_job_url"], UrlMetadataValue)
    assert meta["domino_job_url"].value == f"{srv.url}/jobs/{PROJECT}/{job_id}"
    assert meta["domino_status"].value == "Succeeded"
    assert isinstance(meta["domino_duration_s"].value, float)
    assert meta["domino_hardware_tier"].value
    assert meta["domino_reattached"].value is False
    assert starts(srv) == 1
    snap = watcher(srv).get_job(str(job_id))
    assert snap.status is JobStatus.SUCCEEDED
    assert snap.title is not None and snap.title.startswith("nightly training [do:")
    # The launch is recorded in Dagster's event log (pipes launch handle) with its URL.
    assert any(f"Launched external run {job_id}" in e.dagster_event.message
               for e in instance.all_logs(result.run_id) if e.dagster_event and e.dagster_event.message)


def test_no_secret_in_event_log_metadata_or_errors(
    srv: SandboxServer, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_DOMINO_KEY", srv.api_key)
    domino = DominoResource(host=srv.url, project=PROJECT, api_key=EnvVar("TEST_DOMINO_KEY"),
                            poll_freq=0.5, initial_interval=0.2)
    ok = domino_job_asset("ok", "echo fine")
    bad = domino_job_asset("bad", "echo broken; exit 2")
    result = materialize([ok, bad], resources={"domino": domino}, instance=instance,
                         raise_on_error=False)

    assert not result.success
    assert starts(srv) == 2  # the key from the env var authenticated both starts
    text = event_log_text(instance, result.run_id)
    assert "broken" in text and "fine" in text  # the check below looks at real content
    assert srv.api_key not in text
    assert srv.api_key not in repr(domino)
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert srv.api_key not in repr(failure)


def test_resource_validation_and_env_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sekrit-api-key-0123"
    # Credentials given together are python-domino's precedence, applied by the core (see
    # test_resource_credentials.py), not a validation error.
    both = DominoResource(host="https://d.example.com", project="a/b", api_key=secret,
                          auth_token="tok-0123456789")
    assert both.get_config().credentials.kind == "token"
    with pytest.raises(ValidationError, match="owner/name") as bad:
        DominoResource(project="no-slash", api_key=secret, auth_token="tok-0123456789")
    assert secret not in str(bad.value) and "tok-0123456789" not in str(bad.value)
    with pytest.raises(ValidationError, match="poll_freq"):
        DominoResource(project="a/b", api_key=secret, poll_freq=0)
    # A token file with an API key as fallback is allowed.
    DominoResource(project="a/b", token_file="/tmp/token", api_key=secret)

    for name in ("DOMINO_TOKEN_FILE", "DOMINO_API_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOMINO_API_HOST", "https://domino.example.com/some/path")
    monkeypatch.setenv("DOMINO_USER_API_KEY", secret)
    resource = DominoResource(project="a/b")
    config = resource.get_config()
    assert config.host == "https://domino.example.com"
    assert config.credentials.kind == "api_key" and config.credentials.api_key == secret
    client = resource.get_client()
    assert isinstance(client, DominoClient) and secret not in repr(client)
    assert resource.poll_options().poll_freq == 5.0


def test_ca_bundle_setting_reaches_the_client_as_verify(tmp_path: Path) -> None:
    bundle = tmp_path / "company-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    resource = DominoResource(host="https://domino.example.com", project="a/b", api_key="k",
                              ca_bundle=str(bundle))
    assert resource.get_config().verify == str(bundle)
    assert DominoResource(host="https://domino.example.com", project="a/b", api_key="k",
                          verify_tls=False).get_config().verify is False
    missing = DominoResource(host="https://domino.example.com", project="a/b", api_key="k",
                             ca_bundle=str(tmp_path / "nope.pem"))
    with pytest.raises(ConfigurationError, match="CA bundle"):
        missing.get_config()
    with pytest.raises(ValidationError, match="ca_bundle"):
        DominoResource(project="a/b", api_key="k", ca_bundle=str(bundle), verify_tls=False)


# --- failures --------------------------------------------------------------------------------------


def test_failed_job_raises_failure_with_status_tail_and_metadata(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance
) -> None:
    bad = domino_job_asset("bad", "echo step-1; echo oops-last-words; exit 3")
    with pytest.raises(Failure) as raised:
        materialize([bad], resources={"domino": domino}, instance=instance)

    failure = raised.value
    assert failure.description is not None
    assert "ended Failed" in failure.description
    assert "oops-last-words" in failure.description
    assert failure.metadata["domino_status"].value == "Failed"
    assert "oops-last-words" in str(failure.metadata["domino_stdout_tail"].value)
    assert isinstance(failure.metadata["domino_job_url"], UrlMetadataValue)
    assert starts(srv) == 1


def test_error_status_raises_failure(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance
) -> None:
    @asset
    def unlaunchable(context: AssetExecutionContext, domino: DominoResource) -> MaterializeResult:
        return domino.run_job(context, "no-such-command-xyz --now", lineage=False).materialize_result()

    with pytest.raises(Failure) as raised:
        materialize([unlaunchable], resources={"domino": domino}, instance=instance)
    assert "ended Error" in str(raised.value.description)
    assert raised.value.metadata["domino_status"].value == "Error"


def test_termination_stops_the_domino_job_and_reraises(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance, mocker: Any
) -> None:
    """Dagster raises DagsterExecutionInterruptedError in the step when a run is terminated; it
    is injected into the poller's nap once the job's process has printed its first line. The
    in-process run then records the step failure and ends failed (materialize does not raise)."""
    client = watcher(srv)
    state = interrupt_once_started(srv, mocker)
    long = domino_job_asset("long", "echo started; sleep 60; echo never-printed")
    began = real_time.monotonic()
    result = materialize([long], resources={"domino": domino}, instance=instance,
                         raise_on_error=False)

    assert state["raised"]
    assert not result.success
    # The interrupt was re-raised (not swallowed, not turned into a Failure): Dagster records it.
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error = failure.step_failure_data.error
    assert error is not None and error.cls_name == "DagsterExecutionInterruptedError"
    # 1.5 s at load 10 on 2 cores; a step that waited for its job instead would take 60 s.
    assert real_time.monotonic() - began < 40
    (snap,) = client.list_jobs()
    assert snap.status is JobStatus.STOPPED
    assert b"never-printed" not in srv.output(snap.job_id)[0]
    assert starts(srv) == 1
    # Issue 12: the stop and its confirmation are in the Dagster event log, not only on stderr.
    logs = user_logs(instance, result.run_id)
    assert any(m.startswith("Interrupted (DagsterExecutionInterruptedError): stopping Domino job "
                            f"{snap.job_id}") for m in logs), logs
    assert f"Domino job {snap.job_id} stopped (Stopped)" in logs


def interrupt_once_started(srv: SandboxServer, mocker: Any, before_raise: Any = None) -> dict[str, bool]:
    """Raise Dagster's interrupt (what a run termination raises in the step) in the poller's nap
    once the newest running job has printed its first line."""
    client = watcher(srv)
    state = {"raised": False}

    class InterruptingTime:
        def __getattr__(self, name: str) -> Any:
            return getattr(real_time, name)

        def sleep(self, seconds: float) -> None:
            if not state["raised"]:
                jobs = [j for j in client.list_jobs() if j.status is JobStatus.RUNNING]
                if jobs and b"started" in srv.output(jobs[0].job_id)[0]:
                    state["raised"] = True
                    if before_raise is not None:
                        before_raise()
                    raise DagsterExecutionInterruptedError()
            real_time.sleep(seconds)

    mocker.patch.object(client_module, "time", InterruptingTime())
    return state


def test_worker_shutdown_leave_running_leaves_the_job_but_a_termination_stops_it(
    srv: SandboxServer, instance: DagsterInstance, mocker: Any
) -> None:
    """on_worker_shutdown='leave_running': a run worker's SIGTERM (node drain) leaves the job for
    the run retry to reattach to; a terminate (run CANCELING) still stops it."""
    domino = DominoResource(host=srv.url, project=PROJECT, api_key=srv.api_key, poll_freq=0.5,
                            initial_interval=0.2, stop_timeout=15,
                            on_worker_shutdown="leave_running")
    drained = domino_job_asset("drained", "echo started; sleep 30")
    state = interrupt_once_started(srv, mocker)
    result = materialize([drained], resources={"domino": domino}, instance=instance,
                         raise_on_error=False)
    assert state["raised"] and not result.success
    (left,) = watcher(srv).list_jobs()
    assert left.status is JobStatus.RUNNING
    assert any("left running (on_worker_shutdown='leave_running')" in m
               for m in user_logs(instance, result.run_id))
    watcher(srv).stop_job(left.job_id)

    def cancel() -> None:
        (run,) = instance.get_runs(limit=1)
        instance.report_run_canceling(run)

    terminated = domino_job_asset("terminated", "echo started; sleep 30")
    mocker.stopall()
    state = interrupt_once_started(srv, mocker, before_raise=cancel)
    result = materialize([terminated], resources={"domino": domino}, instance=instance,
                         raise_on_error=False)
    assert state["raised"] and not result.success
    stopped = next(j for j in watcher(srv).list_jobs() if j.job_id != left.job_id)
    assert stopped.status is JobStatus.STOPPED
    assert f"Domino job {stopped.job_id} stopped (Stopped)" in user_logs(instance, result.run_id)
    with pytest.raises(ValidationError, match="on_worker_shutdown"):
        DominoResource(project="a/b", api_key="k", on_worker_shutdown="ignore")  # type: ignore[arg-type]


def test_resource_works_inside_an_asset_check(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance
) -> None:
    """Issue 12: AssetCheckExecutionContext has no dagster_run; the resource crashed there."""
    table = domino_job_asset("table", "echo table-built")

    @asset_check(asset=table)
    def rows_ok(context: AssetCheckExecutionContext, domino: DominoResource) -> AssetCheckResult:
        result = domino.run_job(context, "echo check-ran", lineage=False)
        return AssetCheckResult(passed=result.status == "Succeeded",
                                metadata={"domino_job_id": result.job_id})

    result = materialize([table, rows_ok], resources={"domino": domino}, instance=instance)
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed
    assert "check-ran" in user_logs(instance, result.run_id)
    assert starts(srv) == 2
    titles = list(srv.stats()["starts_by_title"])
    assert any(t.startswith("dagster __ephemeral_asset_job__.table_rows_ok") for t in titles), titles


def test_poll_timeout_stops_the_job_and_raises_failure(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance
) -> None:
    slow = domino_job_asset("slow", "echo slow-start; sleep 30", poll_overrides={"max_poll_time": 1.5})
    with pytest.raises(Failure) as raised:
        materialize([slow], resources={"domino": domino}, instance=instance)

    assert "did not finish within" in str(raised.value.description)
    assert "it was stopped" in str(raised.value.description)
    (snap,) = watcher(srv).list_jobs()
    assert snap.status is JobStatus.STOPPED
    assert raised.value.metadata["domino_status"].value == "Stopped"


# --- retries and re-execution ------------------------------------------------------------------------


def test_step_retry_reattaches_to_the_job_already_started(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance, mocker: Any
) -> None:
    calls = flaky_wait(mocker)
    retried = domino_job_asset("retried", "echo attempt; sleep 1; echo finished",
                               retry_policy=RetryPolicy(max_retries=1))
    result = materialize([retried], resources={"domino": domino}, instance=instance)

    assert result.success
    assert calls["n"] == 2
    assert starts(srv) == 1  # exactly one Domino job for two attempts
    (mat,) = result.asset_materializations_for_node("retried")
    assert mat.metadata["domino_reattached"].value is True
    logs = user_logs(instance, result.run_id)
    assert any(m.startswith("Reattached to Domino job") for m in logs)
    assert "finished" in logs


def test_step_retry_after_a_failed_job_starts_a_new_one(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    marker = tmp_path / "first-try-done"
    command = (f"if [ -f {marker} ]; then echo second-try; "
               f"else touch {marker}; echo first-try; exit 1; fi")
    flaky = domino_job_asset("flaky", command, retry_policy=RetryPolicy(max_retries=1))
    result = materialize([flaky], resources={"domino": domino}, instance=instance)

    assert result.success
    assert starts(srv) == 2
    logs = user_logs(instance, result.run_id)
    assert "first-try" in logs and "second-try" in logs


FROM_FAILURE_TAGS = {"dagster/is_resume_retry": "true"}  # what the UI/GraphQL/daemon set


@pytest.fixture
def reexec_env(srv: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> ReconstructableJob:
    for name in ("DOMINO_TOKEN_FILE", "DOMINO_API_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOMINO_API_HOST", srv.url)
    monkeypatch.setenv("DOMINO_USER_API_KEY", srv.api_key)
    return ReconstructableJob.for_file(str(Path(__file__).with_name("reexec_defs.py")), "reexec_job")


def test_reexecution_all_steps_of_a_failed_run_starts_fresh_from_failure_reattaches(
    srv: SandboxServer, reexec_env: ReconstructableJob, tmp_path: Path, mocker: Any
) -> None:
    """Issue 12: "re-execute all steps" of a failed run reused the job the failed run started
    (the deliberate rerun got the old result); from failure must still reattach to it."""
    flaky_wait(mocker)
    recon = reexec_env
    with instance_for_test(temp_dir=str(tmp_path)) as inst:
        with execute_job(recon, inst) as first:
            assert not first.success
        (started,) = watcher(srv).list_jobs()

        with execute_job(recon, inst,
                         reexecution_options=ReexecutionOptions(parent_run_id=first.run_id)) as rerun:
            assert rerun.success
            out = rerun.output_for_node("train")
            assert out["job_id"] != started.job_id and out["attached"] is False
        assert starts(srv) == 2

        options = ReexecutionOptions.from_failure(first.run_id, inst)
        with execute_job(recon, inst, reexecution_options=options, tags=FROM_FAILURE_TAGS) as second:
            assert second.success
            out = second.output_for_node("train")
            assert out["job_id"] == started.job_id and out["attached"] is True
            assert out["status"] == "Succeeded"
            assert "reexec-done" in user_logs(inst, second.run_id)
        assert starts(srv) == 2

        # Re-executing a succeeded run on purpose runs the job again.
        with execute_job(recon, inst,
                         reexecution_options=ReexecutionOptions(parent_run_id=second.run_id)) as third:
            assert third.success
            assert third.output_for_node("train")["attached"] is False
        assert starts(srv) == 3


def forget_job(srv: SandboxServer, job_id: str) -> None:
    """Make a job disappear from the sandbox, as one deleted or purged in Domino does (404)."""
    store = srv.ctx.store
    with store.lock:
        execution = store._executions.pop(job_id)
        store._by_project[execution.project.id].remove(execution)


def test_reexecution_from_failure_forgets_a_recorded_job_that_no_longer_exists(
    srv: SandboxServer, reexec_env: ReconstructableJob, tmp_path: Path, mocker: Any
) -> None:
    """Issue 12: the recorded job answered 404 and every from-failure retry failed with
    JobNotFoundError; it must be forgotten and a fresh job started."""
    flaky_wait(mocker)
    with instance_for_test(temp_dir=str(tmp_path)) as inst:
        with execute_job(reexec_env, inst) as first:
            assert not first.success
        (started,) = watcher(srv).list_jobs()
        watcher(srv).wait(started.job_id)
        forget_job(srv, started.job_id)

        options = ReexecutionOptions.from_failure(first.run_id, inst)
        with execute_job(reexec_env, inst, reexecution_options=options,
                         tags=FROM_FAILURE_TAGS) as second:
            assert second.success, [e.message for e in second.all_events if e.is_failure]
            out = second.output_for_node("train")
            assert out["job_id"] != started.job_id and out["attached"] is False
            assert any("no longer exists" in m for m in user_logs(inst, second.run_id))
        assert starts(srv) == 2


def test_explicit_key_reattaches_across_runs(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance
) -> None:
    @asset
    def keyed(context: AssetExecutionContext, domino: DominoResource) -> MaterializeResult:
        result = domino.run_job(context, "echo keyed-run", idempotency_key="fixed-key-1")
        return result.materialize_result(metadata={"extra": 1})

    first = materialize([keyed], resources={"domino": domino}, instance=instance)
    second = materialize([keyed], resources={"domino": domino}, instance=instance)
    (m1,) = first.asset_materializations_for_node("keyed")
    (m2,) = second.asset_materializations_for_node("keyed")
    assert m1.metadata["domino_reattached"].value is False
    assert m2.metadata["domino_reattached"].value is True
    assert m1.metadata["domino_job_id"] == m2.metadata["domino_job_id"]
    assert m2.metadata["extra"].value == 1
    assert starts(srv) == 1


# --- partitions, upstream, ops, runs -------------------------------------------------------------------


def test_partition_key_in_template_and_env(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance
) -> None:
    parts = StaticPartitionsDefinition(["2024-01-02", "a b"])
    daily = domino_job_asset("daily", "echo date={partition_key} env=$DAGSTER_PARTITION_KEY",
                             partitions_def=parts, export_step_env=True)
    r1 = materialize([daily], resources={"domino": domino}, instance=instance, partition_key="a b")
    r2 = materialize([daily], resources={"domino": domino}, instance=instance,
                     partition_key="2024-01-02")

    assert "date=a b env=a b" in user_logs(instance, r1.run_id)
    assert "date=2024-01-02 env=2024-01-02" in user_logs(instance, r2.run_id)
    assert starts(srv) == 2
    titles = list(srv.stats()["starts_by_title"])
    assert any("[a b]" in t for t in titles) and any("[2024-01-02]" in t for t in titles)


def test_command_reaches_domino_as_written_unless_step_env_is_asked_for(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance
) -> None:
    plain = domino_job_asset("plain", "echo as-written")
    with_env = domino_job_asset("with_env", 'echo "step=$DAGSTER_STEP_KEY"', export_step_env=True)
    result = materialize([plain, with_env], resources={"domino": domino}, instance=instance)

    assert result.success
    commands = {ex.title.split(" [do:")[0]: ex.command_display for ex in srv.ctx.store.all()
                if ex.title}
    assert commands["dagster: plain"] == "echo as-written"
    assert commands["dagster: with_env"].startswith("export DAGSTER_RUN_ID=")
    assert "step=with_env" in user_logs(instance, result.run_id)


def test_partition_placeholder_needs_a_partitioned_asset() -> None:
    with pytest.raises(ConfigurationError, match="pass_partition_key=False"):
        domino_job_asset("x", "echo {partition_key}", pass_partition_key=False,
                         partitions_def=StaticPartitionsDefinition(["a"]))
    with pytest.raises(ConfigurationError, match="no partitions_def"):
        domino_job_asset("y", "echo {partition_key}")
    assert with_env_prefix("run.sh", {"A": "x y", "B": "1"}) == "export A='x y' B=1; run.sh"
    assert with_env_prefix("run.sh", {}) == "run.sh"


def test_upstream_assets_passed_to_the_job(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance
) -> None:
    up = domino_job_asset("features", "echo building features")
    down = domino_job_asset("model", 'echo "UP=$DAGSTER_UPSTREAM"', deps=[up], pass_upstream=True)
    result = materialize([up, down], resources={"domino": domino}, instance=instance)

    assert result.success
    (up_mat,) = result.asset_materializations_for_node("features")
    line = next(m for m in user_logs(instance, result.run_id) if m.startswith("UP="))
    upstream = json.loads(line[len("UP="):])
    assert upstream["features"]["job_id"] == up_mat.metadata["domino_job_id"].value
    assert upstream["features"]["status"] == "Succeeded"
    assert upstream["features"]["url"].startswith(srv.url)


def test_ops_chain_with_output_metadata_and_upstream_values(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance
) -> None:
    extract = domino_job_op("extract", "echo extracted")
    load = domino_job_op("load", 'echo "got=$DAGSTER_UPSTREAM"', upstream=["after"],
                         pass_upstream=True)

    @job
    def etl() -> None:
        load(after=extract())

    result = etl.execute_in_process(resources={"domino": domino}, instance=instance)
    assert result.success
    first, second = result.output_for_node("extract"), result.output_for_node("load")
    assert first["status"] == second["status"] == "Succeeded"
    got = next(m for m in user_logs(instance, result.run_id) if m.startswith("got="))
    assert json.loads(got[len("got="):])["after"]["job_id"] == first["job_id"]
    outputs = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    urls = [e.step_output_data.metadata.get("domino_job_url") for e in outputs]
    assert all(isinstance(u, UrlMetadataValue) for u in urls) and len(urls) == 2
    assert starts(srv) == 2


def test_v1_run_with_env(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance
) -> None:
    seen: dict[str, DominoJobResult] = {}

    @asset
    def scored(context: AssetExecutionContext, domino: DominoResource) -> MaterializeResult:
        spec = RunSpec(command=("echo v1-$DAGSTER_FOO",), is_direct=True)
        seen["r"] = domino.run_run(context, spec, env={"DAGSTER_FOO": "bar"}, lineage=False)
        return seen["r"].materialize_result()

    result = materialize([scored], resources={"domino": domino}, instance=instance)
    assert result.success
    assert "v1-bar" in user_logs(instance, result.run_id)
    assert seen["r"].kind == "run" and seen["r"].status == "Succeeded"


# --- lineage hand-off --------------------------------------------------------------------------------


def test_lineage_events_and_parent_ids_reach_the_job(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance,
    monkeypatch: pytest.MonkeyPatch, lineage_file: Any,
) -> None:
    events_file = lineage_file
    # The parent ids are exported before the command only when the user opts in.
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_ENV", "true")
    lin = domino_job_asset("lin", 'echo "parent=$OPENLINEAGE_PARENT_JOB_NAME"', deps=["raw"])
    result = materialize([lin], resources={"domino": domino}, instance=instance,
                         selection=["lin"])

    assert result.success
    job_name = result.dagster_run.job_name
    everything = [json.loads(line) for line in events_file.read_text().splitlines()]
    # The Dagster run's own START (its parent facet must name a run that exists), first; its
    # COMPLETE with Dagster's own run success, in process (no daemon).
    runs = [e for e in everything if e["job"]["namespace"] == "dagster"]
    assert [(e["run"]["runId"], e["eventType"]) for e in runs] == [
        (result.run_id, "START"), (result.run_id, "COMPLETE")]
    assert everything[0] is runs[0]
    events = [e for e in everything if e["job"]["namespace"] != "dagster"]
    assert [e["eventType"] for e in events] == ["START", "RUNNING", "COMPLETE"] or \
        [e["eventType"] for e in events] == ["START", "COMPLETE"]
    # A materialize() run's job is __ASSET_JOB: the step's lineage job is named by the asset alone.
    assert job_name.startswith("__")
    assert {e["job"]["name"] for e in events} == {"lin"}
    assert len({e["run"]["runId"] for e in events}) == 1
    parent = events[0]["run"]["facets"]["parent"]
    assert (parent["job"]["namespace"], parent["job"]["name"], parent["run"]["runId"]) == (
        "dagster", job_name, result.run_id)
    assert [d["name"] for d in events[0]["inputs"]] == ["raw"]
    assert [d["name"] for d in events[0]["outputs"]] == ["lin"]
    assert "parent=lin" in user_logs(instance, result.run_id)
    assert srv.api_key not in events_file.read_text()
