"""Where the lineage store lives and its tables: one schema for SQLite and PostgreSQL.

What lives here: resolving a location (argument, ``DOMINO_ORCHESTRATE_LINEAGE_STORE``, or the
default ``$XDG_DATA_HOME/domino-orchestrate/lineage.db``) to a SQLAlchemy URL, creating the
engine (SQLite in WAL mode, writers taking the lock up front so concurrent writers wait instead
of failing), and the SQLAlchemy Core tables.

Tables (``lineage_`` prefix so the store may share a database):

- ``lineage_events``: one row per distinct event (``event_hash``), the fields a run needs as
  compact JSON (``events.Fragment``); the truth from which each run is folded.
- ``lineage_runs``: each run folded from its events (``doc``: the run as JSON) with the columns
  queries sort and filter on.
- ``lineage_datasets``: a run's inputs and outputs, with the run's times copied in so that "the
  most recent earlier producer of X" is one index walk.
- ``lineage_tags``: tags added with ``tag`` (``source='user'``); the events' own tags are in
  ``lineage_runs.tags``.
- ``lineage_flags``: outputs flagged for review.

What must not live here: queries (``store.py``).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from domino_orchestrate.core.lineage.config import STORE_ENV  # a path or SQLAlchemy URL

from .errors import StoreConfigError

__all__ = [
    "SCHEMA_VERSION",
    "STORE_ENV",
    "datasets",
    "default_store_path",
    "events",
    "flags",
    "make_engine",
    "metadata",
    "resolve_url",
    "runs",
    "safe_url",
    "tags",
]

SCHEMA_VERSION = 1

metadata = MetaData()

events = Table(
    "lineage_events", metadata,
    Column("event_hash", String(64), primary_key=True),
    Column("run_id", String, nullable=False, index=True),
    Column("namespace", String, nullable=False),
    Column("component", String, nullable=False),
    Column("event_type", String(16), nullable=False),
    Column("event_time", DateTime, nullable=False),
    Column("fragment", Text, nullable=False),
)

runs = Table(
    "lineage_runs", metadata,
    Column("run_id", String, primary_key=True),
    Column("namespace", String, nullable=False),
    Column("component", String, nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", DateTime, nullable=False),
    Column("end_time", DateTime),
    Column("doc", Text, nullable=False),
    Column("tags", Text, nullable=False),  # the events' tags, \x1f-delimited (store._tag_text)
    Index("ix_lineage_runs_start", "start_time"),
    Index("ix_lineage_runs_component", "component", "start_time"),
    Index("ix_lineage_runs_key", "namespace", "component", "start_time"),
)

datasets = Table(
    "lineage_datasets", metadata,
    Column("run_id", String, primary_key=True),
    Column("direction", String(3), primary_key=True),  # "in" | "out"
    Column("namespace", String, primary_key=True),
    Column("name", String, primary_key=True),
    Column("version", String, primary_key=True),  # "" when unknown (primary keys are not null)
    Column("start_time", DateTime, nullable=False),  # the run's
    Column("ready_time", DateTime, nullable=False),  # the run's end, else its start
    Column("status", String(16), nullable=False),  # the run's
    Index("ix_lineage_datasets_producer", "direction", "namespace", "name", "start_time"),
    Index("ix_lineage_datasets_name", "direction", "name", "start_time"),
)

tags = Table(
    "lineage_tags", metadata,
    Column("run_id", String, primary_key=True),
    Column("tag", String, primary_key=True),
    Column("source", String(8), primary_key=True),  # "event" | "user"
    Index("ix_lineage_tags_tag", "tag"),
)

flags = Table(
    "lineage_flags", metadata,
    Column("namespace", String, primary_key=True),
    Column("name", String, primary_key=True),
    Column("flagged_at", DateTime, nullable=False),
)

meta = Table(
    "lineage_meta", metadata,
    Column("key", String(32), primary_key=True),
    Column("value", Integer, nullable=False),
)


def default_store_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/domino-orchestrate/lineage.db`` (``~/.local/share/…`` by default)."""
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local/share")
    return Path(base).expanduser() / "domino-orchestrate" / "lineage.db"


def resolve_url(location: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None) -> str:
    """The store's SQLAlchemy URL: ``location``, else ``$DOMINO_ORCHESTRATE_LINEAGE_STORE``, else
    the default path. A plain path means SQLite (its folder is created); ``postgresql://``
    means PostgreSQL through psycopg 3.

    Raises:
        StoreConfigError: not a path nor a SQLAlchemy URL of SQLite or PostgreSQL.
    """
    env = os.environ if env is None else env
    raw = os.fspath(location) if location is not None else (env.get(STORE_ENV) or "").strip()
    if not raw:
        raw = str(default_store_path(env))
    if "://" not in raw:
        path = Path(raw).expanduser().absolute()
        if path.is_dir():
            raise StoreConfigError(f"lineage store {str(path)!r} is a directory: give a file "
                                   "path (e.g. …/lineage.db) or a database URL")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreConfigError(f"cannot create the lineage store's folder {str(path.parent)!r}"
                                   f": {exc.strerror or exc}") from None
        return f"sqlite:///{path}"
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise StoreConfigError(
            "the lineage store location is neither a file path nor a database URL such as "
            "sqlite:////path/lineage.db or postgresql+psycopg://user@host/db") from None
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreConfigError(f"the lineage store runs on SQLite or PostgreSQL, not {backend!r} "
                               f"({safe_url(raw)})")
    if url.drivername == "postgresql":  # SQLAlchemy's default would be psycopg2; we ship psycopg 3
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparseable URL>"


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (from ``resolve_url``).

    SQLite: WAL (readers never block the writer), a 30 s busy timeout, and ``BEGIN IMMEDIATE``
    for transactions opened with ``execution_options(write=True)``, so two processes writing at
    once queue on the lock instead of one failing with "database is locked" halfway through.
    """
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            kwargs: dict[str, Any] = {"connect_args": {"timeout": BUSY_TIMEOUT_S,
                                                       "check_same_thread": False}}
            if parsed.database in (None, "", ":memory:"):
                kwargs["poolclass"] = StaticPool
            engine = create_engine(url, **kwargs)
            _sqlite_setup(engine)
        else:
            engine = create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        detail = str(exc)[:200]
        password = make_url(url).password
        if password:
            detail = detail.replace(str(password), "***")
        raise StoreConfigError(f"cannot open lineage store {safe_url(url)}: "
                               f"{type(exc).__name__}: {detail}") from None
    return engine


#: How long a SQLite connection waits for another writer's lock.
BUSY_TIMEOUT_S = 30


def _wal(cursor: Any) -> None:
    """Switch the database to WAL (a no-op once it is). SQLite does not wait on its busy timeout
    to change the journal mode: connections opening a new store at the same moment got
    "database is locked" at once. They wait here instead, as long as the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        _wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get("write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
