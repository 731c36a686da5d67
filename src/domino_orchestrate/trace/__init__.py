"""mltrace-style queries over our lineage: an embedded store, CLI, Python API and web page.

    from domino_orchestrate.trace import LineageStore

    store = LineageStore()                      # SQLite at $XDG_DATA_HOME/domino-orchestrate/
    store.import_files(["lineage.jsonl"])       # or let jobs write to it (DominoStoreTransport)
    root = store.trace("s3://bucket/report.csv")
    for finding in store.stale():
        print(finding.reason)

Modules: ``model`` (what the store answers with), ``events`` (reading RunEvents, folding a run),
``schema`` (location, engine, tables), ``store`` (ingest and queries), ``render`` (DOT, Mermaid,
terminal tree), ``transport`` (the OpenLineage transport), ``cli`` (``domino-orchestrate
lineage``), ``web`` (``lineage serve``), ``errors``. Importing this package imports none of them
(nor SQLAlchemy): names load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from domino_orchestrate.core.extras import requires_extra

if TYPE_CHECKING:
    from .errors import (
        InvalidEventError,
        LineageStoreError,
        NotFoundError,
        StoreConfigError,
        StoreUnavailableError,
        UnknownComponentError,
        UnknownOutputError,
        UnknownRunError,
    )
    from .model import (
        ComponentRun,
        DatasetRef,
        FlaggedOutput,
        IngestResult,
        ReviewEntry,
        StaleFinding,
        TraceNode,
    )
    from .store import LineageStore
    from .transport import DominoStoreTransport

__all__ = [
    "ComponentRun",
    "DatasetRef",
    "DominoStoreTransport",
    "FlaggedOutput",
    "IngestResult",
    "InvalidEventError",
    "LineageStore",
    "LineageStoreError",
    "NotFoundError",
    "ReviewEntry",
    "StaleFinding",
    "StoreConfigError",
    "StoreUnavailableError",
    "TraceNode",
    "UnknownComponentError",
    "UnknownOutputError",
    "UnknownRunError",
]

_WHERE = {
    "LineageStore": "store", "DominoStoreTransport": "transport",
    **{name: "model" for name in ("ComponentRun", "DatasetRef", "FlaggedOutput", "IngestResult",
                                  "ReviewEntry", "StaleFinding", "TraceNode")},
    **{name: "errors" for name in ("InvalidEventError", "LineageStoreError", "NotFoundError",
                                   "StoreConfigError", "StoreUnavailableError",
                                   "UnknownComponentError", "UnknownOutputError",
                                   "UnknownRunError")},
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with requires_extra("store", f"{__name__}.{name}"):  # SQLAlchemy & co. come with [store]
        return getattr(importlib.import_module(f".{module}", __name__), name)
