"""Fixtures for the lineage store tests: a real PostgreSQL 15 server (Debian's binaries) started
once per session, and ``store``: a fresh ``LineageStore`` on SQLite *and* on PostgreSQL.

PostgreSQL refuses to run as root, so when the tests run as root the server runs as the
``postgres`` system user (the Debian package creates it) in a temporary data directory it owns.
It listens on a free loopback port only, with durability off (a throwaway test database), and is
stopped by its PID in teardown. Missing binaries fail the fixture loudly: CI installs them.
Tests that use PostgreSQL share one xdist worker: ``xdist_group("postgres")``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..conftest import port_for_a_server

PG_BIN = Path(os.environ.get("DOMINO_ORCHESTRATE_PG_BIN", "/usr/lib/postgresql/15/bin"))


class PostgresServer:
    """A private PostgreSQL server: ``url(db)`` for SQLAlchemy, ``create_database()`` per test."""

    def __init__(self) -> None:
        for tool in ("initdb", "postgres"):
            if not (PG_BIN / tool).is_file():
                raise RuntimeError(
                    f"PostgreSQL server binaries not found in {PG_BIN} (apt-get install "
                    "postgresql-15, or set DOMINO_ORCHESTRATE_PG_BIN): the lineage store's "
                    "PostgreSQL tests need a real server")
        self.root = Path(tempfile.mkdtemp(prefix="lineage-pg-"))
        self.data = self.root / "data"
        self.port = port_for_a_server()  # below the ephemeral range: nothing takes it first
        self.user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            self.user = pwd.getpwnam("postgres")
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.root / "server.log"
        self.template = "template0"

    def _demote(self) -> None:  # runs in the child, before exec
        if self.user is not None:
            os.setgid(self.user.pw_gid)
            os.setgroups([])
            os.setuid(self.user.pw_uid)

    def start(self) -> None:
        subprocess.run(
            [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
             "-E", "UTF8", "--locale=C", "--no-sync"],
            check=True, capture_output=True, preexec_fn=self._demote, cwd=self.root, timeout=120)
        log = open(self.log, "wb")  # noqa: SIM115 - the server writes to it until stop()
        self.process = subprocess.Popen(
            [str(PG_BIN / "postgres"), "-D", str(self.data), "-h", "127.0.0.1",
             "-p", str(self.port), "-k", str(self.root),
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=50", "-c", "shared_buffers=32MB"],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=self._demote,
            start_new_session=True, cwd=self.root)
        log.close()
        deadline = time.monotonic() + 60
        import psycopg

        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("PostgreSQL did not start:\n"
                                       + self.log.read_text(errors="replace")[-2000:]) from None
                time.sleep(0.1)

    def dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, template: str = "template0") -> str:
        import psycopg

        name = f"lineage_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
        return name

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGINT)  # "fast shutdown"
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL 15 server for the session (mark users ``xdist_group("postgres")``)."""
    from domino_orchestrate.trace.store import LineageStore

    server = PostgresServer()
    server.start()
    try:
        # The database the tests share (emptied before each), its tables made once.
        server.template = server.create_database()
        LineageStore(server.url(server.template)).close()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The session's store database, emptied (TRUNCATE is much faster than a new database)."""
    import psycopg

    from domino_orchestrate.trace import schema

    with psycopg.connect(postgres_server.dsn(postgres_server.template), autocommit=True) as conn:
        names = ", ".join(t.name for t in schema.metadata.sorted_tables if t is not schema.meta)
        conn.execute(f"TRUNCATE {names}")
    yield postgres_server.url(postgres_server.template)


@pytest.fixture
def empty_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A new database without any table."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql",
                                               marks=pytest.mark.xdist_group("postgres"))])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store's location, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "lineage.db")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Any]:
    """A fresh ``LineageStore`` on each backend."""
    from domino_orchestrate.trace.store import LineageStore

    with LineageStore(store_url) as opened:
        yield opened


@pytest.fixture(autouse=True)
def _no_lineage_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No store location, OpenLineage configuration or XDG data dir leaks in from outside; no
    openlineage.yml in cwd or HOME; no emitter cached from another configuration."""
    from domino_orchestrate.core.lineage import transports

    for key in list(os.environ):
        if key.startswith(("OPENLINEAGE", "DOMINO_ORCHESTRATE_")):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_SPOOL", str(tmp_path / "spool"))
    transports._emitters.clear()
    yield
    for emitter in transports._emitters.values():
        emitter.close()
    transports._emitters.clear()
