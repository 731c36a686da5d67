"""MLflow sink: records each Domino job as an MLflow run (extra ``mlflow``; imported lazily).

Enabled by env ``DOMINO_ORCHESTRATE_MLFLOW_TRACKING_URI`` (or ``MLFLOW_TRACKING_URI`` together
with ``DOMINO_ORCHESTRATE_MLFLOW=1``); experiment ``DOMINO_ORCHESTRATE_MLFLOW_EXPERIMENT``
(default ``domino-orchestrate``; ``/Shared/<name>`` on Databricks). Uses ``MlflowClient`` only.

One MLflow run per lineage run id, found again by its tags from *any* process: the observer that
saw the start, a fresh one in another process that only waits (Dagster ``wait()``, the Airflow
trigger, a Prefect task in another worker), or the job itself (``domino_orchestrate.injob``):

* ``domino_orchestrate.lineage_run_id`` — the orchestrator's task run (a retry reuses the run);
* ``domino.job_id`` — the Domino job now recorded in it (what ``DOMINO_RUN_ID`` is in the job).

Whoever sees the end closes the run: FINISHED / FAILED / KILLED, ``end_time`` and the metric
``duration_s`` from Domino's own stage times, tags with the status and times, and the artifact
``stdout.txt``. Params are what the user asked for, as written (``command`` without any
``export …;`` prefix); a value over ``MAX_PARAM`` characters (Databricks' limit) is cut in the
param and kept whole in a ``domino.param.<name>`` tag (and ``command.txt``), never a failing batch.

A sink error never fails or slows the job and never leaves a run RUNNING silently: each call is
retried; a close that still fails is spooled (``<spool>/mlflow/*.json``) and delivered by
``domino-orchestrate lineage flush``; errors along the way are recorded on the run as the tag
``domino_orchestrate.sink_error``. No secret reaches MLflow (values are scrubbed).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import PollTimeoutError, StopNotConfirmedError
from ..extras import MissingExtraError, requires_extra
from ..status import JobStatus
from .ids import lineage_run_id, scrub
from .reported import Reported

if TYPE_CHECKING:
    from . import LineageInfo

__all__ = [
    "JOB_ID_TAG",
    "RUN_ID_TAG",
    "MlflowObserver",
    "find_run",
    "flush_mlflow_spool",
    "mlflow_status",
    "tag_filter",
    "user_command",
]

log = logging.getLogger("domino_orchestrate.lineage")

RUN_ID_TAG = "domino_orchestrate.lineage_run_id"
JOB_ID_TAG = "domino.job_id"
SINK_ERROR_TAG = "domino_orchestrate.sink_error"
MAX_STDOUT_LINES = 10_000
#: Param values: Databricks-hosted MLflow rejects more than 250 characters in ``log-batch``.
MAX_PARAM = 250
#: Tag values: every MLflow store takes 5000 bytes.
MAX_TAG_BYTES = 5000
HEALTH_TIMEOUT_S = 3.0
#: Attempts per MLflow call and the first pause between them (doubled each time).
ATTEMPTS = 3
RETRY_PAUSE_S = 0.3
#: MLflow error codes that another attempt cannot fix.
_PERMANENT = {"INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "PERMISSION_DENIED",
              "UNAUTHENTICATED", "BAD_REQUEST"}

_STATUS = {
    JobStatus.SUCCEEDED: "FINISHED",
    JobStatus.FAILED: "FAILED",
    JobStatus.ERROR: "FAILED",
    JobStatus.STOPPED: "KILLED",
}

#: ``export OPENLINEAGE_…=V …; `` as ``with_env_prefix`` writes it for ``lineage_env`` (values
#: shell-quoted). Only our own names: a user's ``export FOO=1; …`` is part of their command.
_ENV_PREFIX = re.compile(
    r"^export (?:(?:OPENLINEAGE_[A-Z_]+|DAGSTER_PARTITION_KEY)="
    r"(?:'[^']*'|\"'\"|[\w@%+=:,./-])*(?: |(?=;)))+; "
)


def mlflow_status(snapshot: Any, error: BaseException | None) -> str:
    """FINISHED / FAILED / KILLED for how a wait ended (same rules as the OpenLineage states)."""
    status = getattr(snapshot, "status", None)
    if isinstance(status, JobStatus) and status in _STATUS:
        return _STATUS[status]
    if error is None or isinstance(error, (PollTimeoutError, StopNotConfirmedError)):
        return "KILLED"
    return "FAILED" if isinstance(error, Exception) else "KILLED"


def user_command(command: Any) -> str | None:
    """The command as the user wrote it: an ``export …;`` prefix added by ``with_env_prefix``
    (opt-in lineage env) is not part of it."""
    if command is None:
        return None
    if isinstance(command, (list, tuple)):
        command = " ".join(str(part) for part in command)
    text = str(command)
    match = _ENV_PREFIX.match(text)
    return text[match.end():] if match else text


def tag_filter(key: str, value: str) -> str:
    """``tags."key" = 'value'``: double-quoted key (Databricks and MLflow both accept it for keys
    with dots), single-quoted value. Refuses quotes inside, which no filter can carry portably."""
    if '"' in key or "'" in value or "\\" in value:
        raise ValueError(f"Cannot search MLflow runs by tag {key!r} = {value!r}: quotes inside")
    return f"tags.\"{key}\" = '{value}'"


def _ms(when: datetime | None) -> int | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * 1000)


def _iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).isoformat()


def _cut_bytes(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "…"


def _healthy(uri: str) -> bool:
    if not uri.startswith(("http://", "https://")):
        return True  # file:, sqlite:, databricks... : no cheap probe; trust it
    import requests

    try:
        resp = requests.get(uri.rstrip("/") + "/health", timeout=HEALTH_TIMEOUT_S)
    except requests.RequestException:
        return False
    return resp.status_code < 500


def find_run(client: Any, experiment_id: str, key: str, value: str) -> Any:
    """The newest run in ``experiment_id`` whose tag ``key`` is ``value``, or None."""
    found = client.search_runs([experiment_id], filter_string=tag_filter(key, value),
                               max_results=1, order_by=["attributes.start_time DESC"])
    return found[0] if found else None


def experiment_id(client: Any, name: str, *, create: bool = True) -> str | None:
    """The id of the experiment ``name``, created if missing unless ``create`` is false."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    if not create:
        return None
    try:
        return str(client.create_experiment(name))
    except Exception:
        found = client.get_experiment_by_name(name)  # created concurrently
        if found is None:
            raise
        return str(found.experiment_id)


def _active_parent_run() -> str | None:
    """The orchestrator process's own active MLflow run (a user's ``mlflow.start_run()`` around
    the flow or DAG code), under which the Domino job's run is nested."""
    mlflow = sys.modules.get("mlflow")
    if mlflow is None:
        return None
    try:
        active = mlflow.active_run()
    except Exception:
        return None
    return str(active.info.run_id) if active is not None else None


#: MLflow's own HTTP retries (7, doubling from 2 s, 120 s timeout) would hold a task for minutes
#: when the server is down; around our calls they are short unless the user set them. (Set in
#: os.environ for the duration of our calls: MLflow reads them there on every request.)
_SHORT_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
               # set_terminated otherwise prints "View run …" on stdout (the task's log).
               "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
_short_lock = threading.Lock()
_short_users = 0
_short_saved: dict[str, str | None] = {}


@contextlib.contextmanager
def _short_http_retries() -> Iterator[None]:
    global _short_users
    with _short_lock:
        if _short_users == 0:
            for name, value in _SHORT_HTTP.items():
                _short_saved[name] = os.environ.get(name)
                os.environ.setdefault(name, value)
        _short_users += 1
    try:
        yield
    finally:
        with _short_lock:
            _short_users -= 1
            if _short_users == 0:
                for name, old in _short_saved.items():
                    if old is None:
                        os.environ.pop(name, None)
                _short_saved.clear()


class _Calls:
    """Retrying MLflow calls that never raise: failures are recorded in ``errors``."""

    def __init__(self, label: str, secrets: tuple[str, ...]) -> None:
        self.label = label
        self.secrets = secrets
        self.errors: list[str] = []

    def __call__(self, what: str, fn: Callable[[], Any]) -> tuple[bool, Any]:
        pause = RETRY_PAUSE_S
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with _short_http_retries():
                    return True, fn()
            except Exception as exc:
                code = getattr(exc, "error_code", None)
                reason = scrub(f"{type(exc).__name__}: {exc}", self.secrets)[:300]
                if attempt == ATTEMPTS or code in _PERMANENT:
                    self.errors.append(f"{what}: {reason}")
                    log.warning("MLflow: %s failed for %s (attempt %d): %s", what, self.label,
                                attempt, reason)
                    return False, None
                time.sleep(pause)
                pause *= 2
        return False, None  # pragma: no cover - the loop always returns


class MlflowObserver:
    """Core observer that mirrors one Domino job run into MLflow. Never raises."""

    def __init__(self, info: LineageInfo, tracking_uri: str, experiment: str, *,
                 project: str | None = None, secrets: tuple[str, ...] = (),
                 namespace: str | None = None, spool_dir: Path | None = None,
                 find_only: bool = False) -> None:
        self.info = info
        #: Only close a run that exists (a wait that knows nothing but the job id): never create.
        self.find_only = find_only
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.project = project
        self.secrets = secrets
        self.namespace = namespace
        self.spool_dir = spool_dir
        self.lineage_run_id = lineage_run_id(info)
        self.lines: deque[str] = deque(maxlen=MAX_STDOUT_LINES)
        self.run_id: str | None = None
        #: False once the tracking server was found unreachable: calls are skipped, the close
        #: is spooled.
        self.enabled = True
        self.calls = _Calls(info.job_name, secrets)
        self._client: Any = None
        self._experiment_id: str | None = None
        self._looked_up = False
        self._started = time.monotonic()
        self._finished = False
        self.spooled: Path | None = None
        #: Metrics and params the job reported (Pipes messages, ``reported.py``).
        self.reported = Reported()

    # --- helpers ---
    def _clean(self, value: Any) -> str:
        return scrub(str(value), self.secrets)

    def _connect(self) -> Any:
        if self._client is None and self.enabled:
            if not _healthy(self.tracking_uri):
                self.enabled = False
                self.calls.errors.append(f"tracking server {self.tracking_uri} unreachable")
                log.warning("MLflow tracking server %s unreachable; %s is not recorded now",
                            self.tracking_uri, self.info.job_name)
                return None
            try:
                with requires_extra("mlflow", "The MLflow sink"):
                    from mlflow import MlflowClient
            except MissingExtraError as exc:  # like an unreachable server: the job runs on
                self.enabled = False
                self.calls.errors.append(str(exc))
                log.warning("%s; %s is not recorded", exc, self.info.job_name)
                return None
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def base_tags(self, job_id: str | None) -> dict[str, str]:
        """Tags a run is created with: what finds it again and what explains where it is from."""
        tags: dict[str, Any] = {
            RUN_ID_TAG: self.lineage_run_id,
            JOB_ID_TAG: job_id,
            "mlflow.runName": self.info.job_name,
            "mlflow.source.type": "JOB",
            "mlflow.source.name": f"{self.info.orchestrator}:{self.info.job_name}",
            "mlflow.user": _user(),
            "orchestrator": self.info.orchestrator,
            "task": self.info.job_name,
            "run_key": "/".join(self.info.run_key),
            "domino.project": self.project,
            "openlineage.run_id": self.lineage_run_id,
            "openlineage.namespace": self.namespace,
            "openlineage.job_name": self.info.job_name,
            "mlflow.parentRunId": _active_parent_run(),
        }
        for key, value in self.info.tags.items():
            tags.setdefault(str(key), value)
        return {k: _cut_bytes(self._clean(v), MAX_TAG_BYTES) for k, v in tags.items() if v}

    def _open(self, job_id: str | None, *, reopen: bool) -> bool:
        """Find this run (by lineage id, else by Domino job id) or create it. ``reopen`` marks a
        run that a previous try closed as RUNNING again (a retry in progress)."""
        if self.run_id:
            return True
        client = self._connect()
        if client is None:
            return False
        ok, exp_id = self.calls("finding the experiment",
                                lambda: experiment_id(client, self.experiment))
        if not ok or exp_id is None:
            return False
        self._experiment_id = exp_id
        ok, found = self.calls("searching the run", lambda: find_run(
            client, exp_id, RUN_ID_TAG, self.lineage_run_id))
        if ok and found is None and job_id:
            ok, found = self.calls("searching the run by job id", lambda: find_run(
                client, exp_id, JOB_ID_TAG, job_id))
        if not ok:
            return False
        if found is not None:
            self.run_id = str(found.info.run_id)
            if reopen and found.info.status != "RUNNING":
                self.calls("reopening the run",
                           lambda: client.update_run(self.run_id, status="RUNNING"))
            return True
        if self.find_only:
            return False
        ok, run = self.calls("creating the run", lambda: client.create_run(
            exp_id, tags=self.base_tags(job_id), run_name=self.info.job_name))
        if ok:
            self.run_id = str(run.info.run_id)
        return ok

    def spec_params(self, spec: Any, snapshot: Any = None) -> dict[str, Any]:
        """What the user asked Domino for, as params (``None`` values are left out)."""
        command = user_command(getattr(spec, "command", None) or getattr(snapshot, "command", None))
        params: dict[str, Any] = {
            "command": command,
            "title": getattr(spec, "title", None) or getattr(snapshot, "title", None),
            "hardware_tier": getattr(spec, "hardware_tier_name", None)
            or getattr(spec, "hardware_tier_id", None) or getattr(spec, "tier", None),
            "environment_id": getattr(spec, "environment_id", None),
            "commit_id": getattr(spec, "commit_id", None),
            "branch": getattr(spec, "branch", None),
        }
        if hasattr(spec, "is_direct"):
            params["is_direct"] = str(bool(spec.is_direct)).lower()
        for name in ("main_repo_git_ref", "compute_cluster_properties",
                     "on_demand_spark_cluster_properties", "external_volume_mounts"):
            value = getattr(spec, name, None)
            if value:
                params[name] = json.dumps(value, sort_keys=True, default=str)
        return params

    def _log(self, params: Mapping[str, Any], tags: Mapping[str, Any],
             metrics: Mapping[str, tuple[float, int]] | None = None) -> bool:
        """One ``log_batch``: new params (MLflow params are immutable, so a retry keeps the
        first value), tags (overwritten) and metrics. Over-long params are cut, kept whole in a
        tag: nothing here can make the batch fail."""
        from mlflow.entities import Metric, Param, RunTag

        client, run_id = self._client, self.run_id
        existing: dict[str, str] = {}
        if params:
            ok, run = self.calls("reading the run", lambda: client.get_run(run_id))
            existing = dict(run.data.params) if ok else {}
        new_params, all_tags = [], dict(tags)
        for key, value in params.items():
            if value is None or value == "" or key in existing:
                continue
            text = self._clean(value)
            if len(text) > MAX_PARAM:
                all_tags[f"domino.param.{key}"] = text
                text = text[: MAX_PARAM - 1] + "…"
            new_params.append(Param(key, text))
        run_tags = [RunTag(k, _cut_bytes(self._clean(v), MAX_TAG_BYTES))
                    for k, v in all_tags.items() if v not in (None, "")]
        run_metrics = [Metric(k, v, ts, 0) for k, (v, ts) in (metrics or {}).items()]
        ok, _ = self.calls("logging params and tags", lambda: client.log_batch(
            run_id, params=new_params, tags=run_tags, metrics=run_metrics))
        full_command = params.get("command")
        if ok and isinstance(full_command, str) and len(full_command) > MAX_PARAM \
                and "command" not in existing:
            self.calls("logging command.txt", lambda: client.log_text(
                run_id, self._clean(full_command), "command.txt"))
        return ok

    # --- core observer protocol ---
    def on_submitted(self, handle: Any, spec: Any) -> None:
        """Find or create this task run's MLflow run and record the Domino job in it."""
        self._started = time.monotonic()
        job_id = getattr(handle, "job_id", None)
        if not self._open(job_id, reopen=True):
            return
        url = getattr(handle, "url", None)
        commit = getattr(spec, "commit_id", None)
        tags = {
            JOB_ID_TAG: job_id,
            "domino.job_url": url,
            "domino.attached": "true" if getattr(handle, "attached", False) else None,
            "mlflow.source.git.commit": commit,
            "mlflow.note.content": _note(self.info, job_id, url),
        }
        self._log(self.spec_params(spec), tags)

    def on_status(self, snapshot: Any) -> None:
        """At the first poll, find the job's run (an observer that only waits, in another process)."""
        # A fresh observer that only waits (another process) finds the run as soon as it can.
        if not self.run_id and not self._looked_up and self.enabled:
            self._looked_up = True
            self._open(getattr(snapshot, "job_id", None), reopen=False)

    def on_line(self, line: Any) -> None:
        """Keep the output for the ``stdout.txt`` artifact."""
        if getattr(line, "stream", "stdout") != "setup":
            self.lines.append(str(getattr(line, "text", line)))

    def on_message(self, message: Any) -> None:
        """A job's own report: its metrics and params go into this run when it closes."""
        self.reported.add(message)

    def on_finished(self, snapshot: Any, error: BaseException | None) -> None:
        """Close the run with Domino's final status and times (spooled if MLflow is down)."""
        if self._finished:
            return
        self._finished = True
        stopped = getattr(error, "snapshot", None)  # a timed-out job that was stopped
        if stopped is not None and getattr(stopped, "completed_at", None):
            snapshot = stopped
        record = self.close_record(snapshot, error)
        if (self.find_only and self.run_id is None and self._connect() is not None
                and not self._open(record["job_id"], reopen=False) and not self.calls.errors):
            return  # no run recorded this job: nothing to close
        if not (self.enabled and _healthy(self.tracking_uri)):
            self.calls.errors.append(f"tracking server {self.tracking_uri} unreachable")
        elif self._connect() is not None and self._close(record):
            return
        self.spooled = _spool(self.spool_dir, record)
        log.warning("MLflow run of %s (Domino job %s) could not be closed now (%s); %s",
                    self.info.job_name, record["job_id"], "; ".join(self.calls.errors) or "?",
                    f"spooled to {self.spooled}, delivered by `domino-orchestrate lineage flush`"
                    if self.spooled else "no spool directory, it stays RUNNING")

    def close_record(self, snapshot: Any, error: BaseException | None) -> dict[str, Any]:
        """Everything the close writes, as plain JSON data (so it can be spooled and replayed)."""
        started, completed = (getattr(snapshot, "started_at", None),
                              getattr(snapshot, "completed_at", None))
        submitted = getattr(snapshot, "submitted_at", None)
        if started and completed:
            duration = max(0.0, (completed - started).total_seconds())
        else:
            duration = getattr(snapshot, "duration_s", None)
            if duration is None:
                duration = time.monotonic() - self._started
        end_ms = _ms(completed) or int(time.time() * 1000)
        lines = list(self.lines) or [str(x) for x in getattr(error, "stdout_tail", None) or []]
        job_id = getattr(snapshot, "job_id", None)
        url = getattr(snapshot, "url", None)
        tags = {
            JOB_ID_TAG: job_id,
            "domino.job_url": url,
            "domino.status": getattr(snapshot, "raw_status", None)
            or (type(error).__name__ if error else None),
            "domino.hardware_tier": getattr(snapshot, "hardware_tier", None),
            "domino.commit_id": getattr(snapshot, "commit_id", None),
            "mlflow.source.git.commit": getattr(snapshot, "commit_id", None),
            "domino.output_commit_id": getattr(snapshot, "output_commit_id", None),
            "domino.submitted_at": _iso(submitted),
            "domino.started_at": _iso(started),
            "domino.completed_at": _iso(completed),
            "domino.failure_message": getattr(snapshot, "failure_message", None),
            "domino.error": f"{type(error).__name__}: {error}" if error is not None
            and snapshot is None else None,
            "mlflow.note.content": _note(self.info, job_id, url) if job_id else None,
        }
        return {
            "version": 1,
            "tracking_uri": self.tracking_uri,
            "experiment": self.experiment,
            "lineage_run_id": self.lineage_run_id,
            "run_id": self.run_id,
            "job_id": job_id,
            "status": mlflow_status(snapshot, error),
            "end_time_ms": end_ms,
            "duration_s": float(duration),
            "tags": {k: self._clean(v) for k, v in tags.items() if v},
            "base_tags": self.base_tags(job_id),
            "params": {k: self._clean(v) for k, v in {
                **self.reported.params, **self.spec_params(None, snapshot)}.items() if v},
            "metrics": dict(self.reported.metrics),
            "stdout": scrub("\n".join(lines) + ("\n" if lines else ""), self.secrets),
        }

    def _close(self, record: dict[str, Any]) -> bool:
        """Write ``record`` and end the run; True once the run is no longer RUNNING."""
        if not self._open(record["job_id"], reopen=False):
            return False
        client, run_id = self._client, self.run_id
        metrics = {name: (value, record["end_time_ms"])
                   for name, value in (record.get("metrics") or {}).items()}
        metrics["duration_s"] = (record["duration_s"], record["end_time_ms"])
        self._log(record["params"], record["tags"], metrics)
        self.calls("logging stdout.txt", lambda: client.log_text(
            run_id, record["stdout"], "stdout.txt"))
        if self.calls.errors:
            # Something was not recorded: the run says so, it does not just look complete.
            self.calls("recording the sink error", lambda: client.set_tag(
                run_id, SINK_ERROR_TAG, _cut_bytes(
                    self._clean("; ".join(self.calls.errors)), MAX_TAG_BYTES)))
        ok, _ = self.calls("ending the run", lambda: client.set_terminated(
            run_id, record["status"], end_time=record["end_time_ms"]))
        return ok


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:
        return None


def _note(info: LineageInfo, job_id: str | None, url: str | None) -> str:
    link = f"[{job_id}]({url})" if url else str(job_id)
    return (f"Domino job {link}, started by {info.orchestrator} task `{info.job_name}` "
            f"(domino-orchestrate).")


def _spool(spool_dir: Path | None, record: dict[str, Any]) -> Path | None:
    if spool_dir is None:
        return None
    try:
        spool_dir.mkdir(parents=True, exist_ok=True)
        name = f"{record['lineage_run_id']}-{record['job_id'] or 'nojob'}.json"
        path = spool_dir / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(path)
        return path
    except OSError as exc:
        log.warning("MLflow close could not be spooled: %s", exc)
        return None


class _Replay(MlflowObserver):
    """An observer rebuilt from a spooled close record."""

    def __init__(self, record: dict[str, Any]) -> None:
        from . import LineageInfo

        tags = record.get("base_tags") or {}
        info = LineageInfo(tags.get("orchestrator", "?"), tags.get("task", "?"),
                           tuple((tags.get("run_key") or "").split("/")))
        super().__init__(info, record["tracking_uri"], record["experiment"])
        self.lineage_run_id = record["lineage_run_id"]
        self.run_id = record.get("run_id")
        self._record = record

    def base_tags(self, job_id: str | None) -> dict[str, str]:
        return dict(self._record.get("base_tags") or {})


def flush_mlflow_spool(spool_dir: Path) -> tuple[int, int]:
    """Close the MLflow runs whose close was spooled; returns ``(delivered, remaining)``."""
    if not spool_dir.is_dir():
        return 0, 0
    delivered = remaining = 0
    for path in sorted(spool_dir.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            remaining += 1
            continue
        replay = _Replay(record)
        if replay._connect() is not None and replay._close(record):
            path.unlink(missing_ok=True)
            delivered += 1
        else:
            remaining += 1
    return delivered, remaining
