"""``airflow_local_settings`` of the deployment tests' Airflow (copied to AIRFLOW_HOME/config).

Four processes (scheduler, dag-processor, triggerer, api-server) share one SQLite file. SQLite lets
one connection write at a time; a connection that waits for the write lock is retried by the busy
handler for ``timeout`` seconds (``connect_args``, wired in through ``[database]
sql_alchemy_connect_args``): Python's default of 5 s is too short on a loaded machine, where the
writer holding the lock may not get the CPU for that long.

The busy handler cannot help a transaction that *began as a reader* and then writes: SQLite
answers "database is locked" (SQLITE_BUSY_SNAPSHOT) at once if another process committed since its
snapshot was taken, however long the timeout. pysqlite opens a transaction only before an
INSERT/UPDATE/DELETE (so the first write takes the lock, and the busy handler applies) - except
for a SAVEPOINT, which SQLite runs as a deferred BEGIN. Airflow's backfill creation reads and then
clears/creates the DAG run inside ``session.begin_nested()``, so ``POST /backfills`` fails with
503 "Database is locked" whenever the scheduler or triggerer heartbeats in between.
``create_metadata_engine`` (Airflow's documented hook) starts such a transaction with
``BEGIN IMMEDIATE`` instead: it takes the write lock up front, waiting for it like any writer.

One wait must stay short: the api-server writes its audit log (``action_logging``, before a POST or
PATCH acts) on the event loop, while a request in its thread pool may hold the write lock until
its session commits in a teardown that the same, now blocked, event loop has to schedule. That
wait can only end by timing out, and it freezes the api-server meanwhile; on the event loop it is
given up after ``LOOP_BUSY_TIMEOUT_MS`` (the request fails with a 500 naming the audit-log INSERT,
having done nothing, so the tests' client repeats it).
"""

from __future__ import annotations

import asyncio
from typing import Any

# Only these names replace airflow.settings' own (import_local_settings copies every public name).
__all__ = ["create_metadata_engine"]

BUSY_TIMEOUT_S = 60.0
LOOP_BUSY_TIMEOUT_MS = 2000
connect_args: dict[str, Any] = {"timeout": BUSY_TIMEOUT_S}  # [database] sql_alchemy_connect_args
connect_args_async: dict[str, Any] = {"timeout": BUSY_TIMEOUT_S}  # ..._async (aiosqlite)


def create_metadata_engine(sql_alchemy_conn: str, *, engine_args: dict[str, Any],
                           connect_args: dict[str, Any]) -> Any:
    from sqlalchemy import create_engine, event

    engine = create_engine(sql_alchemy_conn, connect_args=connect_args, **engine_args)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "savepoint")
        def _write_lock_before_savepoint(conn: Any, name: str | None) -> None:
            dbapi_connection = conn.connection.dbapi_connection
            if not dbapi_connection.in_transaction:
                dbapi_connection.execute("BEGIN IMMEDIATE")

        @event.listens_for(engine, "before_cursor_execute")
        def _short_wait_on_the_event_loop(conn: Any, *_args: Any) -> None:
            try:
                asyncio.get_running_loop()
                busy_ms = LOOP_BUSY_TIMEOUT_MS
            except RuntimeError:
                busy_ms = int(BUSY_TIMEOUT_S * 1000)
            info = conn.connection.info
            if info.get("busy_timeout_ms") != busy_ms:
                conn.connection.dbapi_connection.execute(f"PRAGMA busy_timeout = {busy_ms}")
                info["busy_timeout_ms"] = busy_ms
    return engine
