"""Deterministic lineage identities and the secret scrubber; no third-party imports.

``lineage_run_id`` is uuid5 of (orchestrator, run_key): every retry, reattach and re-sent event
of one orchestrator task run agrees on it, and so do the OpenLineage events, the env vars passed
into the Domino job and the MLflow run lookup tag.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from ..config import REDACTED
from ..config import redact as scrub

if TYPE_CHECKING:
    from . import LineageInfo

__all__ = ["REDACTED", "RUN_ID_NAMESPACE", "as_uuid", "lineage_run_id", "scrub"]

#: uuid5 namespace of every lineage run id we mint (stable forever: changing it breaks links).
RUN_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://domino-orchestrate/lineage-run")


def lineage_run_id(info: LineageInfo) -> str:
    """The lineage run id of one orchestrator task run: uuid5 of (orchestrator, run_key).

    ``run_key`` carries no try number, so every retry, reattach and re-sent event agrees.
    """
    return str(uuid.uuid5(RUN_ID_NAMESPACE, "\x1f".join([info.orchestrator, *info.run_key])))


def as_uuid(value: str) -> str:
    """``value`` if it is a UUID (normalised), else a stable uuid5 of it (the spec needs UUIDs;
    e.g. Airflow's dag run ids are not)."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return str(uuid.uuid5(RUN_ID_NAMESPACE, str(value)))


