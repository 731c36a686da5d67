"""Operators: ``DominoJobOperator`` (v4 jobs) and ``DominoRunOperator`` (v1 runs).

Both start the execution once per task run and push ``job_id``/``job_url`` (and the "Domino job"
link) to XCom before waiting, stream stdout into the task log, fail the task with the status and
the last output lines, stop the job on every kill (``on_kill``: mark failed, mark success, clear,
SIGTERM) and on ``execution_timeout`` (sync and deferrable), and return
``JobSnapshot.summary()``. All HTTP, polling and status logic lives in the core.

Which start reattaches and which is fresh is the core's one rule (``core/identity.py``); this
module only says what Airflow's unit of work is:

* scope: DAG id, task id, run id, map index;
* generation: how often a user cleared the task instance. Airflow sets ``max_tries`` to
  ``try_number + retries`` on every clear (``clear_task_instances``, and the scheduler for a
  cleared running task) and never on an automatic retry, so ``max_tries - retries`` changes
  exactly when a user reruns the task on purpose.

So an automatic retry (a crash, a raise after the start) reattaches to the job that is still
running or succeeded unseen, and a clear — of a succeeded, failed, running or deferred task, or a
backfill that reprocesses a run — starts a fresh job. Airflow 3.3's ``ResumableJobMixin`` +
``task_state_store`` only remembers the handle; whether it may be reused is decided by the same
rule (a recorded job of another generation or spec is never reused).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, conf
from airflow.sdk.exceptions import AirflowException, AirflowTaskTimeout

from ._lineage import (
    DatasetLike,
    build_lineage_info,
    declared_datasets,
    lineage_to_dict,
    submission_facts,
)
from .hooks_lazy import LazyDominoHook
from .links import JOB_ID_KEY, DominoJobLink, push_job_xcoms
from .openlineage import DominoOpenLineageMixin

try:  # Airflow >= 3.3 (durable execution); the compat stand-in otherwise
    from airflow.sdk import ResumableJobMixin
except ImportError:  # pragma: no cover
    from airflow.providers.common.compat.sdk import ResumableJobMixin  # type: ignore[no-redef]

if TYPE_CHECKING:
    from domino_orchestrate.core import (
        JobHandle,
        JobSnapshot,
        JobSpec,
        LogLine,
        PollOptions,
        RunSpec,
    )
    from domino_orchestrate.core.identity import ExecutionIdentity
    from domino_orchestrate.core.lineage import LineageInfo


__all__ = ["DominoJobOperator", "DominoRunOperator"]

TRIGGER_TIMEOUT = "Trigger timeout"  # airflow TriggerFailureReason.TRIGGER_TIMEOUT
#: Status reported to ``ResumableJobMixin`` for a recorded job this try must not reuse (another
#: generation or spec): neither active nor succeeded, so the mixin starts a fresh one.
NOT_REUSABLE = "NotReusable"


def clear_generation(ti: Any, retries: int | None) -> int:
    """How many times a user cleared this task instance (0 until the first clear).

    Airflow sets ``max_tries = try_number + retries`` on a clear and leaves it alone on an
    automatic retry; ``max_tries`` starts at ``retries``.
    """
    max_tries = getattr(ti, "max_tries", None)
    if max_tries is None:
        return 0
    return max(0, int(max_tries) - int(retries or 0))


#: XComs of what the job reported from inside (Pipes messages, core/messages.py): the whole
#: report, and the job's result (the payload of its last custom message).
MESSAGES_KEY = "domino_messages"
RESULT_KEY = "domino_result"


def _messages(task_log: Any) -> Any:
    """A fresh collector per try (each try has its own XComs); each message gets a task-log line."""
    from domino_orchestrate.core.messages import MessageCollector, MessageLedger

    def say(message: Any, line: str | None) -> None:
        if line:
            task_log.info("%s", line)
        elif message.method == "log":
            task_log.info("[%s] %s", message.params.get("level") or "INFO",
                          message.params.get("message"))

    return MessageCollector(MessageLedger(), on_report=say)


def push_messages(context: Any, report: dict[str, Any] | None) -> None:
    """Push what the job reported as the ``domino_messages`` / ``domino_result`` XComs."""
    if not report or not any(report.get(k) for k in ("materializations", "checks",
                                                      "custom_messages", "logs", "other")):
        return
    ti = context.get("ti") if hasattr(context, "get") else None
    if ti is None:
        return
    ti.xcom_push(key=MESSAGES_KEY, value=report)
    if report.get("result") is not None:
        ti.xcom_push(key=RESULT_KEY, value=report["result"])


class _FinishedFlag:
    """Observer noting that the job reached its end (so ``on_kill`` need not stop it)."""

    def __init__(self, owner: _DominoBaseOperator) -> None:
        self.owner = owner

    def on_finished(self, snapshot: Any, error: Any) -> None:
        self.owner._domino_finished = True


class _DominoBaseOperator(LazyDominoHook, DominoOpenLineageMixin, ResumableJobMixin, BaseOperator):  # type: ignore[misc]
    """Shared behaviour; subclasses define ``_spec()`` and ``_start()``."""

    operator_extra_links = (DominoJobLink(),)
    ui_color = "#e6f1fb"
    ui_fgcolor = "#16325c"
    #: task_state_store key of the started job's handle (do not rename: breaks in-flight retries)
    external_id_key = "domino_job_handle"
    kind = "job"

    def __init__(
        self,
        *,
        domino_conn_id: str = "domino_default",
        project: str | None = None,
        title: str | None = None,
        commit_id: str | None = None,
        poll_freq: float = 5.0,
        max_poll_time: float = 6000.0,
        retry_count: int = 5,
        startup_delay: float = 0.0,
        include_setup_log: bool = False,
        wait_for_completion: bool = True,
        stream_logs: bool = True,
        log_interval: float | None = None,
        initial_interval: float = 1.0,
        stop_timeout: float = 60.0,
        tail_lines: int = 20,
        input_datasets: Sequence[DatasetLike] | None = None,
        output_datasets: Sequence[DatasetLike] | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        durable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(durable=durable, **kwargs)
        self.domino_conn_id = domino_conn_id
        self.project = project
        self.title = title
        self.commit_id = commit_id
        self.poll_freq = poll_freq
        self.max_poll_time = max_poll_time
        self.retry_count = retry_count
        self.startup_delay = startup_delay
        self.include_setup_log = include_setup_log
        self.wait_for_completion = wait_for_completion
        self.stream_logs = stream_logs
        self.log_interval = log_interval
        self.initial_interval = initial_interval
        self.stop_timeout = stop_timeout
        self.tail_lines = tail_lines
        self.input_datasets = list(input_datasets or [])
        self.output_datasets = list(output_datasets or [])
        self.deferrable = deferrable
        # Runtime state (not templated, not serialized).
        self._domino_handle: JobHandle | None = None
        self._domino_snapshot: JobSnapshot | None = None
        self._domino_finished = False
        self._domino_lineage: LineageInfo | None = None
        self._domino_observers: list[Any] = []
        self._started_monotonic: float | None = None

    # --- public helpers ----------------------------------------------------------------------
    def lineage_info(self, context: Any) -> LineageInfo:
        """This task run's lineage: parent = Airflow's OpenLineage task run, root = the DAG run."""
        inputs, outputs = declared_datasets(self)
        return build_lineage_info(context, inputs, outputs,
                                  clear_generation(context["ti"], self.retries))

    def _lineage_info(self) -> LineageInfo | None:
        """The lineage info of the current execution (None before ``execute``)."""
        return self._domino_lineage

    @property
    def domino_job_id(self) -> str | None:
        return self._domino_handle.job_id if self._domino_handle else None

    @property
    def domino_job_url(self) -> str | None:
        return self._domino_handle.url if self._domino_handle else None

    @property
    def domino_snapshot(self) -> dict[str, Any] | None:
        return self._domino_snapshot.summary() if self._domino_snapshot else None

    def poll_options(self) -> PollOptions:
        from domino_orchestrate.core import PollOptions

        return PollOptions(
            poll_freq=self.poll_freq, max_poll_time=self.max_poll_time,
            retry_count=self.retry_count, stream_logs=self.stream_logs,
            log_interval=self.log_interval, include_setup_log=self.include_setup_log,
            initial_interval=min(self.initial_interval, self.poll_freq),
            stop_timeout=self.stop_timeout, tail_lines=self.tail_lines,
        )

    def execution_identity(self, context: Any) -> ExecutionIdentity:
        """This task instance in the core's terms: scope and clear generation (module docstring)."""
        from domino_orchestrate.core.identity import ExecutionIdentity

        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        scope = (str(ti.dag_id), str(ti.task_id), str(ti.run_id),
                 str(-1 if map_index is None else map_index))
        return ExecutionIdentity("airflow", scope, str(clear_generation(ti, self.retries)))

    def idempotency_key(self, context: Any) -> str:
        """The key of this try's job: identity + the spec the user wrote (no lineage variables,
        which change per try) + host and project."""
        return self.execution_identity(context).key(self._spec({}), self.hook.config)

    # --- subclass hooks ----------------------------------------------------------------------
    def _spec(self, env: dict[str, str]) -> JobSpec | RunSpec:
        raise NotImplementedError

    # --- execution ---------------------------------------------------------------------------
    def execute(self, context: Any) -> Any:
        from domino_orchestrate.core.lineage import lineage_observers

        self._started_monotonic = time.monotonic()
        self._domino_lineage = self.lineage_info(context)
        self._domino_messages = _messages(self.log)
        self._domino_observers = [
            *lineage_observers(self._domino_lineage, self.hook.config), _FinishedFlag(self),
            self._domino_messages,
        ]
        try:
            return self.execute_resumable(context)
        finally:
            push_messages(context, self._domino_messages.report())

    def submit_job(self, context: Any) -> dict[str, Any]:
        from domino_orchestrate.core import RunSpec
        from domino_orchestrate.core.lineage import lineage_env

        env = lineage_env(self._domino_lineage, self.hook.config) if self._domino_lineage else {}
        spec = self._spec(env)
        client = self.hook.client
        key = self.idempotency_key(context)
        self._before_start(client)
        if self.startup_delay > 0:
            # Before the start, as python-domino does: it delays the job, not the polling.
            self.log.info("Waiting startup_delay=%s s before starting the Domino %s",
                          self.startup_delay, self.kind)
            time.sleep(self.startup_delay)
        start = client.start_run if isinstance(spec, RunSpec) else client.start_job
        handle = start(spec, idempotency_key=key, observers=self._domino_observers)  # type: ignore[operator]
        self._announce(handle, context)
        return handle.to_dict()

    def _before_start(self, client: Any) -> None:
        """Checks a subclass makes before anything is started (nothing by default)."""

    def _announce(self, handle: JobHandle, context: Any) -> None:
        self._domino_handle = handle
        verb = "Attached to" if handle.attached else "Started"
        self.log.info("%s Domino %s %s: %s", verb, handle.kind, handle.job_id, handle.url or "")
        # Airflow itself writes the link's XCom only when the task ends: write it now, so the
        # "Domino job" button works while the task runs.
        push_job_xcoms(context["ti"], handle.job_id, handle.url)

    def get_job_status(self, external_id: Any, context: Any) -> str:
        """Status of the job ``task_state_store`` recorded, or ``NOT_REUSABLE`` when it belongs to
        another generation (the task was cleared) or another spec, host or project."""
        from domino_orchestrate.core import JobHandle, JobNotFoundError

        handle = JobHandle.from_dict(external_id)
        if handle.idempotency_key != self.idempotency_key(context):
            self.log.info("Domino %s %s was started for an earlier run of this task (cleared, or "
                          "its command or settings changed): starting a fresh one",
                          handle.kind, handle.job_id)
            return NOT_REUSABLE
        try:
            return self.hook.client.get_job(handle).raw_status
        except JobNotFoundError:
            self.log.info("Recorded Domino %s %s no longer exists: starting a fresh one",
                          handle.kind, handle.job_id)
            return NOT_REUSABLE

    @staticmethod
    def _reusable_status(status: str) -> bool:
        from domino_orchestrate.core import JobSnapshot, JobStatus
        from domino_orchestrate.core.identity import reusable

        if status == NOT_REUSABLE:
            return False
        return reusable(JobSnapshot(job_id="-", status=JobStatus.parse(status), raw_status=status))

    def is_job_active(self, status: str) -> bool:
        """Running and reusable: a job that is being stopped is never adopted (core rule)."""
        from domino_orchestrate.core import JobStatus

        return self._reusable_status(status) and not JobStatus.parse(status).is_terminal

    def is_job_succeeded(self, status: str) -> bool:
        from domino_orchestrate.core import JobStatus

        return status != NOT_REUSABLE and JobStatus.parse(status).is_success

    def poll_until_complete(self, external_id: Any, context: Any) -> Any:
        from domino_orchestrate.core import JobHandle

        handle = JobHandle.from_dict(external_id)
        if self._domino_handle is None or self._domino_handle.job_id != handle.job_id:
            self._announce(JobHandle.from_dict({**external_id, "attached": True}), context)
            handle = self._domino_handle  # type: ignore[assignment]
        if not self.wait_for_completion:
            snap = self.hook.client.get_job(handle)
            self._domino_snapshot = snap
            self.log.info("Not waiting for Domino %s %s (%s)", handle.kind, handle.job_id,
                          snap.raw_status)
            return snap.summary()
        if self.deferrable:
            snap = self.hook.client.get_job(handle)
            if not snap.is_terminal:  # a job that already ended never defers
                self._defer(handle, context)
        return self._wait(handle).summary()

    def get_job_result(self, external_id: Any, context: Any) -> dict[str, Any]:
        from domino_orchestrate.core import JobHandle

        handle = JobHandle.from_dict(external_id)
        if self._domino_snapshot is not None and self._domino_snapshot.job_id == handle.job_id:
            return self._domino_snapshot.summary()
        if self._domino_handle is None:
            self._announce(JobHandle.from_dict({**external_id, "attached": True}), context)
        snap = self.hook.client.get_job(handle)
        self._domino_snapshot = snap
        return snap.summary()

    def _log_line(self, line: LogLine) -> None:
        self._log_text(line.stream, line.text)

    def _log_text(self, stream: str, text: str) -> None:
        if stream == "stderr":
            self.log.warning("%s", text)
        else:
            self.log.info("%s", text)

    def _wait(self, handle: JobHandle) -> JobSnapshot:
        """Follow the job here (sync); the core stops it on an interrupt or task timeout."""
        from domino_orchestrate.core import JobFailedError, PollTimeoutError
        from domino_orchestrate.core.observe import LineBatcher

        try:
            # Lines go to the task log in one call per fetch when there are many (LineBatcher).
            snap = self.hook.client.wait(
                handle, self.poll_options(),
                observers=[*self._domino_observers, LineBatcher(self._log_text)])
        except JobFailedError as exc:
            self._domino_snapshot = exc.snapshot
            raise AirflowException(str(exc)) from None
        except PollTimeoutError as exc:  # max_poll_time fired; the message says so
            raise AirflowException(str(exc)) from None
        except AirflowTaskTimeout:
            # The core has stopped the job (the timeout interrupted its wait); say which knob fired.
            raise AirflowTaskTimeout(
                f"Task exceeded its execution_timeout ({self.execution_timeout}); Domino "
                f"{handle.kind} {handle.job_id} was stopped. Raise execution_timeout if it needs "
                "longer."
            ) from None
        self._domino_snapshot = snap
        self.log.info("Domino %s %s succeeded: %s", handle.kind, handle.job_id, handle.url or "")
        return snap

    # --- deferrable --------------------------------------------------------------------------
    def _remaining_timeout(self) -> float | None:
        if self.execution_timeout is None:
            return None
        spent = time.monotonic() - (self._started_monotonic or time.monotonic())
        return max(1.0, self.execution_timeout.total_seconds() - spent)

    def _defer(self, handle: JobHandle, context: Any) -> None:
        from dataclasses import replace

        from .triggers import DominoJobTrigger

        options = self.poll_options()
        remaining = self._remaining_timeout()
        if remaining is not None and remaining < options.max_poll_time:
            # The trigger stops the job itself when the task's time is up (core timeout path),
            # and says it was execution_timeout that fired.
            options = replace(options, max_poll_time=remaining, timeout_name="execution_timeout")
        self.log.info("Deferring: the triggerer follows Domino %s %s", handle.kind, handle.job_id)
        self.defer(
            trigger=DominoJobTrigger(
                conn_id=self.domino_conn_id,
                handle=handle.to_dict(),
                poll_options=options.to_dict(),
                lineage=lineage_to_dict(self._domino_lineage,
                                        submission_facts(self._domino_observers))
                if self._domino_lineage else None,
                project=self.project,
            ),
            method_name="execute_complete",
            # A backstop a little after the trigger's own timeout (see resume_execution).
            timeout=timedelta(seconds=remaining + options.stop_timeout + 30) if remaining else None,
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger: succeed with the summary or fail with status and tail."""
        event = event or {"status": "error", "message": "No event from the Domino trigger"}
        status = event.get("status")
        snapshot = event.get("snapshot")
        push_messages(context, event.get("messages"))
        if snapshot:
            self._restore(snapshot)
            self.log.info("Domino job %s ended %s: %s", snapshot.get("job_id"),
                          snapshot.get("status"), snapshot.get("url") or "")
        if status == "success":
            return snapshot
        message = str(event.get("message") or f"Domino job ended: {status}")
        if status == "timeout" and event.get("knob") == "execution_timeout":
            raise AirflowTaskTimeout(message)
        raise AirflowException(message)

    def _restore(self, summary: dict[str, Any]) -> None:
        """Rebuild handle and snapshot from the trigger's summary (this is a fresh instance)."""
        from domino_orchestrate.core import JobHandle, JobSnapshot, JobStatus

        job_id = str(summary.get("job_id"))
        kind = summary.get("kind") or self.kind
        self._domino_handle = JobHandle(job_id=job_id, kind=kind, url=summary.get("url"),
                                        project=self.project)
        self._domino_snapshot = JobSnapshot(
            job_id=job_id, status=JobStatus.parse(summary.get("status")),
            raw_status=str(summary.get("status") or ""), kind=kind,
            number=summary.get("number"), title=summary.get("title"), url=summary.get("url"),
            hardware_tier=summary.get("hardware_tier"),
            output_commit_id=summary.get("output_commit_id"),
        )
        self._domino_finished = True

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None,
                         context: Any) -> Any:
        if next_method == "__fail__" and (next_kwargs or {}).get("error") == TRIGGER_TIMEOUT:
            # The backstop after the trigger's own timeout fired: the task's time is up.
            job_id = self._stop_from_xcom(context)
            raise AirflowTaskTimeout(
                f"Task exceeded its execution_timeout ({self.execution_timeout}) while deferred;"
                f" Domino {self.kind} {job_id or '(none started)'} was stopped. Raise "
                "execution_timeout if it needs longer."
            )
        return super().resume_execution(next_method, next_kwargs, context)

    def _stop_from_xcom(self, context: Any) -> str | None:
        """The deferral timed out: stop the job this task started (its id is in XCom)."""
        from domino_orchestrate.core import JobHandle

        job_id = context["ti"].xcom_pull(task_ids=self.task_id, key=JOB_ID_KEY)
        if not job_id:
            return None
        self._domino_handle = JobHandle(job_id=str(job_id), kind=self.kind,  # type: ignore[arg-type]
                                        project=self.hook.config.project)
        self._kill(f"Deferral timed out (execution_timeout {self.execution_timeout})")
        return str(job_id)

    def on_kill(self) -> None:
        """Airflow killed the task (mark failed/success, clear, SIGTERM, timeout): stop its job."""
        self._kill("Task killed")

    def _kill(self, reason: str) -> None:
        """Stop the Domino job this task started (unless it already ended); log the stop and
        its confirmation in the task log."""
        handle = self._domino_handle
        if handle is None or self._domino_finished:
            return
        client = self.hook.new_client()  # on_kill may interrupt the cached client mid-request
        try:
            self.log.warning("%s: stopping Domino %s %s", reason, handle.kind, handle.job_id)
            final = client.stop_job(handle, wait=True, timeout=self.stop_timeout)
            self._domino_finished = True
            self.log.warning("Domino %s %s stopped (%s)", handle.kind, handle.job_id,
                             final.raw_status if final else "?")
        except Exception as exc:
            self.log.error("Could not confirm the stop of Domino %s %s: %s", handle.kind,
                           handle.job_id, exc)
        finally:
            client.close()


class DominoJobOperator(_DominoBaseOperator):
    """Run a Domino v4 job (``POST /v4/jobs/start``) and follow it.

    Parameters of python-domino's ``DominoSparkOperator`` (``command``, ``commit_id``,
    ``hardware_tier_name``, ``environment_id``, ``on_demand_spark_cluster_properties``,
    ``compute_cluster_properties``) plus ``title``, ``hardware_tier_id``, ``branch`` /
    ``main_repo_git_ref``, ``external_volume_mounts``, and the shared ones: ``domino_conn_id``,
    ``project``, ``poll_freq``, ``max_poll_time``, ``retry_count``, ``startup_delay``,
    ``include_setup_log``, ``wait_for_completion``, ``stream_logs``, ``log_interval`` (seconds
    between live stdout fetches; default: within python-domino's request count), ``deferrable``,
    ``input_datasets``/``output_datasets`` (``"namespace:name"``, a URI such as
    ``s3://bucket/key``, or ``Dataset``); Assets in Airflow's own ``inlets``/``outlets`` count as
    input/output datasets too.
    """

    template_fields: Sequence[str] = (
        "command", "title", "project", "commit_id", "branch", "main_repo_git_ref",
        "hardware_tier_name", "hardware_tier_id", "environment_id", "external_volume_mounts",
        "on_demand_spark_cluster_properties", "compute_cluster_properties",
        "input_datasets", "output_datasets",
    )
    template_fields_renderers = {
        "command": "bash", "on_demand_spark_cluster_properties": "json",
        "compute_cluster_properties": "json", "main_repo_git_ref": "json",
    }
    kind = "job"

    def __init__(
        self,
        *,
        command: str,
        hardware_tier_name: str | None = None,
        hardware_tier_id: str | None = None,
        environment_id: str | None = None,
        branch: str | None = None,
        main_repo_git_ref: dict[str, str] | None = None,
        on_demand_spark_cluster_properties: dict[str, Any] | None = None,
        compute_cluster_properties: dict[str, Any] | None = None,
        external_volume_mounts: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.command = command
        self.hardware_tier_name = hardware_tier_name
        self.hardware_tier_id = hardware_tier_id
        self.environment_id = environment_id
        self.branch = branch
        self.main_repo_git_ref = main_repo_git_ref
        self.on_demand_spark_cluster_properties = on_demand_spark_cluster_properties
        self.compute_cluster_properties = compute_cluster_properties
        self.external_volume_mounts = external_volume_mounts

    def _spec(self, env: dict[str, str]) -> JobSpec:
        from domino_orchestrate.core import JobSpec
        from domino_orchestrate.core.lineage import with_env_prefix

        return JobSpec(
            command=with_env_prefix(self.command, env),
            title=self.title or f"{self.dag_id}.{self.task_id}",
            hardware_tier_id=self.hardware_tier_id,
            hardware_tier_name=self.hardware_tier_name,
            environment_id=self.environment_id,
            commit_id=self.commit_id,
            branch=self.branch,
            main_repo_git_ref=self.main_repo_git_ref,
            on_demand_spark_cluster_properties=self.on_demand_spark_cluster_properties,
            compute_cluster_properties=self.compute_cluster_properties,
            external_volume_mounts=self.external_volume_mounts,
        )


class DominoRunOperator(_DominoBaseOperator):
    """Run a Domino v1 run (``POST /v1/projects/{owner}/{project}/runs``) and follow it.

    Every parameter of python-domino's ``DominoOperator``: ``project``, ``command`` (list),
    ``is_direct``, ``commit_id``, ``title``, ``tier``, ``publish_api_endpoint``, ``poll_freq``,
    ``max_poll_time``, ``startup_delay`` (default 0: python-domino's 10 s was a Domino 3.6
    workaround), ``include_setup_log``; plus the shared ones (see ``DominoJobOperator``).
    Lineage environment variables are passed only to ``is_direct`` runs (a shell command).
    """

    template_fields: Sequence[str] = (
        "command", "title", "project", "commit_id", "tier", "input_datasets", "output_datasets",
    )
    kind = "run"

    def __init__(
        self,
        *,
        command: Sequence[str] | str,
        is_direct: bool | None = False,
        tier: str | None = None,
        publish_api_endpoint: bool | None = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.command = [command] if isinstance(command, str) else list(command)
        self.is_direct = is_direct
        self.tier = tier
        self.publish_api_endpoint = publish_api_endpoint

    def _before_start(self, client: Any) -> None:
        """A v1 ``tier`` is a hardware tier *name*: check it exists before starting, as
        python-domino's ``DominoOperator`` does (a ``ConfigurationError``, a ``ValueError``)."""
        if not self.tier:
            return
        from domino_orchestrate.core import ConfigurationError

        names = [tier.name for tier in client.hardware_tiers()]
        if self.tier not in names:
            raise ConfigurationError(
                f"Hardware tier {self.tier!r} is not available in project "
                f"{client.config.project}; available tiers: {', '.join(names) or 'none'}"
            )

    def _spec(self, env: dict[str, str]) -> RunSpec:
        from domino_orchestrate.core import RunSpec
        from domino_orchestrate.core.lineage import with_env_prefix

        command = [str(part) for part in self.command]
        if self.is_direct and len(command) == 1:
            command = [with_env_prefix(command[0], env)]
        return RunSpec(
            command=tuple(command), is_direct=self.is_direct, commit_id=self.commit_id,
            title=self.title or f"{self.dag_id}.{self.task_id}", tier=self.tier,
            publish_api_endpoint=self.publish_api_endpoint,
        )
