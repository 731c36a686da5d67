"""Frozen records exchanged with callers: what to start, what was started, what it looks like now.

Each record converts to and from plain dicts (``to_dict``/``from_dict``) so it can cross an
Airflow trigger boundary, an XCom, a Prefect result or Dagster metadata. No secrets live here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Literal

from .errors import ConfigurationError
from .status import JobStatus

__all__ = ["HardwareTier", "JobHandle", "JobSnapshot", "JobSpec", "LogLine", "PollOptions", "RunSpec"]

Kind = Literal["job", "run"]


@dataclass(frozen=True)
class JobSpec:
    """A v4 job to start (``POST /v4/jobs/start``, domino-api.md §2.3)."""

    command: str
    title: str | None = None
    hardware_tier_id: str | None = None
    hardware_tier_name: str | None = None
    environment_id: str | None = None
    commit_id: str | None = None
    branch: str | None = None
    #: ``{"type": "branches"|"tags"|"commitId", "value": str}``
    main_repo_git_ref: dict[str, str] | None = None
    on_demand_spark_cluster_properties: dict[str, Any] | None = None
    compute_cluster_properties: dict[str, Any] | None = None
    external_volume_mounts: list[str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.command, str) or not self.command.strip():
            raise ConfigurationError("JobSpec.command must be a non-empty string")
        if self.branch and (self.commit_id or self.main_repo_git_ref):
            raise ConfigurationError(
                "Pass only one of branch, commit_id or main_repo_git_ref (python-domino rule)"
            )
        if self.hardware_tier_id and self.hardware_tier_name:
            raise ConfigurationError("Pass hardware_tier_id or hardware_tier_name, not both")
        ref = self.main_repo_git_ref
        if ref is not None and (
            ref.get("type") not in {"branches", "tags", "commitId"} or not ref.get("value")
        ):
            raise ConfigurationError(
                "main_repo_git_ref must be {'type': 'branches'|'tags'|'commitId', 'value': str}"
            )

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of the fields, JSON-safe (what ``from_dict`` reads back)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        """A ``JobSpec`` from ``to_dict``'s output; unknown keys are ignored."""
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class RunSpec:
    """A v1 run to start (``POST /v1/projects/{owner}/{project}/runs``, §2.2)."""

    command: tuple[str, ...]
    #: ``None`` is sent as JSON null, as python-domino does for an unset ``isDirect``.
    is_direct: bool | None = False
    commit_id: str | None = None
    title: str | None = None
    tier: str | None = None
    publish_api_endpoint: bool | None = False

    def __post_init__(self) -> None:
        command = self.command
        if isinstance(command, str):
            command = (command,)
        if not command or not all(isinstance(part, str) and part for part in command):
            raise ConfigurationError("RunSpec.command must be a non-empty list of strings")
        object.__setattr__(self, "command", tuple(command))
        if self.is_direct and len(self.command) > 1:
            raise ConfigurationError(
                "With is_direct=True pass the whole shell command as one string (python-domino rule)"
            )

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of the fields, JSON-safe (what ``from_dict`` reads back)."""
        data = asdict(self)
        data["command"] = list(self.command)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        """A ``RunSpec`` from ``to_dict``'s output; unknown keys are ignored."""
        values = _known(cls, data)
        values["command"] = tuple(values.get("command", ()))
        return cls(**values)


@dataclass(frozen=True)
class JobHandle:
    """What was started: enough to follow, stop or reattach to it later, in any process."""

    job_id: str
    kind: Kind = "job"
    project: str | None = None
    url: str | None = None
    idempotency_key: str | None = None
    #: True when an earlier job with the same idempotency key was reused instead of starting one.
    attached: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of the fields, JSON-safe (what ``from_dict`` reads back)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobHandle:
        """A ``JobHandle`` from ``to_dict``'s output; unknown keys are ignored."""
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class HardwareTier:
    """A hardware tier of the project: its id, display name, and whether it is the default."""
    id: str
    name: str
    is_default: bool = False


@dataclass(frozen=True)
class LogLine:
    """One line of a job's output and the stream it came from (``stdout``, ``stderr`` or ``setup``)."""
    text: str
    stream: Literal["stdout", "stderr", "setup"] = "stdout"


@dataclass(frozen=True)
class JobSnapshot:
    """One observation of an execution, from a v4 job or a v1 run body."""

    job_id: str
    status: JobStatus
    raw_status: str
    kind: Kind = "job"
    number: int | None = None
    title: str | None = None
    command: str | None = None
    project_id: str | None = None
    url: str | None = None
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    output_commit_id: str | None = None
    hardware_tier: str | None = None
    failure_message: str | None = None
    #: The input commit the job ran from (v4 ``commitDetails.inputCommitId``, v1 ``commitId``).
    commit_id: str | None = None
    #: Domino's own "finished" flag (v4 ``statuses.isCompleted``, v1 ``isCompleted``), if sent.
    completed: bool | None = None

    @property
    def is_terminal(self) -> bool:
        """Finished: a terminal status, or a status we do not know that Domino marks completed.

        A known status is trusted over the flag (``Finishing`` with ``isCompleted`` still ends
        ``Succeeded`` or not). A completed job whose status we do not know is never a success:
        the verdict is conservative (see ``is_success``)."""
        if self.status is JobStatus.UNKNOWN:
            return self.completed is True
        return self.status.is_terminal

    @property
    def is_success(self) -> bool:
        return self.status.is_success

    @property
    def status_label(self) -> str:
        """The status as Domino wrote it, or ``unknown`` when it sent none."""
        return self.raw_status or "unknown"

    @property
    def duration_s(self) -> float | None:
        start = self.started_at or self.submitted_at
        if start and self.completed_at:
            return max(0.0, (self.completed_at - start).total_seconds())
        return None

    @classmethod
    def from_v4(cls, body: Any, url: str | None = None) -> JobSnapshot:
        """Read a v4 job (domino-api.md §2.3); ``ValueError`` names what is wrong with its shape.

        What decides behaviour (``id``, ``statuses`` and its ``executionStatus``) is checked
        strictly; ``isCompleted`` counts only as a boolean; descriptive fields of the wrong type
        are dropped."""
        body = _object(body, "a job")
        statuses = _object(body.get("statuses"), "'statuses'", optional=True)
        raw = _status(statuses.get("executionStatus"), "'statuses.executionStatus'")
        stage = _lenient_object(body.get("stageTime"))
        commits = _lenient_object(body.get("commitDetails"))
        tier = body.get("hardwareTier")
        if isinstance(tier, dict):
            tier = _text(tier.get("name")) or _text(tier.get("id"))
        return cls(
            job_id=_id(body.get("id"), "'id'"),
            status=JobStatus.parse(raw),
            raw_status=raw,
            kind="job",
            number=_int(body.get("number")),
            title=_text(body.get("title")),
            command=_text(body.get("jobRunCommand")),
            project_id=_text(body.get("projectId")),
            url=url,
            submitted_at=_when(stage.get("submissionTime")),
            started_at=_when(stage.get("runStartTime")),
            completed_at=_when(stage.get("completedTime")),
            output_commit_id=_text(commits.get("outputCommitId")),
            hardware_tier=_text(tier),
            failure_message=_text(body.get("runFailureMessage"))
            or _text(body.get("runFailureReason")),
            completed=_flag(statuses.get("isCompleted")),
            commit_id=_text(commits.get("inputCommitId")),
        )

    @classmethod
    def from_v1(cls, body: Any, url: str | None = None) -> JobSnapshot:
        """Read a v1 run (domino-api.md §2.2); same checking rules as ``from_v4``."""
        body = _object(body, "a run")
        raw = _status(body.get("status"), "'status'")
        command = body.get("command")
        if isinstance(command, list):
            command = " ".join(str(part) for part in command)
        return cls(
            job_id=_id(body.get("id"), "'id'"),
            status=JobStatus.parse(raw),
            raw_status=raw,
            kind="run",
            number=_int(body.get("number")),
            title=_text(body.get("title")),
            command=_text(command),
            project_id=_text(body.get("projectId")),
            url=url,
            submitted_at=_when(body.get("queued")),
            started_at=_when(body.get("started")),
            completed_at=_when(body.get("completed")),
            output_commit_id=_text(body.get("outputCommitId")),
            hardware_tier=_text(body.get("hardwareTierId")),
            completed=_flag(body.get("isCompleted")),
            commit_id=_text(body.get("commitId")),
        )

    def summary(self) -> dict[str, Any]:
        """A JSON-safe summary for XCom, artifacts and metadata (no secrets by construction)."""
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "status": self.status.value,
            "number": self.number,
            "title": self.title,
            "url": self.url,
            "hardware_tier": self.hardware_tier,
            "duration_s": self.duration_s,
            "output_commit_id": self.output_commit_id,
        }


@dataclass(frozen=True)
class PollOptions:
    """How to follow a job. Defaults and meanings follow python-domino (§3.1): 5 s, 6000 s, 5."""

    poll_freq: float = 5.0
    max_poll_time: float = 6000.0
    #: Consecutive transient failures tolerated while polling.
    retry_count: int = 5
    stream_logs: bool = True
    #: Seconds between stdout fetches while running. None: within the request budget (never
    #: more requests than python-domino's loop; see ``flows.RequestBudget``), the first about
    #: 6 x poll_freq in, then every 12 x poll_freq. Set, live fetches follow it whatever they
    #: cost. Domino resends the whole log on every fetch; the rest always arrives at the end.
    log_interval: float | None = None
    include_setup_log: bool = False
    #: With ``backoff``, where the one early poll of a just-started job falls (``initial_interval``
    #: grown by ``backoff`` while under 0.6 x poll_freq: 2.5 s by default), so short jobs return
    #: fast; then every ``poll_freq`` (see ``flows.PollSchedule``).
    initial_interval: float = 1.0
    backoff: float = 1.5
    stop_on_timeout: bool = True
    #: Stop the job when the wait is interrupted (KeyboardInterrupt, cancellation, a kill
    #: signal). Off for a follower that does not own the job, e.g. a restartable trigger.
    stop_on_interrupt: bool = True
    #: Bounded wait for a stop to be confirmed (terminal state seen).
    stop_timeout: float = 60.0
    tail_lines: int = 20
    #: The name timeout messages give the limit that fired. An integration that maps its own
    #: setting onto ``max_poll_time`` (e.g. Airflow's ``execution_timeout``) puts that name here.
    timeout_name: str = "max_poll_time"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.poll_freq <= 0:
            raise ConfigurationError("poll_freq must be > 0 seconds")
        if self.max_poll_time <= 0:
            raise ConfigurationError("max_poll_time must be > 0 seconds")
        if self.retry_count < 0:
            raise ConfigurationError("retry_count must be >= 0")
        if self.log_interval is not None and self.log_interval <= 0:
            raise ConfigurationError("log_interval must be > 0 seconds")

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of the fields, JSON-safe (what ``from_dict`` reads back)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PollOptions:
        """A ``PollOptions`` from ``to_dict``'s output; unknown keys are ignored."""
        return cls(**_known(cls, data))


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigurationError(f"Unknown {cls.__name__} field(s): {', '.join(sorted(unknown))}")
    return dict(data)


def _when(value: Any) -> datetime | None:
    """Domino gives epoch milliseconds (v4) or ISO-8601 strings (v1); nonsense reads as None."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value / 1000.0, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


# --- response shapes: strict where a value decides behaviour, lenient where it only describes --


def _kind(value: Any) -> str:
    return "null" if value is None else {dict: "an object", list: "a list", str: "a string",
                                         bool: "a boolean"}.get(type(value), "a number")


def _object(value: Any, what: str, optional: bool = False) -> dict[str, Any]:
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"expected {what} as a JSON object, got {_kind(value)}")
    return value


def _lenient_object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _id(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        raise ValueError(f"{what} must be a non-empty string, got {_kind(value)}")
    return str(value).strip()


def _status(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {_kind(value)}")
    return " ".join(value.split())


def _flag(value: Any) -> bool | None:
    # Only a real boolean counts: anything else leaves the verdict to the status string.
    return value if isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
