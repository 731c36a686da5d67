"""``DominoJob`` block and ``DominoJobRun``: Prefect's JobBlock/JobRun pattern for Domino jobs.

``JobBlock.trigger``, ``JobRun.wait_for_completion`` and ``JobRun.fetch_result`` are async in
Prefect's abstract classes; here each also works from sync code, as Prefect's own blocks do
(``async_dispatch``): awaited inside async flows and tasks, called plainly in sync ones. The
explicit forms are ``atrigger``/``trigger_sync``, ``await_completion``/``wait_sync`` and
``afetch_result``/``fetch_result_sync``.

    job = DominoJob(credentials=DominoCredentials.load("domino"), command="python train.py")
    run = job.trigger()            # or: run = await job.trigger()   in async code
    run.wait_for_completion()      # streams stdout to the run logger; raises if the job failed
    summary = run.fetch_result()   # {"job_id", "status", "url", "duration_s", ...}
"""

from __future__ import annotations

from typing import Any

from prefect.blocks.abstract import JobBlock, JobRun
from pydantic import Field

from domino_orchestrate.core import JobHandle, JobSnapshot, JobSpec, PollOptions
from domino_orchestrate.core.command import with_env_prefix

from . import _common
from .credentials import DominoCredentials
from .tasks import async_dispatch

__all__ = ["DominoJob", "DominoJobRun"]

Summary = dict[str, Any]


class DominoJobRun(JobRun[Summary]):
    """A triggered Domino job: wait for it, fetch its final summary, or stop it."""

    def __init__(self, job: DominoJob, handle: JobHandle, observers: list[Any]) -> None:
        self._job = job
        self.handle = handle
        self._observers = observers
        self.final: JobSnapshot | None = None

    @property
    def job_id(self) -> str:
        return self.handle.job_id

    @property
    def url(self) -> str | None:
        return self.handle.url

    def __repr__(self) -> str:
        return f"DominoJobRun(job_id={self.handle.job_id!r}, attached={self.handle.attached})"

    def _wait_observers(self, config: Any) -> list[Any]:
        return [*self._observers, _common.RunLoggerLines(self.logger, config)]

    # wait_for_completion
    async def await_completion(self) -> None:
        """Follow the job to its end, streaming stdout; raise ``JobFailedError`` if it failed."""
        job = self._job
        async with job.credentials.get_async_client(self.handle.project) as client:
            self.final = await _common.wait_async(
                client, self.handle, job.poll_options(), self._wait_observers(client.config),
                artifacts=job.create_artifacts,
            )

    def wait_sync(self) -> None:
        """Follow the job to its end from synchronous code (see ``wait_for_completion``)."""
        job = self._job
        with job.credentials.get_client(self.handle.project) as client:
            self.final = _common.wait_sync(
                client, self.handle, job.poll_options(), self._wait_observers(client.config),
                artifacts=job.create_artifacts,
            )

    @async_dispatch(await_completion)
    def wait_for_completion(self) -> None:  # type: ignore[override]
        """Follow the job to its end, streaming stdout; raise ``JobFailedError`` if it failed.

        ``await`` it in async code; a cancelled or timed-out flow run stops the job.
        """
        self.wait_sync()

    # fetch_result
    async def afetch_result(self) -> Summary:
        """The job's summary: the final one after ``wait_for_completion``, else the current one."""
        if self.final is not None:
            return self.final.summary()
        async with self._job.credentials.get_async_client(self.handle.project) as client:
            return (await client.get_job(self.handle)).summary()

    def fetch_result_sync(self) -> Summary:
        """The job's summary from synchronous code (see ``fetch_result``)."""
        if self.final is not None:
            return self.final.summary()
        with self._job.credentials.get_client(self.handle.project) as client:
            return client.get_job(self.handle).summary()

    @async_dispatch(afetch_result)
    def fetch_result(self) -> Summary:  # type: ignore[override]
        """The job's summary: the final one after ``wait_for_completion``, else the current one."""
        return self.fetch_result_sync()

    # stop
    async def astop(self) -> Summary | None:
        """Stop the job and confirm it reached a terminal state (awaitable form of ``stop``)."""
        async with self._job.credentials.get_async_client(self.handle.project) as client:
            final = await client.stop_job(self.handle, timeout=self._job.stop_timeout)
        return final.summary() if final else None

    def stop_sync(self) -> Summary | None:
        """Stop the job from synchronous code and confirm it reached a terminal state."""
        with self._job.credentials.get_client(self.handle.project) as client:
            final = client.stop_job(self.handle, timeout=self._job.stop_timeout)
        return final.summary() if final else None

    @async_dispatch(astop)
    def stop(self) -> Summary | None:
        """Stop the job and confirm it reached a terminal state."""
        return self.stop_sync()


class DominoJob(JobBlock[Summary]):
    """A Domino job to run: what (command, tier, environment, git ref) and how to follow it."""

    _block_type_name = "Domino Job"
    _block_type_slug = "domino-job"
    _logo_url = "https://www.dominodatalab.com/favicon.ico"  # type: ignore[assignment]
    _documentation_url = "https://docs.dominodatalab.com/en/latest/api_guide/"  # type: ignore[assignment]
    _description = "A Domino Data Lab job: trigger it, stream its stdout, wait for its end."

    credentials: DominoCredentials = Field(description="Where Domino is and how to authenticate.")
    command: str = Field(description="Shell command the job runs, e.g. 'python train.py --fast'.")
    title: str | None = Field(default=None, description="Job title shown in Domino.")
    project: str | None = Field(default=None, description="'owner/name'; default: the credentials'.")
    hardware_tier_name: str | None = Field(default=None, description="Hardware tier by name.")
    hardware_tier_id: str | None = Field(default=None, description="Hardware tier by id.")
    environment_id: str | None = Field(default=None, description="Compute environment id.")
    commit_id: str | None = Field(default=None, description="Git commit of the project to run.")
    branch: str | None = Field(default=None, description="Git branch of the project to run.")
    main_repo_git_ref: dict[str, str] | None = Field(
        default=None,
        description="Git ref of the main repository: {'type': 'branches'|'tags'|'commitId', "
        "'value': ...}.")
    on_demand_spark_cluster_properties: dict[str, Any] | None = Field(
        default=None, description="On-demand Spark cluster (deprecated by Domino in favour of "
        "compute_cluster_properties): computeEnvironmentId, executorCount, …")
    compute_cluster_properties: dict[str, Any] | None = Field(
        default=None, description="Compute cluster for the job: clusterType (Spark, Ray, Dask, "
        "MPI), computeEnvironmentId, masterHardwareTierId, workerCount, workerHardwareTierId, …")
    external_volume_mounts: list[str] | None = Field(
        default=None, description="Ids of external volumes to mount in the job.")
    idempotency_key: str | None = Field(
        default=None,
        description="Start at most one job per key; inside a task run a key is derived from the "
        "run so retries reattach.",
    )
    inputs: list[str] = Field(
        default_factory=list,
        description="Lineage inputs the job reads, as 'namespace:name' or a URI (e.g. "
        "'warehouse:sales.orders', 's3://bucket/raw/orders.csv').")
    outputs: list[str] = Field(
        default_factory=list,
        description="Lineage outputs the job writes, as 'namespace:name' or a URI.")
    poll_freq: float = Field(default=5.0, description="Seconds between status checks.")
    max_poll_time: float = Field(
        default=6000.0, description="Seconds to wait before stopping the job and failing."
    )
    retry_count: int = Field(default=5, description="Consecutive API errors tolerated while polling.")
    stream_logs: bool = Field(default=True, description="Send the job's stdout to the run logger.")
    include_setup_log: bool = Field(default=False, description="Also stream the setup log.")
    stop_timeout: float = Field(default=60.0, description="Seconds to confirm a stop.")
    log_interval: float | None = Field(
        default=None, description="Seconds between live stdout fetches while the job runs. None: within the request budget (never more requests than python-domino's loop; about every 12 polls).")
    create_artifacts: bool = Field(
        default=True, description="Link artifact at start, status table artifact at the end."
    )

    def job_spec(self) -> JobSpec:
        """The job to start: every ``job_start`` field of this block."""
        return JobSpec(
            command=self.command, title=self.title, hardware_tier_name=self.hardware_tier_name,
            hardware_tier_id=self.hardware_tier_id, environment_id=self.environment_id,
            commit_id=self.commit_id, branch=self.branch, main_repo_git_ref=self.main_repo_git_ref,
            on_demand_spark_cluster_properties=self.on_demand_spark_cluster_properties,
            compute_cluster_properties=self.compute_cluster_properties,
            external_volume_mounts=self.external_volume_mounts,
        )

    def poll_options(self) -> PollOptions:
        """The block's polling settings as the core's ``PollOptions``."""
        return PollOptions(
            poll_freq=self.poll_freq, max_poll_time=self.max_poll_time,
            retry_count=self.retry_count, stream_logs=self.stream_logs,
            log_interval=self.log_interval, include_setup_log=self.include_setup_log,
            stop_timeout=self.stop_timeout,
            initial_interval=min(1.0, self.poll_freq),
        )

    def _prepare(self, idempotency_key: str | None) -> tuple[JobSpec, str | None, list[Any]]:
        spec = self.job_spec()
        config = self.credentials.get_config(self.project)
        identity = _common.current_identity(spec, config)
        key = idempotency_key or self.idempotency_key or (
            identity.idempotency_key(spec, config) if identity else None
        )
        observers, env = _common.lineage_for(identity, config,
                                             *_common.datasets(self.inputs, self.outputs))
        if env:
            spec = JobSpec.from_dict({**spec.to_dict(), "command": with_env_prefix(spec.command, env)})
        return spec, key, observers

    def _triggered(self, handle: JobHandle, observers: list[Any]) -> DominoJobRun:
        verb = "Reattached to" if handle.attached else "Started"
        self.logger.info("%s Domino job %s: %s", verb, handle.job_id, handle.url or "(no URL)")
        return DominoJobRun(self, handle, observers)

    async def atrigger(self, idempotency_key: str | None = None) -> DominoJobRun:
        """Start the job (or reattach to the one with the same idempotency key)."""
        spec, key, observers = self._prepare(idempotency_key)
        async with self.credentials.get_async_client(self.project) as client:
            handle = await client.start_job(spec, idempotency_key=key, observers=observers)
        if self.create_artifacts:
            await _common.awrite_link_artifact(handle)
        return self._triggered(handle, observers)

    def trigger_sync(self, idempotency_key: str | None = None) -> DominoJobRun:
        """Start the job from synchronous code (or reattach to the one with the same key)."""
        spec, key, observers = self._prepare(idempotency_key)
        with self.credentials.get_client(self.project) as client:
            handle = client.start_job(spec, idempotency_key=key, observers=observers)
        if self.create_artifacts:
            _common.write_link_artifact(handle)
        return self._triggered(handle, observers)

    @async_dispatch(atrigger)
    def trigger(self, idempotency_key: str | None = None) -> DominoJobRun:  # type: ignore[override]
        """Start the job; ``await`` it in async code. Returns a ``DominoJobRun``."""
        return self.trigger_sync(idempotency_key)
