"""Prefect flows that start a Domino job or run and wait for it, shown as their own node.

``run_domino_job`` / ``run_domino_run`` follow Prefect's ``async_dispatch``: called from a ``def``
flow they run as a subflow and return the summary; called from an ``async def`` flow they return
the coroutine of their async form (``arun_domino_job`` / ``arun_domino_run``) to be awaited. The
``run_domino_job_async`` / ``run_domino_run_async`` names are deprecated aliases of the async
forms. Each is a ``start_*`` task followed by ``wait_for_domino_job``; it returns the job's final
summary (``JobSnapshot.summary()``: job_id, status, url, hardware_tier, duration_s, …) and fails
with the status and the last lines of stdout when the job fails. Retrying the subflow
(``retries=``) or its parent reattaches to the job already started.

Their result (the summary, or the job's error) is persisted to Prefect's result storage
(``persist_result=True``), so that ``run_domino_job(..., return_state=True).result()`` works even
when the state returned is the Prefect API's copy: Prefect returns that copy when the response to
a run's final-state request was lost after the API committed it (e.g. a 60 s read timeout on a
loaded server; the client's retry is rejected as a duplicate), and that copy only refers to a
persisted result. ``.with_options(persist_result=False)`` opts out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect import Flow, flow

from domino_orchestrate.core import JobSpec, PollOptions, RunSpec

from .credentials import DominoCredentials
from .tasks import (
    AsyncDispatch,
    astart_domino_job,
    astart_domino_run,
    await_for_domino_job,
    deprecated_aliases,
    start_domino_job,
    start_domino_run,
    wait_for_domino_job,
)

__all__ = ["DispatchingFlow", "arun_domino_job", "arun_domino_run", "run_domino_job",
           "run_domino_run"]


class DispatchingFlow(AsyncDispatch, Flow[..., Any]):  # type: ignore[misc]
    """A sync Prefect flow with an async twin (``AsyncDispatch``): a subflow in ``def`` flows,
    the twin's coroutine in ``async def`` ones."""


@flow(name="run_domino_job", description="Start a Domino job and follow it to its end.",
      persist_result=True)
async def arun_domino_job(
    credentials: DominoCredentials | str,
    command: str | None = None,
    *,
    spec: JobSpec | dict[str, Any] | None = None,
    title: str | None = None,
    hardware_tier_name: str | None = None,
    hardware_tier_id: str | None = None,
    environment_id: str | None = None,
    commit_id: str | None = None,
    branch: str | None = None,
    main_repo_git_ref: dict[str, str] | None = None,
    on_demand_spark_cluster_properties: dict[str, Any] | None = None,
    compute_cluster_properties: dict[str, Any] | None = None,
    external_volume_mounts: list[str] | None = None,
    project: str | None = None,
    idempotency_key: str | None = None,
    inputs: list[Any] | None = None,
    outputs: list[Any] | None = None,
    poll_freq: float | None = None,
    max_poll_time: float | None = None,
    retry_count: int | None = None,
    poll_options: PollOptions | dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Async form of ``run_domino_job`` (which dispatches here from async code)."""
    handle = await astart_domino_job(
        credentials, command, spec=spec, title=title, hardware_tier_name=hardware_tier_name,
        hardware_tier_id=hardware_tier_id, environment_id=environment_id, commit_id=commit_id,
        branch=branch, main_repo_git_ref=main_repo_git_ref,
        on_demand_spark_cluster_properties=on_demand_spark_cluster_properties,
        compute_cluster_properties=compute_cluster_properties,
        external_volume_mounts=external_volume_mounts, project=project,
        idempotency_key=idempotency_key, inputs=inputs, outputs=outputs,
    )
    return await await_for_domino_job(
        credentials, handle, poll_freq=poll_freq, max_poll_time=max_poll_time,
        retry_count=retry_count, poll_options=poll_options,
    )


@DispatchingFlow.twin_of(arun_domino_job, name="run_domino_job",
                   description="Start a Domino job and follow it to its end.", persist_result=True)
def run_domino_job(
    credentials: DominoCredentials | str,
    command: str | None = None,
    *,
    spec: JobSpec | dict[str, Any] | None = None,
    title: str | None = None,
    hardware_tier_name: str | None = None,
    hardware_tier_id: str | None = None,
    environment_id: str | None = None,
    commit_id: str | None = None,
    branch: str | None = None,
    main_repo_git_ref: dict[str, str] | None = None,
    on_demand_spark_cluster_properties: dict[str, Any] | None = None,
    compute_cluster_properties: dict[str, Any] | None = None,
    external_volume_mounts: list[str] | None = None,
    project: str | None = None,
    idempotency_key: str | None = None,
    inputs: list[Any] | None = None,
    outputs: list[Any] | None = None,
    poll_freq: float | None = None,
    max_poll_time: float | None = None,
    retry_count: int | None = None,
    poll_options: PollOptions | dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``command`` as a Domino job: start (retry-safe), stream stdout, return the summary."""
    handle = start_domino_job(
        credentials, command, spec=spec, title=title, hardware_tier_name=hardware_tier_name,
        hardware_tier_id=hardware_tier_id, environment_id=environment_id, commit_id=commit_id,
        branch=branch, main_repo_git_ref=main_repo_git_ref,
        on_demand_spark_cluster_properties=on_demand_spark_cluster_properties,
        compute_cluster_properties=compute_cluster_properties,
        external_volume_mounts=external_volume_mounts, project=project,
        idempotency_key=idempotency_key, inputs=inputs, outputs=outputs,
    )
    return wait_for_domino_job(
        credentials, handle, poll_freq=poll_freq, max_poll_time=max_poll_time,
        retry_count=retry_count, poll_options=poll_options,
    )


@flow(name="run_domino_run", description="Start a Domino run (v1) and follow it to its end.",
      persist_result=True)
async def arun_domino_run(
    credentials: DominoCredentials | str,
    command: Sequence[str] | str | None = None,
    *,
    spec: RunSpec | dict[str, Any] | None = None,
    is_direct: bool | None = None,
    commit_id: str | None = None,
    title: str | None = None,
    tier: str | None = None,
    publish_api_endpoint: bool | None = None,
    project: str | None = None,
    idempotency_key: str | None = None,
    inputs: list[Any] | None = None,
    outputs: list[Any] | None = None,
    poll_freq: float | None = None,
    max_poll_time: float | None = None,
    retry_count: int | None = None,
    poll_options: PollOptions | dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Async form of ``run_domino_run`` (which dispatches here from async code)."""
    handle = await astart_domino_run(
        credentials, command, spec=spec, is_direct=is_direct, commit_id=commit_id, title=title,
        tier=tier, publish_api_endpoint=publish_api_endpoint, project=project,
        idempotency_key=idempotency_key, inputs=inputs, outputs=outputs,
    )
    return await await_for_domino_job(
        credentials, handle, poll_freq=poll_freq, max_poll_time=max_poll_time,
        retry_count=retry_count, poll_options=poll_options,
    )


@DispatchingFlow.twin_of(arun_domino_run, name="run_domino_run",
                   description="Start a Domino run (v1) and follow it to its end.",
                   persist_result=True)
def run_domino_run(
    credentials: DominoCredentials | str,
    command: Sequence[str] | str | None = None,
    *,
    spec: RunSpec | dict[str, Any] | None = None,
    is_direct: bool | None = None,
    commit_id: str | None = None,
    title: str | None = None,
    tier: str | None = None,
    publish_api_endpoint: bool | None = None,
    project: str | None = None,
    idempotency_key: str | None = None,
    inputs: list[Any] | None = None,
    outputs: list[Any] | None = None,
    poll_freq: float | None = None,
    max_poll_time: float | None = None,
    retry_count: int | None = None,
    poll_options: PollOptions | dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run a v1 Domino run (``command`` = file and arguments) and return its summary."""
    handle = start_domino_run(
        credentials, command, spec=spec, is_direct=is_direct, commit_id=commit_id, title=title,
        tier=tier, publish_api_endpoint=publish_api_endpoint, project=project,
        idempotency_key=idempotency_key, inputs=inputs, outputs=outputs,
    )
    return wait_for_domino_job(
        credentials, handle, poll_freq=poll_freq, max_poll_time=max_poll_time,
        retry_count=retry_count, poll_options=poll_options,
    )


#: Deprecated ``*_async`` subflows → their ``a*`` names.
DEPRECATED_ALIASES = {"run_domino_job_async": "arun_domino_job",
                      "run_domino_run_async": "arun_domino_run"}


__getattr__ = deprecated_aliases(__name__, DEPRECATED_ALIASES, globals())
