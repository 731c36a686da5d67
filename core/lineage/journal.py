"""The job journal: which lineage run a Domino job belongs to, readable from another process.

A wait often runs where the start did not: a second Prefect task (another worker process), the
Airflow triggerer, a Dagster step re-run, ``domino-orchestrate logs --follow``. To end the *same*
lineage run (same run id, parent, datasets and submission facts such as the commit id), the
observers that saw the start write one small JSON file per Domino job,
``<spool>/jobs/<job id>.json``, and ``lineage_observers_for_job`` reads it back. The spool
directory is ``DOMINO_ORCHESTRATE_LINEAGE_SPOOL`` (default
``~/.cache/domino-orchestrate/lineage-spool``): processes on one machine, or machines sharing that
directory, find each other's jobs. Elsewhere the MLflow run's tags (``openlineage.run_id`` and
friends) name the lineage run instead (``mlflow_sink``).

Also kept here: the once-per-parent markers (``<spool>/parents/``) that make the orchestrator
run's own START go out once, however many jobs and processes the run has (``parents.py``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import LineageInfo
    from .events import DominoFacts

__all__ = [
    "JOURNAL_DIR",
    "PARENTS_DIR",
    "info_from_dict",
    "info_to_dict",
    "lookup_job",
    "mark_once",
    "marked",
    "record_job",
]

log = logging.getLogger("domino_orchestrate.lineage")

#: Sub-directories of the spool directory that hold no events (``flush_spool`` skips them).
JOURNAL_DIR = "jobs"
PARENTS_DIR = "parents"
#: Journal entries and markers older than this are removed now and then.
KEEP_S = 14 * 24 * 3600
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def info_to_dict(info: LineageInfo) -> dict[str, Any]:
    """``LineageInfo`` as JSON-safe primitives (``info_from_dict`` reads it back)."""
    parent = info.parent
    return {
        "orchestrator": info.orchestrator,
        "job_name": info.job_name,
        "run_key": list(info.run_key),
        "parent": None if parent is None else {
            "namespace": parent.namespace, "name": parent.name, "run_id": parent.run_id,
            "root_namespace": parent.root_namespace, "root_name": parent.root_name,
            "root_run_id": parent.root_run_id,
        },
        "inputs": [[d.namespace, d.name] for d in info.inputs],
        "outputs": [[d.namespace, d.name] for d in info.outputs],
        "nominal_time": info.nominal_time.isoformat() if info.nominal_time else None,
        "tags": dict(info.tags),
    }


def info_from_dict(data: Mapping[str, Any]) -> LineageInfo:
    """The ``LineageInfo`` that ``info_to_dict`` wrote."""
    from . import Dataset, LineageInfo, ParentRun

    parent = data.get("parent")
    nominal = data.get("nominal_time")
    return LineageInfo(
        orchestrator=str(data["orchestrator"]),
        job_name=str(data["job_name"]),
        run_key=tuple(str(p) for p in data["run_key"]),
        parent=None if not parent else ParentRun(**parent),
        inputs=tuple(Dataset(ns, name) for ns, name in data.get("inputs") or ()),
        outputs=tuple(Dataset(ns, name) for ns, name in data.get("outputs") or ()),
        nominal_time=datetime.fromisoformat(nominal) if nominal else None,
        tags={str(k): str(v) for k, v in (data.get("tags") or {}).items()},
    )


def _path(spool_dir: Path, job_id: str) -> Path:
    return spool_dir / JOURNAL_DIR / f"{_SAFE.sub('_', job_id)}.json"


def record_job(spool_dir: Path, job_id: str, info: LineageInfo, namespace: str,
               facts: DominoFacts | None = None) -> Path | None:
    """Write the journal entry of ``job_id`` (atomically); None when the disk refuses."""
    path = _path(spool_dir, job_id)
    data = {"version": 1, "job_id": job_id, "namespace": namespace, "info": info_to_dict(info),
            "facts": facts.to_dict() if facts is not None else {}}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, sort_keys=True))
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("Lineage journal entry for Domino job %s not written: %s", job_id, exc)
        return None
    _prune(path.parent)
    return path


def lookup_job(spool_dir: Path, job_id: str) -> tuple[LineageInfo, str, DominoFacts] | None:
    """(lineage info, job namespace, submission facts) recorded for ``job_id``, or None."""
    from .events import DominoFacts

    try:
        data = json.loads(_path(spool_dir, job_id).read_text())
        return (info_from_dict(data["info"]), str(data["namespace"]),
                DominoFacts.from_dict(data.get("facts")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("Lineage journal entry for Domino job %s unreadable: %s", job_id, exc)
        return None


def mark_once(spool_dir: Path, name: str) -> bool:
    """Create the marker ``name`` unless it exists: True for exactly one caller (O_EXCL), also
    across processes sharing the spool directory. True as well when markers cannot be written
    (better a repeated event than a missing one)."""
    directory = spool_dir / PARENTS_DIR
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / _SAFE.sub("_", name), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    except OSError as exc:
        log.debug("Lineage marker %s not written (%s); sending anyway", name, exc)
        return True
    os.close(fd)
    _prune(directory)
    return True


def marked(spool_dir: Path, name: str) -> bool:
    """True when the marker ``name`` exists."""
    return (spool_dir / PARENTS_DIR / _SAFE.sub("_", name)).exists()


_last_prune: dict[Path, float] = {}


def _prune(directory: Path) -> None:
    """Remove entries older than ``KEEP_S`` (at most once an hour per directory)."""
    now = time.time()
    if now - _last_prune.get(directory, 0.0) < 3600:
        return
    _last_prune[directory] = now
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            with contextlib.suppress(OSError):
                if now - entry.stat().st_mtime > KEEP_S:
                    os.unlink(entry.path)
