"""``DominoJobSensor``: wait for an existing Domino job (started elsewhere) to end.

Poke mode checks the status once per poke (``client.get_job``); deferrable mode hands the wait to
``DominoJobTrigger`` (which also streams the job's stdout into the task log). The sensor does not
own the job, it only watches: neither its timeout nor a kill (mark failed/success, clear) ever
stops the job. A job that ends Failed, Error or Stopped fails the sensor with the status and the
last lines of output.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout

from .hooks_lazy import LazyDominoHook
from .links import DominoJobLink, push_job_xcoms

if TYPE_CHECKING:
    from domino_orchestrate.core import JobHandle, JobSnapshot


__all__ = ["DominoJobSensor"]


class DominoJobSensor(LazyDominoHook, BaseSensorOperator):
    """Succeed when Domino job ``job_id`` succeeds; fail when it fails, errors or is stopped.

    :param job_id: the v4 job id (or v1 run id with ``kind="run"``); templated.
    :param kind: ``"job"`` (default) or ``"run"``.
    :param domino_conn_id: the ``domino`` connection; ``project`` overrides its project.
    :param retry_count: consecutive transient API errors tolerated (deferrable wait).
    :param stream_logs: stream the job's stdout into the triggerer log (deferrable mode).
    :param wait_for_completion: False: succeed as soon as the job exists (any state).
    """

    template_fields: Sequence[str] = ("job_id", "project")
    operator_extra_links = (DominoJobLink(),)
    ui_color = "#e6f1fb"

    def __init__(
        self,
        *,
        job_id: str,
        kind: str = "job",
        domino_conn_id: str = "domino_default",
        project: str | None = None,
        retry_count: int = 5,
        stream_logs: bool = True,
        wait_for_completion: bool = True,
        tail_lines: int = 20,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.kind = kind
        self.domino_conn_id = domino_conn_id
        self.project = project
        self.retry_count = retry_count
        self.stream_logs = stream_logs
        self.wait_for_completion = wait_for_completion
        self.tail_lines = tail_lines
        self.deferrable = deferrable
        self._pushed = False

    def _handle(self) -> JobHandle:
        from domino_orchestrate.core import JobHandle

        job_id = str(self.job_id)
        return JobHandle(job_id=job_id, kind=self.kind,  # type: ignore[arg-type]
                         project=self.hook.config.project, url=self.hook.client.job_url(job_id))

    def _push(self, context: Any, handle: JobHandle) -> None:
        if not self._pushed:
            push_job_xcoms(context["ti"], handle.job_id, handle.url)
            self._pushed = True

    def _fail(self, snap: JobSnapshot) -> None:
        from domino_orchestrate.core import JobFailedError

        try:
            lines = self.hook.client.stdout(snap.job_id if snap.kind == "job" else self._handle())
            tail = [line.text for line in lines[-self.tail_lines:]]
        except Exception as exc:  # the status is the news; the tail is a bonus
            self.log.warning("Could not fetch the output of %s: %s", snap.job_id, exc)
            tail = []
        raise AirflowException(str(JobFailedError(snap, tail)))

    def poke(self, context: Any) -> bool | PokeReturnValue:
        """Check the job once: done (with its summary as XCom) when it ended, failing if it failed."""
        handle = self._handle()
        self._push(context, handle)
        snap = self.hook.client.get_job(handle)
        self.log.info("Domino %s %s is %s", handle.kind, handle.job_id, snap.raw_status)
        if not self.wait_for_completion:
            return PokeReturnValue(is_done=True, xcom_value=snap.summary())
        if not snap.is_terminal:
            return False
        if snap.status.is_failure:
            self._fail(snap)
        return PokeReturnValue(is_done=True, xcom_value=snap.summary())

    def execute(self, context: Any) -> Any:
        """Poke, or with ``deferrable=True`` hand the watching to the triggerer (never stops the job)."""
        if not self.deferrable:
            return super().execute(context)
        result = self.poke(context)  # a job that already ended never defers
        if isinstance(result, PokeReturnValue) and result.is_done:
            return result.xcom_value
        from domino_orchestrate.core import PollOptions

        from .triggers import DominoJobTrigger

        timeout = float(self.timeout) if self.timeout else None
        options = PollOptions(
            poll_freq=float(self.poke_interval), retry_count=self.retry_count,
            stream_logs=self.stream_logs, tail_lines=self.tail_lines,
            initial_interval=min(1.0, float(self.poke_interval)),
            max_poll_time=timeout or PollOptions().max_poll_time,
            timeout_name="timeout" if timeout else "max_poll_time",
            stop_on_timeout=False,  # the sensor does not own the job
        )
        self.log.info("Deferring: the triggerer follows Domino %s %s", self.kind, self.job_id)
        self.defer(
            trigger=DominoJobTrigger(conn_id=self.domino_conn_id, handle=self._handle().to_dict(),
                                     poll_options=options.to_dict(), project=self.project,
                                     owns_job=False),
            method_name="execute_complete",
            timeout=timedelta(seconds=timeout + 60) if timeout else None,
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger: the job's summary, or ``AirflowSensorTimeout``/``AirflowException``."""
        event = event or {"status": "error", "message": "No event from the Domino trigger"}
        if event.get("status") == "success":
            return event.get("snapshot")
        if event.get("status") == "timeout":
            raise AirflowSensorTimeout(str(event.get("message")))
        raise AirflowException(str(event.get("message") or f"Domino job ended: {event.get('status')}"))
