"""One identity and lifecycle rule for every integration: when a start reattaches, when it is fresh.

An orchestrator asks for a Domino job on behalf of a unit of work (an Airflow task instance, a
Prefect task run, a Dagster step). ``ExecutionIdentity`` names that unit in the orchestrator's own
terms and turns it into the idempotency key that rides in the job's title:

* ``scope`` — what the unit is (DAG/task/run/map index, root flow run/stable task name,
  run chain/step/partition). Stays the same across automatic retries.
* ``generation`` — changes when a user deliberately runs the unit again (Airflow clear, Dagster
  "re-execute all steps"). A new generation is a new key, so it always starts fresh.
* what is started and where: the spec's fingerprint, the host and the project. A changed
  command/spec/project/host is a different job.

With the same key, ``reusable`` decides: a job still running, or one that succeeded without the
orchestrator seeing it (a crash between the end and the record), is reattached; a job that ended
Failed/Error/Stopped, or is being stopped, is not — a new one is started. ``Recorded`` adds the
orchestrator's own record of a job it started earlier (Dagster metadata, an Airflow XCom): a
record that no longer exists in Domino is forgotten, never an error.

| action | result |
|---|---|
| automatic retry after a crash or a raise after the start | reattach (running / succeeded unseen) |
| same key, earlier job Failed/Error/Stopped/stopping | fresh |
| Airflow clear, Dagster all-steps re-execution (new generation) | fresh |
| changed command, spec, project or host | fresh |
| recorded job that no longer exists | fresh |
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .status import JobStatus

if TYPE_CHECKING:
    from .config import DominoConfig
    from .models import JobSnapshot, JobSpec, RunSpec

__all__ = ["ExecutionIdentity", "idempotency_key", "reusable", "spec_fingerprint"]

#: States of a job that is on its way out: never reattached to, even if not terminal yet.
_STOPPING = frozenset({
    JobStatus.STOP_REQUESTED, JobStatus.STOP_AND_DISCARD_REQUESTED, JobStatus.STOPPING,
})


def idempotency_key(*parts: object) -> str:
    """A stable key from an orchestrator's identity of a task try (e.g. dag, task, run, map index)."""
    joined = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(joined.encode()).hexdigest()[:20]


def spec_fingerprint(spec: JobSpec | RunSpec | Mapping[str, Any] | None) -> str:
    """A short digest of what is started: a changed command or setting is a different job."""
    if spec is None:
        return "-"
    data = spec if isinstance(spec, Mapping) else spec.to_dict()
    blob = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def reusable(snapshot: JobSnapshot) -> bool:
    """Whether a job started earlier under the same key may answer this start."""
    status = snapshot.status
    if status.is_terminal:
        return status.is_success
    return status not in _STOPPING


@dataclass(frozen=True)
class ExecutionIdentity:
    """The orchestrator's unit of work, as one key (see the module docstring for the rule)."""

    orchestrator: str
    scope: tuple[str, ...]
    generation: str = "0"

    def key(self, spec: JobSpec | RunSpec | Mapping[str, Any] | None,
            config: DominoConfig | None = None) -> str:
        """The idempotency key of this unit of work starting ``spec`` against ``config``'s host and project.

        The same scope, generation, spec and place give the same key (a retry reattaches); any change
        gives a new key (a fresh job).
        """
        where = (config.host, config.project or "") if config is not None else ("", "")
        return idempotency_key(
            self.orchestrator, *self.scope, f"gen={self.generation}", spec_fingerprint(spec), *where
        )
