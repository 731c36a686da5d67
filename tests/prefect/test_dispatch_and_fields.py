"""Prefect tasks follow ``async_dispatch`` (sync callers get the result, async callers the
coroutine), take every ``job_start`` field flat (tasks, subflow, ``DominoJob`` block), and the
credentials block's ``auth_token`` goes out as python-domino's bearer header."""

from __future__ import annotations

import inspect
import uuid
import warnings
from typing import Any

import pytest
from prefect import flow
from pydantic import SecretStr

from domino_orchestrate.prefect import (
    DominoCredentials,
    DominoJob,
    astart_domino_job,
    run_domino_job,
    start_domino_job,
    stop_domino_job,
    wait_for_domino_job,
)
from domino_orchestrate.prefect.tasks import DispatchingTask

pytestmark = pytest.mark.timeout(180)

ENV_ID = "5f1a2b3c4d5e6f7081920a0c"
SPARK = {"computeEnvironmentId": ENV_ID, "executorCount": 3, "executorHardwareTierId": "small-k8s",
         "masterHardwareTierId": "medium-k8s", "executorStorageMB": 100}
CLUSTER = {"clusterType": "Spark", "computeEnvironmentId": ENV_ID, "workerCount": 2,
           "masterHardwareTierId": "medium-k8s", "workerHardwareTierId": "small-k8s",
           "maxWorkerCount": 4}


def _title(tag: str) -> str:
    return f"fields-{tag}-{uuid.uuid4().hex[:6]}"


def _start_request(sandbox: Any, title: str) -> dict[str, Any]:
    [ex] = [ex for ex in sandbox.ctx.store.all() if ex.title and ex.title.startswith(title)]
    return dict(sandbox.execution_info(ex.id))


def _fields(sandbox: Any) -> dict[str, Any]:
    commit = sandbox.ctx.store.find_project("demo", "quick-start").commits[0]
    return {"hardware_tier_name": "Large", "environment_id": ENV_ID,
            "main_repo_git_ref": {"type": "commitId", "value": commit}, "commit_id": commit,
            "on_demand_spark_cluster_properties": SPARK, "compute_cluster_properties": CLUSTER,
            "external_volume_mounts": ["vol-a", "vol-b"]}


def _assert_body(body: dict[str, Any], fields: dict[str, Any], command: str) -> None:
    assert body["commandToRun"] == command
    assert body["overrideHardwareTierId"] == "large-k8s" and body["environmentId"] == ENV_ID
    assert body["commitId"] == fields["commit_id"]
    assert body["mainRepoGitRef"] == fields["main_repo_git_ref"]
    assert body["onDemandSparkClusterProperties"] == SPARK
    assert body["computeClusterProperties"] == {
        **CLUSTER, "masterHardwareTierId": {"value": "medium-k8s"},
        "workerHardwareTierId": {"value": "small-k8s"}}
    assert body["externalVolumeMounts"] == ["vol-a", "vol-b"]


def test_every_job_start_field_is_a_flat_task_subflow_and_block_argument(
        creds: DominoCredentials, h: Any, sandbox: Any) -> None:
    fields = _fields(sandbox)
    task_title, flow_title, block_title = _title("task"), _title("flow"), _title("block")

    @flow
    def pipeline() -> list[str]:
        handle = start_domino_job(creds, "echo task-fields", title=task_title, **fields)
        first = wait_for_domino_job(creds, handle, poll_options=h.fast())
        second = run_domino_job(creds, "echo flow-fields", title=flow_title,
                                poll_options=h.fast(), **fields)
        return [first["status"], second["status"]]

    assert pipeline() == ["Succeeded", "Succeeded"]
    _assert_body(_start_request(sandbox, task_title)["startRequest"], fields, "echo task-fields")
    _assert_body(_start_request(sandbox, flow_title)["startRequest"], fields, "echo flow-fields")

    block = DominoJob(credentials=creds, command="echo block-fields", title=block_title,
                      poll_freq=0.5, create_artifacts=False, **fields)
    run = block.trigger()
    run.wait_for_completion()
    assert run.fetch_result()["status"] == "Succeeded"
    _assert_body(_start_request(sandbox, block_title)["startRequest"], fields, "echo block-fields")


def test_auth_token_of_the_credentials_block_is_a_bearer_token(h: Any, sandbox: Any,
                                                                prefect_api: str) -> None:
    token = f"prefect-token-{uuid.uuid4().hex[:8]}"
    sandbox.add_token(token)
    # python-domino's precedence: the token wins over a (here wrong) API key
    creds = DominoCredentials(host=sandbox.url, api_key=SecretStr("not-the-key-123"),
                              auth_token=SecretStr(token), project="demo/quick-start")
    title = _title("auth")

    @flow
    def pipeline() -> str:
        handle = start_domino_job(creds, "echo token", title=title)
        return str(wait_for_domino_job(creds, handle, poll_options=h.fast())["status"])

    assert pipeline() == "Succeeded"
    assert _start_request(sandbox, title)["startAuth"] == "Authorization: Bearer"


def test_sync_callers_get_results_and_async_callers_coroutines(creds: DominoCredentials, h: Any,
                                                               sandbox: Any) -> None:
    import asyncio

    title = _title("dispatch")
    seen: dict[str, Any] = {}

    @flow
    async def async_pipeline() -> str:
        started = start_domino_job(creds, "sleep 30", title=title + "-a")
        seen["async_start"] = inspect.isawaitable(started)
        handle = await started
        stopped = await stop_domino_job(creds, handle, timeout=20)
        ok = await start_domino_job(creds, "echo async-ok", title=title + "-b")
        final = await wait_for_domino_job(creds, ok, poll_options=h.fast())
        sub = run_domino_job(creds, "echo async-sub", title=title + "-d", poll_options=h.fast())
        seen["async_subflow"] = inspect.isawaitable(sub)
        subflow = await sub
        return f"{stopped['status']}/{final['status']}/{subflow['status']}"

    @flow
    def sync_pipeline() -> str:
        handle = start_domino_job(creds, "echo sync-ok", title=title + "-c")
        seen["sync_start"] = type(handle).__name__
        waited = wait_for_domino_job(creds, handle, poll_options=h.fast())
        subflow = run_domino_job(creds, "echo sync-sub", title=title + "-e", poll_options=h.fast())
        return f"{waited['status']}/{subflow['status']}"

    assert asyncio.run(async_pipeline()) == "Stopped/Succeeded/Succeeded"
    assert sync_pipeline() == "Succeeded/Succeeded"
    assert seen == {"async_start": True, "async_subflow": True, "sync_start": "JobHandle"}
    assert h.starts(sandbox, title) == 5


def test_with_options_keeps_dispatch_and_old_names_warn() -> None:
    tuned = start_domino_job.with_options(retries=2, timeout_seconds=30)
    assert isinstance(tuned, DispatchingTask) and tuned.retries == 2
    assert tuned.aio.retries == 2 and tuned.aio.timeout_seconds == 30
    assert tuned.aio.fn is astart_domino_job.fn
    import domino_orchestrate.prefect as pkg

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = pkg.start_domino_job_async
        old_flow = pkg.run_domino_job_async
    assert old is astart_domino_job and old_flow is pkg.arun_domino_job
    assert isinstance(pkg.run_domino_job.with_options(retries=1).aio, type(pkg.arun_domino_job))
    messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert any("start_domino_job_async is deprecated" in m for m in messages)
    assert any("run_domino_job_async is deprecated" in m for m in messages)


def test_prefect_collections_entry_point_loads_the_blocks() -> None:
    """``[project.entry-points."prefect.collections"]``: Prefect's server and workers import
    every collection it names (``prefect.plugins.load_prefect_collections``), which registers
    our blocks."""
    from importlib.metadata import EntryPoint
    from pathlib import Path

    from prefect.blocks.core import Block

    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert ('[project.entry-points."prefect.collections"]\n'
            'domino_orchestrate = "domino_orchestrate.prefect"\n') in pyproject
    module = EntryPoint("domino_orchestrate", "domino_orchestrate.prefect",
                        "prefect.collections").load()
    assert module.DominoCredentials.get_block_type_slug() == "domino-credentials"
    assert issubclass(module.DominoJob, Block)
