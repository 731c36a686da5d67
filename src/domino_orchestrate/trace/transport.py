"""An OpenLineage transport that writes events straight into the lineage store.

Configure it like any openlineage-python transport::

    # openlineage.yml
    transport:
      type: domino_store            # or the dotted path, which works in any process:
      # type: domino_orchestrate.trace.transport.DominoStoreTransport
      store: /data/lineage.db       # optional: a path or SQLAlchemy URL; default as LineageStore

or by environment: ``OPENLINEAGE__TRANSPORT__TYPE=domino_store`` (plus
``OPENLINEAGE__TRANSPORT__STORE=…``), or simply ``DOMINO_ORCHESTRATE_LINEAGE_STORE=…``, which
makes domino-orchestrate's own emitter write to that store (beside any other destination).

openlineage-python finds a transport by its ``type``: a registered kind, else a dotted class
path it imports. ``domino_store`` is registered by name when this module is imported, and
``domino_orchestrate.core.lineage.transports`` registers the name (lazily, as a dotted path) so
our emitter resolves it without importing SQLAlchemy until a store is configured.

A malformed event is logged and dropped (re-sending it could never succeed); a store that does
not answer raises, so a spooling wrapper keeps the event and re-sends it later.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import attr
from openlineage.client.serde import Serde
from openlineage.client.transport import Config, Transport, register_transport

from .errors import InvalidEventError

__all__ = ["DominoStoreConfig", "DominoStoreTransport"]

log = logging.getLogger("domino_orchestrate.trace")


@attr.define
class DominoStoreConfig(Config):
    """``store``: a path or SQLAlchemy URL; ``None``: the store ``LineageStore()`` opens."""

    store: str | None = attr.field(default=None, repr=False)  # a URL may hold a password

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> DominoStoreConfig:
        """From openlineage.yml / ``OPENLINEAGE__TRANSPORT__*`` (``store``, alias ``url``)."""
        store = params.get("store") or params.get("url")
        return cls(store=str(store) if store else None)


def _as_dict(event: Any) -> dict[str, Any]:
    return event if isinstance(event, dict) else Serde.to_dict(event)


@register_transport
class DominoStoreTransport(Transport):
    """Writes each RunEvent into the lineage store (``emit``), or many at once (``emit_batch``)."""

    kind = "domino_store"
    config_class = DominoStoreConfig

    def __init__(self, config: DominoStoreConfig) -> None:
        self.config = config
        self._store: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "<DominoStoreTransport>"

    @property
    def store(self) -> Any:
        """The ``LineageStore`` (opened on first use, so configuring costs nothing)."""
        with self._lock:
            if self._store is None:
                from .store import LineageStore

                self._store = LineageStore(self.config.store)
            return self._store

    def emit(self, event: Any) -> None:
        """Store one event (RunEvent object or dict)."""
        self.emit_batch([event])

    def emit_batch(self, events: Sequence[Any]) -> None:
        """Store events in one transaction; malformed ones are logged and dropped."""
        try:
            result = self.store.ingest_many([_as_dict(e) for e in events], skip_invalid=True,
                                            source="emitted event")
        except InvalidEventError as exc:  # pragma: no cover - skip_invalid collects them
            log.warning("Lineage event dropped by the store: %s", exc)
            return
        for problem in result.invalid:
            log.warning("Lineage event dropped by the store: %s", problem)

    def close(self, timeout: float = -1) -> bool:
        """Release the store's connections."""
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
        return True
