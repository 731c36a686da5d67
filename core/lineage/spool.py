"""A directory of lineage events waiting to be delivered: one JSON file per event.

File names sort in emission order: ``<time_ns:020d>-<seq:06d>-<run_id>-<event_id>.json``.
A sender *claims* a file by renaming it to ``<name>.claimed-<pid>-<token>`` (an atomic rename, so
two processes never both send it), deletes it only after a successful send, and renames it back
(*releases* it) after a failed one. A claim left by a dead process is released again after
``stale_after`` seconds. So nothing is lost and nothing is delivered twice.

What must not live here: sending (``transports.py``) or building events (``events.py``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Spool", "SpooledEvent"]

log = logging.getLogger("domino_orchestrate.lineage")

_SUFFIX = ".json"
_CLAIM = ".claimed-"
_seq = itertools.count()
_clock_lock = threading.Lock()
_last_ns = 0


def _stamp() -> str:
    """A strictly increasing, sortable stamp within this process."""
    global _last_ns
    with _clock_lock:
        now = max(time.time_ns(), _last_ns + 1)
        _last_ns = now
    return f"{now:020d}-{next(_seq) % 1_000_000:06d}"


@dataclass(frozen=True)
class SpooledEvent:
    """A claimed spool file and its event (a JSON-ready dict)."""

    path: Path
    name: str
    run_id: str
    event: dict[str, Any]


class Spool:
    """One destination's spool directory."""

    def __init__(self, directory: str | os.PathLike[str], stale_after: float = 600.0) -> None:
        self.dir = Path(directory)
        self.stale_after = stale_after

    # --- writing ---
    def put(self, event: dict[str, Any]) -> Path:
        """Write one event durably (temp file, fsync, rename) and return its path."""
        self.dir.mkdir(parents=True, exist_ok=True)
        run_id = _run_id(event) or "none"
        name = f"{_stamp()}-{run_id}-{uuid.uuid4().hex[:12]}{_SUFFIX}"
        tmp = self.dir / f".{name}.tmp"
        data = json.dumps(event, sort_keys=True).encode()
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.dir / name)
        return self.dir / name

    # --- reading ---
    def pending(self) -> list[str]:
        """Names of unclaimed events, oldest first."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if n.endswith(_SUFFIX) and not n.startswith("."))

    def count(self) -> int:
        """Events not yet delivered, claimed or not."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return 0
        return sum(1 for n in names if not n.startswith(".") and (n.endswith(_SUFFIX) or _CLAIM in n))

    def has_run(self, run_id: str) -> bool:
        """True if any event of ``run_id`` waits (claimed or not): new ones must queue behind."""
        marker = f"-{run_id}-"
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return False
        return any(marker in n for n in names if not n.startswith("."))

    def claim(self, name: str) -> SpooledEvent | None:
        """Atomically take ``name``; None if another sender got it first or it is unreadable."""
        source = self.dir / name
        claimed = self.dir / f"{name}{_CLAIM}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(source, claimed)
        except FileNotFoundError:
            return None
        with contextlib.suppress(OSError):
            os.utime(claimed)  # the claim's age counts from now, not from the spooling
        try:
            event = json.loads(claimed.read_text())
        except (OSError, ValueError) as exc:
            log.error("Unreadable lineage spool file %s (%s); moved aside", claimed, exc)
            with contextlib.suppress(OSError):
                os.rename(claimed, self.dir / f".bad-{name}")
            return None
        return SpooledEvent(claimed, name, _run_id(event) or "none", event)

    def done(self, item: SpooledEvent) -> None:
        """The event was delivered: forget it."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(item.path)

    def release(self, item: SpooledEvent) -> None:
        """Delivery failed: put the event back under its original (ordered) name."""
        try:
            os.rename(item.path, self.dir / item.name)
        except FileNotFoundError:
            log.warning("Lineage spool claim %s vanished before release", item.path)

    def recover_stale(self) -> int:
        """Release claims older than ``stale_after`` (their sender died). Returns how many."""
        released = 0
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return 0
        now = time.time()
        for name in names:
            if _CLAIM not in name or name.startswith("."):
                continue
            path = self.dir / name
            try:
                if now - path.stat().st_mtime < self.stale_after:
                    continue
                os.rename(path, self.dir / name.split(_CLAIM, 1)[0])
                released += 1
            except FileNotFoundError:
                continue
        return released


def _run_id(event: dict[str, Any]) -> str | None:
    run = event.get("run") if isinstance(event, dict) else None
    value = run.get("runId") if isinstance(run, dict) else None
    return str(value) if value else None
