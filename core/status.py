"""Domino execution statuses: the only module that knows Domino's status strings.

v1 run ``status`` and v4 ``statuses.executionStatus`` use the same strings (domino-api.md §2.4).
``Stopped`` and ``Error`` are failures here; the official client lets them pass as success (§3.2).
An unknown string maps to ``UNKNOWN``: non-terminal by itself, never a crash. Whether an execution
with an unknown status has finished is decided by Domino's ``isCompleted`` flag
(``JobSnapshot.is_terminal``); such a finished execution is never counted a success.
"""

from __future__ import annotations

import re
from enum import Enum

__all__ = ["JobStatus"]


class JobStatus(str, Enum):
    """A Domino job's or run's status, as Domino spells it (``JobStatus.SUCCEEDED == "Succeeded"``).

    ``Succeeded`` is the only success; ``Failed``, ``Error`` and ``Stopped`` are failures; a
    status the client does not know is ``UNKNOWN``.
    """
    QUEUED = "Queued"
    SCHEDULED = "Scheduled"
    PENDING = "Pending"
    PREPARING = "Preparing"
    BUILDING = "Building"
    PULLING = "Pulling"
    RUNNING = "Running"
    SERVING = "Serving"
    STOP_REQUESTED = "StopRequested"
    STOP_AND_DISCARD_REQUESTED = "StopAndDiscardRequested"
    STOPPING = "Stopping"
    FINISHING = "Finishing"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    STOPPED = "Stopped"
    ERROR = "Error"
    UNKNOWN = "Unknown"

    @classmethod
    def parse(cls, value: object) -> JobStatus:
        """Map a Domino status string to a member; anything unrecognised is ``UNKNOWN``.

        Case, surrounding whitespace and word separators are ignored (``" succeeded "``,
        ``"Stop_Requested"``), so a reformatted known status is never mistaken for an unknown one.
        """
        if isinstance(value, str):
            return _BY_KEY.get(_key(value), cls.UNKNOWN)
        return cls.UNKNOWN

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_success(self) -> bool:
        return self is JobStatus.SUCCEEDED

    @property
    def is_failure(self) -> bool:
        return self in _TERMINAL and self is not JobStatus.SUCCEEDED

    @property
    def has_started(self) -> bool:
        """True once the command runs or has run, i.e. stdout may exist."""
        return self in _STARTED or self in _TERMINAL

    def __str__(self) -> str:
        return self.value


_TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.ERROR})
_STARTED = frozenset(
    {
        JobStatus.RUNNING,
        JobStatus.SERVING,
        JobStatus.STOP_REQUESTED,
        JobStatus.STOP_AND_DISCARD_REQUESTED,
        JobStatus.STOPPING,
        JobStatus.FINISHING,
    }
)


def _key(value: str) -> str:
    return re.sub(r"[\s_-]+", "", value).casefold()


_BY_KEY = {_key(member.value): member for member in JobStatus}
