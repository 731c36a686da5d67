"""MLflow sink: records each Domino job as an MLflow run (extra ``mlflow``; imported lazily).

Enabled by env ``DOMINO_ORCHESTRATE_MLFLOW_TRACKING_URI`` (or ``MLFLOW_TRACKING_URI`` together
with ``DOMINO_ORCHESTRATE_MLFLOW=1``); experiment ``DOMINO_ORCHESTRATE_MLFLOW_EXPERIMENT``
(default ``domino-orchestrate``). One MLflow run per lineage run id: a retry finds the run by the
``domino_orchestrate.lineage_run_id`` tag and updates it. Uses ``MlflowClient`` only (no fluent
global state). Params: command, hardware tier, environment. Tags: Domino job id and URL,
orchestrator, task, run key. Status FINISHED / FAILED / KILLED, metric ``duration_s``, artifact
``stdout.txt`` (the last ``MAX_STDOUT_LINES`` lines seen).

An unreachable tracking server never fails or slows the job: one short health check, then the
sink switches itself off for that job. No secret reaches MLflow (values are scrubbed).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from ..errors import PollTimeoutError, StopNotConfirmedError
from ..status import JobStatus
from .ids import lineage_run_id, scrub

if TYPE_CHECKING:
    from . import LineageInfo

__all__ = ["RUN_ID_TAG", "MlflowObserver", "mlflow_status"]

log = logging.getLogger("domino_orchestrate.lineage")

RUN_ID_TAG = "domino_orchestrate.lineage_run_id"
MAX_STDOUT_LINES = 10_000
#: MLflow param values are limited (500 characters on older servers).
MAX_PARAM = 500
MAX_TAG = 5000
HEALTH_TIMEOUT_S = 3.0

_STATUS = {
    JobStatus.SUCCEEDED: "FINISHED",
    JobStatus.FAILED: "FAILED",
    JobStatus.ERROR: "FAILED",
    JobStatus.STOPPED: "KILLED",
}


def mlflow_status(snapshot: Any, error: BaseException | None) -> str:
    """FINISHED / FAILED / KILLED for how a wait ended (same rules as the OpenLineage states)."""
    status = getattr(snapshot, "status", None)
    if isinstance(status, JobStatus) and status in _STATUS:
        return _STATUS[status]
    if error is None or isinstance(error, (PollTimeoutError, StopNotConfirmedError)):
        return "KILLED"
    return "FAILED" if isinstance(error, Exception) else "KILLED"


def _healthy(uri: str) -> bool:
    if not uri.startswith(("http://", "https://")):
        return True  # file:, sqlite:, databricks... : no cheap probe; trust it
    import requests

    try:
        resp = requests.get(uri.rstrip("/") + "/health", timeout=HEALTH_TIMEOUT_S)
    except requests.RequestException:
        return False
    return resp.status_code < 500


class MlflowObserver:
    """Core observer that mirrors one Domino job run into MLflow. Never raises."""

    def __init__(self, info: LineageInfo, tracking_uri: str, experiment: str, *,
                 project: str | None = None, secrets: tuple[str, ...] = ()) -> None:
        self.info = info
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.project = project
        self.secrets = secrets
        self.lineage_run_id = lineage_run_id(info)
        self.lines: deque[str] = deque(maxlen=MAX_STDOUT_LINES)
        self.run_id: str | None = None
        self.enabled = True
        self._client: Any = None
        self._started = time.monotonic()
        self._finished = False

    # --- helpers ---
    def _clean(self, value: Any, limit: int) -> str:
        return scrub(str(value), self.secrets)[:limit]

    def _guard(self, what: str, fn: Any, *args: Any) -> Any:
        if not self.enabled:
            return None
        try:
            return fn(*args)
        except Exception as exc:
            self.enabled = False
            log.warning("MLflow sink off for %s after %s failed: %s: %s", self.info.job_name,
                        what, type(exc).__name__, self._clean(exc, 300))
            return None

    def _connect(self) -> Any:
        if self._client is None:
            if not _healthy(self.tracking_uri):
                raise ConnectionError(f"MLflow tracking server {self.tracking_uri} unreachable")
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def _experiment_id(self, client: Any) -> str:
        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(client.create_experiment(self.experiment))
        except Exception:
            found = client.get_experiment_by_name(self.experiment)  # created concurrently
            if found is None:
                raise
            return str(found.experiment_id)

    def _tags(self) -> dict[str, str]:
        tags = {
            RUN_ID_TAG: self.lineage_run_id,
            "mlflow.runName": self.info.job_name,
            "orchestrator": self.info.orchestrator,
            "task": self.info.job_name,
            "run_key": "/".join(self.info.run_key),
        }
        if self.project:
            tags["domino.project"] = self.project
        for key, value in self.info.tags.items():
            tags.setdefault(str(key), str(value))
        return {k: self._clean(v, MAX_TAG) for k, v in tags.items() if v}

    def _open_run(self) -> None:
        client = self._connect()
        exp_id = self._experiment_id(client)
        found = client.search_runs(
            [exp_id], filter_string=f"tags.`{RUN_ID_TAG}` = '{self.lineage_run_id}'", max_results=1
        )
        if found:
            self.run_id = str(found[0].info.run_id)
            client.update_run(self.run_id, status="RUNNING")
        else:
            run = client.create_run(exp_id, tags=self._tags(), run_name=self.info.job_name)
            self.run_id = str(run.info.run_id)

    def _log(self, params: dict[str, Any], tags: dict[str, Any]) -> None:
        """One ``log_batch`` call: new params (MLflow params are immutable, so a retry keeps the
        first value) and tags (overwritten)."""
        from mlflow.entities import Param, RunTag

        existing = self._client.get_run(self.run_id).data.params if params else {}
        new_params = []
        for key, value in params.items():
            if value is None or value == "":
                continue
            text = self._clean(value, MAX_PARAM)
            if key in existing:
                if existing[key] != text:
                    log.debug("MLflow param %s differs on retry; keeping the first value", key)
                continue
            new_params.append(Param(key, text))
        new_tags = [RunTag(k, self._clean(v, MAX_TAG)) for k, v in tags.items() if v]
        self._client.log_batch(self.run_id, params=new_params, tags=new_tags)

    # --- core observer protocol ---
    def on_submitted(self, handle: Any, spec: Any) -> None:
        self._started = time.monotonic()
        self._guard("opening the run", self._open_run)
        if not self.run_id:
            return
        command = getattr(spec, "command", None)
        if isinstance(command, (list, tuple)):
            command = " ".join(command)
        params = {
            "command": command,
            "hardware_tier": getattr(spec, "hardware_tier_name", None)
            or getattr(spec, "hardware_tier_id", None) or getattr(spec, "tier", None),
            "environment_id": getattr(spec, "environment_id", None),
        }
        tags = {
            **self._tags(),
            "domino.job_id": getattr(handle, "job_id", None),
            "domino.job_url": getattr(handle, "url", None),
            "domino.attached": "true" if getattr(handle, "attached", False) else None,
        }
        self._guard("logging params and tags", self._log, params, tags)

    def on_status(self, snapshot: Any) -> None:
        return None

    def on_line(self, line: Any) -> None:
        if getattr(line, "stream", "stdout") != "setup":
            self.lines.append(str(getattr(line, "text", line)))

    def on_finished(self, snapshot: Any, error: BaseException | None) -> None:
        if self._finished or not self.enabled or not self.run_id:
            return
        self._finished = True
        status = mlflow_status(snapshot, error)
        duration = getattr(snapshot, "duration_s", None)
        if duration is None:
            duration = time.monotonic() - self._started
        self._guard("logging final tags", self._log, {}, {
            "domino.job_id": getattr(snapshot, "job_id", None),
            "domino.job_url": getattr(snapshot, "url", None),
            "domino.status": getattr(snapshot, "raw_status", None)
            or (type(error).__name__ if error else None),
            "domino.hardware_tier": getattr(snapshot, "hardware_tier", None),
        })
        self._guard("logging duration", lambda: self._client.log_metric(
            self.run_id, "duration_s", float(duration)))
        text = scrub("\n".join(self.lines) + ("\n" if self.lines else ""), self.secrets)
        self._guard("logging stdout", lambda: self._client.log_text(
            self.run_id, text, "stdout.txt"))
        self._guard("ending the run", lambda: self._client.set_terminated(self.run_id, status))
