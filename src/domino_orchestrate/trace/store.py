"""The lineage store: OpenLineage RunEvents in, mltrace's questions answered.

    store = LineageStore()                       # SQLite at the default path, or a path / URL
    store.import_files(["lineage.jsonl"])        # idempotent: the same file twice changes nothing
    store.recent(10); store.history("train"); store.inspect(run_id)
    root = store.trace("s3://bucket/report.csv")   # TraceNode tree of the runs behind an output
    store.stale(); store.flag(output); store.review(); store.tag(run_id, "suspect")

What lives here: ingesting (parse -> store the event once -> refold its run), and the queries.
Dependencies are inferred as mltrace does: for each input of a run, the most recent *earlier*
run that produced that dataset (the same version when the input names one; "earlier": it ended,
or if it never ended it started, no later than the consuming run started).

What must not live here: parsing and folding events (``events.py``), tables and engines
(``schema.py``), drawing (``render.py``), command-line output (``cli.py``).
"""

from __future__ import annotations

import gc
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Table,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    text,
)
from sqlalchemy.exc import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
)

from . import schema
from .errors import (
    InvalidEventError,
    StoreConfigError,
    StoreUnavailableError,
    UnknownComponentError,
    UnknownOutputError,
    UnknownRunError,
)
from .events import Fragment, fold, parse_event
from .model import (
    RULE_FAILED,
    RULE_FRESHER,
    RULE_OLD,
    ComponentRun,
    DatasetRef,
    FlaggedOutput,
    IngestResult,
    ReviewEntry,
    StaleFinding,
    TraceNode,
)

__all__ = ["DEFAULT_STALE_THRESHOLD", "LineageStore"]

log = logging.getLogger("domino_orchestrate.trace")

DEFAULT_STALE_THRESHOLD = timedelta(days=30)
#: Events per transaction when importing (one commit per batch, not per event).
BATCH = 2000
#: Events per transaction when importing a file: fewer, larger commits (each one a WAL
#: checkpoint and its fsync on SQLite) for a file read whole anyway.
IMPORT_BATCH = 10000
#: SQLite page cache (KiB) while an import transaction runs (``_bulk_cache``).
BULK_CACHE_KIB = 65536
#: Deepest trace followed; deeper chains are cut.
MAX_DEPTH = 200
#: Shortest run id prefix accepted in place of a whole id.
MIN_PREFIX = 6
_CHUNK = 500  # ids per IN (...) list
#: PostgreSQL advisory lock key that serialises writers ("domino-orchestrate lineage store").
WRITE_LOCK = 0x646F6D696E6F4C53


def _naive(when: datetime) -> datetime:
    """UTC without tzinfo, as the store keeps times."""
    return when.astimezone(timezone.utc).replace(tzinfo=None) if when.tzinfo else when


def _aware(when: datetime | None) -> datetime | None:
    return when.replace(tzinfo=timezone.utc) if when is not None and when.tzinfo is None else when


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


_SEP = "\x1f"


def _splits(key: str) -> list[tuple[str, str]]:
    """Every (namespace, name) that ``namespace/name`` could be (either part may hold "/")."""
    return [(key[:i], key[i + 1:]) for i, c in enumerate(key) if c == "/" and 0 < i < len(key) - 1]


def _tag_text(tags: Sequence[str]) -> str:
    """The event tags of a run as one delimited string (``--tag`` filters with LIKE on it:
    cheaper to write than a row per tag, and tag filters are rare)."""
    return _SEP + _SEP.join(t.replace(_SEP, " ") for t in tags) + _SEP if tags else ""


#: Compact JSON, built once (``json.dumps`` with options builds an encoder per call).
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _doc(run: ComponentRun) -> str:
    return _COMPACT.encode(run.to_dict())


def _from_doc(text: str, user_tags: Sequence[str] = ()) -> ComponentRun:
    data = json.loads(text)
    for name in ("start_time", "end_time"):
        data[name] = _aware(datetime.fromisoformat(data[name])) if data.get(name) else None
    for name in ("inputs", "outputs"):
        data[name] = tuple(DatasetRef(d["namespace"], d["name"], d.get("version"))
                           for d in data.get(name, ()))
    tags = list(data.get("tags", ()))
    tags.extend(t for t in user_tags if t not in tags)
    data["tags"] = tuple(tags)
    known = ComponentRun.__dataclass_fields__
    return ComponentRun(**{k: v for k, v in data.items() if k in known})


def _short(run: ComponentRun) -> str:
    return f"{run.component} (run {run.run_id[:8]})"


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:.0f} days" if days >= 2 else f"{delta.total_seconds() / 3600:.1f} hours"


@contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """No cyclic garbage collection while importing: a file's events are all kept until they
    are stored, and the collector walked them again and again (most of an import's CPU time).
    Reference counting still frees everything; the collector is back on afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _bulk_cache(conn: Connection, bulk: bool) -> Iterator[None]:
    """A larger SQLite page cache for one import transaction, then the one before: inserting
    10,000 events updates index pages all over the tables (hashes and run ids are random), and
    SQLite's default 2 MB cache read the same pages back again and again."""
    if not bulk or conn.dialect.name != "sqlite":
        yield
        return
    previous = int(conn.exec_driver_sql("PRAGMA cache_size").scalar() or -2000)
    conn.exec_driver_sql(f"PRAGMA cache_size={-BULK_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={previous}")


class _Reader:
    """Parses events one by one, counting job/dataset events and bad ones (or raising)."""

    def __init__(self, source: str, skip_invalid: bool) -> None:
        self.source, self.skip_invalid = source, skip_invalid
        self.ignored = 0
        self.problems: list[str] = []

    def invalid(self, error: InvalidEventError, number: int) -> None:
        located = error.located(f"{self.source}:{number}")
        if not self.skip_invalid:
            raise located from None
        self.problems.append(str(located))

    def read(self, raw: Any, number: int) -> Fragment | None:
        if isinstance(raw, dict) and "run" not in raw and ("job" in raw or "dataset" in raw):
            self.ignored += 1  # an OpenLineage JobEvent or DatasetEvent: no run to record
            return None
        try:
            return parse_event(raw)
        except InvalidEventError as exc:
            self.invalid(exc, number)
            return None

    def result(self) -> IngestResult:
        return IngestResult(ignored=self.ignored, invalid=tuple(self.problems))


class _Rows:
    """Bulk inserts of plain tuples (in the table's column order) through the driver's own
    ``executemany``: SQLAlchemy's per-row parameter handling cost more than SQLite's insert.
    Times go in through ``stamp`` (the ``DateTime`` type's own bind processor), so they are
    stored exactly as SQLAlchemy stores them (SQLite keeps them as text) and compare alike."""

    _sql: dict[tuple[str, str], str] = {}

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect
        process = DateTime().dialect_impl(self.dialect).bind_processor(self.dialect)
        self.stamp: Callable[[Any], Any] = process or (lambda value: value)

    def _sql_for(self, table: Table) -> str:
        key = (self.dialect.name, table.name)
        if key not in self._sql:
            for column in table.columns:  # values go in as given, but for stamp()ed times
                if (not isinstance(column.type, DateTime)
                        and column.type.dialect_impl(self.dialect).bind_processor(self.dialect)):
                    raise TypeError(f"{table.name}.{column.name} needs its bind processor")
            mark = "?" if self.dialect.paramstyle == "qmark" else "%s"
            self._sql[key] = (
                f"INSERT INTO {table.name} ({', '.join(c.name for c in table.columns)}) "
                f"VALUES ({', '.join([mark] * len(table.columns))})")
        return self._sql[key]

    def insert(self, table: Table, rows: list[tuple[Any, ...]]) -> None:
        """Insert ``rows`` (tuples in ``table``'s column order, times ``stamp``ed) at once."""
        if rows:
            self.conn.exec_driver_sql(self._sql_for(table), rows)


@dataclass(frozen=True)
class _Edge:
    via: DatasetRef
    run: ComponentRun


class LineageStore:
    """Component runs from OpenLineage events, on SQLite (default) or PostgreSQL.

    Args:
        location: a file path (SQLite) or a SQLAlchemy URL (``sqlite:///…``,
            ``postgresql+psycopg://user:pw@host/db``); default ``$DOMINO_ORCHESTRATE_LINEAGE_STORE``,
            else ``$XDG_DATA_HOME/domino-orchestrate/lineage.db``. Tables are created on first use.

    Raises:
        StoreConfigError: the location is not usable.
        StoreUnavailableError: the database does not answer.
    """

    def __init__(self, location: str | os.PathLike[str] | None = None) -> None:
        self._url = schema.resolve_url(location)
        self.engine = schema.make_engine(self._url)
        self._create_tables()

    # --- plumbing -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Where the store is, without its password."""
        return schema.safe_url(self._url)

    def __repr__(self) -> str:
        return f"<LineageStore {self.url}>"

    def __enter__(self) -> LineageStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    @contextmanager
    def _db(self, write: bool = False) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                if write:
                    conn = conn.execution_options(write=True)
                with conn.begin():
                    if write and conn.dialect.name == "postgresql":
                        # One writer at a time, as SQLite's BEGIN IMMEDIATE gives: two writers
                        # refolding one run from what each alone can see would leave the run
                        # as the last one saw it, and both would insert the same new event.
                        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                     {"key": WRITE_LOCK})
                    yield conn
        except (OperationalError, InterfaceError) as exc:  # the database, not our SQL
            raise StoreUnavailableError(
                f"lineage store {self.url} did not answer: "
                f"{str(exc.orig).splitlines()[0][:200] if exc.orig else type(exc).__name__}"
            ) from None
        except DatabaseError as exc:
            if type(exc) is not DatabaseError or self.engine.dialect.name != "sqlite":
                raise  # IntegrityError, ProgrammingError…: for the caller
            # SQLite's "file is not a database" (from the connect PRAGMAs): a path given by
            # mistake, never to be overwritten.
            raise StoreConfigError(
                f"lineage store {self.url} is not a SQLite database "
                f"({str(exc.orig).splitlines()[0][:200] if exc.orig else 'unreadable'}): give the "
                "path of a lineage store, or of a file that does not exist yet"
            ) from None

    def _create_tables(self) -> None:
        for attempt in range(3):
            try:
                with self._db(write=True) as conn:
                    schema.metadata.create_all(conn, checkfirst=True)
                    version = conn.execute(select(schema.meta.c.value).where(
                        schema.meta.c.key == "schema_version")).scalar()
                    if version is None:
                        conn.execute(insert(schema.meta).values(
                            key="schema_version", value=schema.SCHEMA_VERSION))
                return
            except (IntegrityError, ProgrammingError):
                # Two processes creating the tables at once: the loser's CREATE fails; a retry
                # sees them there.
                if attempt == 2:
                    raise

    # --- ingest ---------------------------------------------------------------------------

    def ingest(self, event: Any) -> IngestResult:
        """Store one OpenLineage RunEvent (a dict); a known event changes nothing.

        Raises:
            InvalidEventError: not a RunEvent (the message names the field). Job and dataset
                events (no ``run``) are not errors here: counted as ``ignored``.
        """
        return self.ingest_many([event])

    def ingest_many(self, events: Iterable[Any], *, skip_invalid: bool = False,
                    source: str = "event") -> IngestResult:
        """Store many events, ``BATCH`` per transaction.

        Args:
            skip_invalid: skip bad events (listed in ``invalid``) instead of raising.
            source: how errors name the events (``file.jsonl``: they read ``file.jsonl:N``).
        """
        reader = _Reader(source, skip_invalid)
        total = IngestResult()
        batch: list[Fragment] = []
        for number, raw in enumerate(events, 1):
            fragment = reader.read(raw, number)
            if fragment is not None:
                batch.append(fragment)
            if len(batch) >= BATCH:
                total += self._ingest_batch(batch)
                batch = []
        if batch:
            total += self._ingest_batch(batch)
        return total + reader.result()

    def import_files(self, paths: Iterable[str | os.PathLike[str]], *,
                     skip_invalid: bool = False) -> IngestResult:
        """Import OpenLineage JSON-lines files (what the file transport writes); idempotent.

        A file is read whole before anything is stored, so a bad line (without
        ``skip_invalid``) stores nothing from that file.

        Raises:
            InvalidEventError: a line that is not JSON or not a RunEvent (names ``file:line``).
            OSError: a file that cannot be read.
        """
        total = IngestResult()
        with _without_cyclic_gc():
            for path in paths:
                total += self._import_file(path, skip_invalid)
        return total

    def _import_file(self, path: str | os.PathLike[str], skip_invalid: bool) -> IngestResult:
        reader = _Reader(str(path), skip_invalid)
        fragments: list[Fragment] = []
        with Path(path).open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if line.isspace():
                    continue
                try:
                    raw = json.loads(line)
                except json.JSONDecodeError as exc:
                    reader.invalid(InvalidEventError("the line", f"is not JSON ({exc.msg})"),
                                   number)
                    continue
                fragment = reader.read(raw, number)
                if fragment is not None:
                    fragments.append(fragment)
        result = reader.result()
        for start in range(0, len(fragments), IMPORT_BATCH):
            result += self._ingest_batch(fragments[start:start + IMPORT_BATCH], bulk=True)
        return result

    def _ingest_batch(self, batch: list[Fragment], bulk: bool = False) -> IngestResult:
        unique = {fragment.digest: fragment for fragment in batch}
        e = schema.events.c
        with self._db(write=True) as conn, _bulk_cache(conn, bulk):
            known: set[str] = set()
            for chunk in _chunks(list(unique)):
                known.update(conn.execute(select(e.event_hash).where(
                    e.event_hash.in_(chunk))).scalars())
            new = {h: f for h, f in unique.items() if h not in known}
            if not new:
                return IngestResult(duplicates=len(batch))
            by_run: dict[str, dict[str, Fragment]] = {}
            for digest, fragment in new.items():
                by_run.setdefault(fragment.run_id, {})[digest] = fragment
            run_ids = sorted(by_run)
            stored: set[str] = set()  # runs the store already has rows of
            for chunk in _chunks(run_ids):  # what the store already had of these runs
                for row in conn.execute(select(schema.events).where(e.run_id.in_(chunk))):
                    stored.add(row.run_id)
                    by_run[row.run_id][row.event_hash] = Fragment.from_json(
                        row.run_id, row.namespace, row.component, row.event_type,
                        row.event_time, row.fragment)
            rows = _Rows(conn)
            stamp = rows.stamp
            rows.insert(schema.events, [
                (h, f.run_id, f.namespace, f.component, f.event_type, stamp(f.event_time),
                 f.to_json()) for h, f in new.items()])
            self._write_runs(rows, [fold(fragments) for fragments in by_run.values()],
                             sorted(stored))
        return IngestResult(new=len(new), duplicates=len(batch) - len(new), runs=len(run_ids))

    @staticmethod
    def _write_runs(rows: _Rows, folded: list[ComponentRun], stored: list[str]) -> None:
        """Write each run's row and datasets, replacing those of ``stored`` (known) runs."""
        conn = rows.conn
        for chunk in _chunks(stored):
            conn.execute(delete(schema.runs).where(schema.runs.c.run_id.in_(chunk)))
            conn.execute(delete(schema.datasets).where(schema.datasets.c.run_id.in_(chunk)))
        run_rows: list[tuple[Any, ...]] = []
        dataset_rows: list[tuple[Any, ...]] = []
        stamp = rows.stamp
        epoch = stamp(datetime(1970, 1, 1))
        for run in folded:
            start = stamp(_naive(run.start_time)) if run.start_time else epoch
            end = stamp(_naive(run.end_time)) if run.end_time else None
            run_rows.append((run.run_id, run.namespace, run.component, run.status, start, end,
                             _doc(run), _tag_text(run.tags)))
            ready, status = end or start, run.status
            for direction, refs in (("in", run.inputs), ("out", run.outputs)):
                for ref in refs:
                    dataset_rows.append((run.run_id, direction, ref.namespace, ref.name,
                                         ref.version or "", start, ready, status))
        rows.insert(schema.runs, run_rows)
        rows.insert(schema.datasets, dataset_rows)

    # --- reading runs ---------------------------------------------------------------------

    def _runs(self, conn: Connection, rows: Iterable[Any]) -> list[ComponentRun]:
        """ComponentRuns from ``lineage_runs`` rows, user tags added, in the rows' order."""
        rows = list(rows)
        user: dict[str, list[str]] = {}
        ids = [row.run_id for row in rows]
        for chunk in _chunks(ids):
            for run_id, tag in conn.execute(select(schema.tags.c.run_id, schema.tags.c.tag).where(
                    schema.tags.c.run_id.in_(chunk), schema.tags.c.source == "user")
                    .order_by(schema.tags.c.tag)):
                user.setdefault(run_id, []).append(tag)
        return [_from_doc(row.doc, user.get(row.run_id, ())) for row in rows]

    @staticmethod
    def _newest_first(query: Any) -> Any:
        return query.order_by(schema.runs.c.start_time.desc(), schema.runs.c.run_id.desc())

    @staticmethod
    def _with_tag(query: Any, tag: str | None) -> Any:
        if not tag:
            return query
        escaped = tag.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return query.where(or_(
            schema.runs.c.tags.like(f"%{_SEP}{escaped}{_SEP}%", escape="\\"),  # from events
            schema.runs.c.run_id.in_(select(schema.tags.c.run_id).where(  # from tag()
                schema.tags.c.tag == tag))))

    def recent(self, limit: int = 20, tag: str | None = None) -> list[ComponentRun]:
        """The most recently started runs, newest first (only those tagged ``tag`` if given)."""
        with self._db() as conn:
            query = self._with_tag(self._newest_first(select(schema.runs)), tag)
            return self._runs(conn, conn.execute(query.limit(max(0, limit))))

    def history(self, component: str, limit: int = 20, tag: str | None = None
                ) -> list[ComponentRun]:
        """Runs of one component (job name, or ``namespace/name``), newest first.

        Raises:
            UnknownComponentError: the store has no run of that component.
        """
        runs_t = schema.runs.c
        match = or_(runs_t.component == component,
                    *(and_(runs_t.namespace == ns, runs_t.component == name)
                      for ns, name in _splits(component)))
        with self._db() as conn:
            if conn.execute(select(runs_t.run_id).where(match).limit(1)).first() is None:
                raise UnknownComponentError(component)
            query = self._with_tag(self._newest_first(select(schema.runs).where(match)), tag)
            return self._runs(conn, conn.execute(query.limit(max(0, limit))))

    def _find_run(self, conn: Connection, run_id: str) -> ComponentRun | None:
        row = conn.execute(select(schema.runs).where(schema.runs.c.run_id == run_id)).first()
        if row is None and len(run_id) >= MIN_PREFIX:
            escaped = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = conn.execute(select(schema.runs).where(
                schema.runs.c.run_id.like(escaped + "%", escape="\\")).limit(2)).all()
            if len(rows) > 1:
                raise UnknownRunError(run_id, f"run id prefix {run_id!r} matches several runs: "
                                      "give more of the id")
            row = rows[0] if rows else None
        return self._runs(conn, [row])[0] if row is not None else None

    def inspect(self, run_id: str) -> ComponentRun:
        """One run, by id (or a unique prefix of at least 6 characters).

        Raises:
            UnknownRunError: no such run.
        """
        with self._db() as conn:
            return self._known_run(conn, run_id)

    def _known_run(self, conn: Connection, run_id: str) -> ComponentRun:
        run = self._find_run(conn, run_id)
        if run is None:
            raise UnknownRunError(run_id)
        return run

    # --- dependencies and traces ----------------------------------------------------------

    def _producer(self, conn: Connection, ref: DatasetRef, before: datetime,
                  exclude: str) -> ComponentRun | None:
        """The most recent run that produced ``ref`` and was ready by ``before``."""
        d, r = schema.datasets.c, schema.runs.c
        base = (select(schema.runs).join(schema.datasets, d.run_id == r.run_id)
                .where(d.direction == "out", d.namespace == ref.namespace, d.name == ref.name,
                       d.ready_time <= before, d.run_id != exclude)
                .order_by(d.start_time.desc(), d.run_id.desc()).limit(1))
        row = conn.execute(base.where(d.version == ref.version)).first() if ref.version else None
        if row is None:
            row = conn.execute(base).first()
        return self._runs(conn, [row])[0] if row is not None else None

    def _dependencies(self, conn: Connection, run: ComponentRun) -> list[_Edge]:
        if not run.inputs or run.start_time is None:
            return []
        before = _naive(run.start_time)
        edges = []
        for ref in run.inputs:
            producer = self._producer(conn, ref, before, run.run_id)
            if producer is not None:
                edges.append(_Edge(ref, producer))
        return edges

    def dependencies(self, run_id: str) -> list[tuple[DatasetRef, ComponentRun]]:
        """For each input of the run, the run it was read from: ``(input, producing run)``.

        Raises:
            UnknownRunError: no such run.
        """
        with self._db() as conn:
            run = self._known_run(conn, run_id)
            return [(edge.via, edge.run) for edge in self._dependencies(conn, run)]

    def _resolve_output(self, conn: Connection, output: str) -> tuple[ComponentRun, DatasetRef | None]:
        row = conn.execute(select(schema.runs).where(schema.runs.c.run_id == output)).first()
        if row is not None:
            return self._runs(conn, [row])[0], None
        d = schema.datasets.c
        newest = (select(d.run_id, d.namespace, d.name, d.start_time).where(d.direction == "out")
                  .order_by(d.start_time.desc(), d.run_id.desc()).limit(1))
        # One indexed query per reading of ``output`` (a name, or namespace/name split at each
        # "/"), rather than one OR over a concatenation no index can serve.
        candidates = [conn.execute(newest.where(d.name == output)).first()]
        candidates += [conn.execute(newest.where(d.namespace == ns, d.name == name)).first()
                       for ns, name in _splits(output)]
        found = max((c for c in candidates if c is not None), default=None,
                    key=lambda c: (c.start_time, c.run_id))
        if found is not None:
            run_row = conn.execute(select(schema.runs).where(
                schema.runs.c.run_id == found.run_id)).one()
            return self._runs(conn, [run_row])[0], DatasetRef(found.namespace, found.name)
        run = self._find_run(conn, output) if len(output) >= MIN_PREFIX else None
        if run is None:
            raise UnknownOutputError(output)
        return run, None

    def _build(self, conn: Connection, root: ComponentRun,
               memo: dict[str, list[_Edge]]) -> TraceNode:
        """The trace tree; each run's upstream is expanded once (depth first), a run met again
        is a ``repeated`` leaf, so a diamond-shaped pipeline stays linear in size."""
        expanded: set[str] = set()

        def build(run: ComponentRun, via: DatasetRef | None, depth: int) -> TraceNode:
            if run.run_id in expanded:
                return TraceNode(run, via, repeated=True)
            expanded.add(run.run_id)
            if depth >= MAX_DEPTH:
                return TraceNode(run, via)
            if run.run_id not in memo:
                memo[run.run_id] = self._dependencies(conn, run)
            return TraceNode(run, via, tuple(build(edge.run, edge.via, depth + 1)
                                             for edge in memo[run.run_id]))

        return build(root, None, 0)

    def trace(self, output: str) -> TraceNode:
        """The tree of runs that led to ``output``: a dataset (name or ``namespace/name``; its
        most recent producer) or a run id. Each node's ``via`` is the dataset it gave its child.

        Raises:
            UnknownOutputError: no such dataset was produced and no run has that id.
        """
        with self._db() as conn:
            run, _ = self._resolve_output(conn, output)
            return self._build(conn, run, {})

    def resolve_output(self, output: str) -> tuple[ComponentRun, DatasetRef | None]:
        """What ``trace(output)`` starts from: the run, and the dataset when ``output`` named one.

        Raises:
            UnknownOutputError: neither a produced dataset nor a run id.
        """
        with self._db() as conn:
            return self._resolve_output(conn, output)

    # --- staleness --------------------------------------------------------------------------

    def stale(self, output: str | None = None,
              threshold: timedelta = DEFAULT_STALE_THRESHOLD) -> list[StaleFinding]:
        """Runs that may need a rerun, each with the dependency and the rule that says so.

        Checked: every run in ``output``'s trace, or (no output) the latest run of every
        component. For each dependency (see ``dependencies``):

        - ``old`` (mltrace): it started more than ``threshold`` before the run that used it;
        - ``fresher`` (mltrace, extended to "since"): its component has completed runs that
          started after it, or another job has produced the same input since (failed or
          unfinished runs are not fresher data);
        - ``failed`` (ours): it ended FAIL or ABORT (Domino Failed, Error or Stopped).

        Raises:
            UnknownOutputError: ``output`` names nothing in the store.
        """
        with self._db() as conn:
            pairs: list[tuple[ComponentRun, _Edge]] = []
            if output is not None:
                root, _ = self._resolve_output(conn, output)
                memo: dict[str, list[_Edge]] = {}
                tree = self._build(conn, root, memo)
                for run in tree.runs():
                    pairs.extend((run, edge) for edge in memo.get(run.run_id, ()))
            else:
                for run in self._latest_per_component(conn):
                    pairs.extend((run, edge) for edge in self._dependencies(conn, run))
            findings: list[StaleFinding] = []
            for run, edge in pairs:
                findings.extend(self._judge(conn, run, edge, threshold))
        return findings

    def _latest_per_component(self, conn: Connection) -> list[ComponentRun]:
        r = schema.runs.c
        latest = (select(r.namespace, r.component, func.max(r.start_time).label("newest"))
                  .group_by(r.namespace, r.component).subquery())
        query = (select(schema.runs).join(latest, and_(
            r.namespace == latest.c.namespace, r.component == latest.c.component,
            r.start_time == latest.c.newest)).order_by(r.start_time.desc(), r.run_id.desc()))
        seen: set[tuple[str, str]] = set()
        result = []
        for run in self._runs(conn, conn.execute(query)):
            if (run.namespace, run.component) not in seen:  # two runs started the same instant
                seen.add((run.namespace, run.component))
                result.append(run)
        return result

    def _judge(self, conn: Connection, run: ComponentRun, edge: _Edge,
               threshold: timedelta) -> list[StaleFinding]:
        dep = edge.run
        found: list[StaleFinding] = []

        def finding(rule: str, reason: str) -> None:
            found.append(StaleFinding(run, dep, edge.via, rule, reason))

        if dep.failed:
            status = f" (Domino: {dep.domino_status})" if dep.domino_status else ""
            error = f": {dep.error_message.splitlines()[0][:160]}" if dep.error_message else ""
            finding(RULE_FAILED, f"{_short(run)} read {edge.via.name} from {_short(dep)}, which "
                                 f"ended {dep.status}{status}{error}")
        if run.start_time and dep.start_time and run.start_time - dep.start_time > threshold:
            finding(RULE_OLD, f"{_short(dep)} ran {_days(run.start_time - dep.start_time)} "
                              f"before {_short(run)} used its {edge.via.name} (threshold "
                              f"{_days(threshold)})")
        if dep.start_time is not None:
            since = _naive(dep.start_time)
            r, d = schema.runs.c, schema.datasets.c
            # Fresher: completed runs of the dependency's component (mltrace's rule), and other
            # runs that produced the same input since (an asset materialized by another job).
            same = conn.execute(select(r.run_id, r.start_time).where(
                r.namespace == dep.namespace, r.component == dep.component,
                r.status == "COMPLETE", r.start_time > since, r.run_id != dep.run_id)).all()
            others = conn.execute(select(d.run_id, d.start_time).where(
                d.direction == "out", d.namespace == edge.via.namespace,
                d.name == edge.via.name, d.status == "COMPLETE", d.start_time > since,
                d.run_id != dep.run_id)).all()
            fresher = {row.run_id: row.start_time for row in [*same, *others]}
            if fresher:
                started = _naive(run.start_time) if run.start_time else None
                before = sum(1 for when in fresher.values()
                             if started is not None and when <= started)
                extra = len(fresher) - len(same)
                also = f" ({extra} of them other jobs producing {edge.via.name})" if extra else ""
                finding(RULE_FRESHER, (
                    f"{dep.component} has {len(fresher)} fresher completed run(s){also} since "
                    f"{_short(dep)}, whose {edge.via.name} {_short(run)} used ({before} began "
                    f"before {run.component} started)"))
        return found

    # --- flags and review ------------------------------------------------------------------

    def _output_dataset(self, conn: Connection, output: str) -> DatasetRef:
        _, dataset = self._resolve_output(conn, output)
        if dataset is None:
            raise UnknownOutputError(output)  # a run id: flags are on datasets
        return dataset

    def flag(self, output: str) -> DatasetRef:
        """Flag an output dataset for review (idempotent); returns the dataset flagged.

        Raises:
            UnknownOutputError: no run produced a dataset of that name or key.
        """
        with self._db(write=True) as conn:
            dataset = self._output_dataset(conn, output)
            f = schema.flags.c
            exists = conn.execute(select(f.name).where(
                f.namespace == dataset.namespace, f.name == dataset.name)).first()
            if exists is None:
                conn.execute(insert(schema.flags).values(
                    namespace=dataset.namespace, name=dataset.name,
                    flagged_at=_naive(datetime.now(timezone.utc))))
        return dataset

    def unflag(self, output: str) -> DatasetRef:
        """Remove the flag from an output (idempotent); returns the dataset.

        Raises:
            UnknownOutputError: no run produced a dataset of that name or key.
        """
        with self._db(write=True) as conn:
            f = schema.flags.c
            dataset: DatasetRef | None = None
            for row in conn.execute(select(schema.flags)):
                if output in (row.name, f"{row.namespace}/{row.name}"):
                    dataset = DatasetRef(row.namespace, row.name)
            if dataset is None:
                dataset = self._output_dataset(conn, output)
            conn.execute(delete(schema.flags).where(f.namespace == dataset.namespace,
                                                    f.name == dataset.name))
        return dataset

    def flagged(self) -> list[FlaggedOutput]:
        """Flagged outputs, most recently flagged first."""
        with self._db() as conn:
            f = schema.flags.c
            rows = conn.execute(select(schema.flags).order_by(
                f.flagged_at.desc(), f.namespace, f.name)).all()
        return [FlaggedOutput(DatasetRef(r.namespace, r.name), _aware(r.flagged_at))  # type: ignore[arg-type]
                for r in rows]

    def review(self, limit: int | None = None) -> list[ReviewEntry]:
        """Runs ranked by how many flagged outputs' traces contain them (mltrace's review):
        most first; ties, the newest run first."""
        flagged = self.flagged()
        counts: Counter[str] = Counter()
        runs: dict[str, ComponentRun] = {}
        outputs: dict[str, list[str]] = {}
        with self._db() as conn:
            for item in flagged:
                try:
                    root, _ = self._resolve_output(conn, item.dataset.key)
                except UnknownOutputError:
                    continue
                for run in self._build(conn, root, {}).runs():
                    counts[run.run_id] += 1
                    runs[run.run_id] = run
                    outputs.setdefault(run.run_id, []).append(item.dataset.key)
        epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
        ranked = sorted(counts, key=lambda rid: (
            -counts[rid], -((runs[rid].start_time or epoch) - epoch).total_seconds(), rid))
        entries = [ReviewEntry(runs[rid], counts[rid], len(flagged), tuple(outputs[rid]))
                   for rid in ranked]
        return entries[:limit] if limit is not None else entries

    # --- tags -----------------------------------------------------------------------------

    def tag(self, run_id: str, *tags: str) -> ComponentRun:
        """Add tags to a run (kept across re-imports); returns the run with its tags.

        Raises:
            UnknownRunError: no such run.
            ValueError: an empty tag.
        """
        cleaned = [t.strip() for t in tags]
        if not cleaned or any(not t for t in cleaned):
            raise ValueError("give at least one non-empty tag")
        with self._db(write=True) as conn:
            run = self._known_run(conn, run_id)
            t = schema.tags.c
            have = set(conn.execute(select(t.tag).where(
                t.run_id == run.run_id, t.source == "user")).scalars())
            rows = [{"run_id": run.run_id, "tag": tag, "source": "user"}
                    for tag in dict.fromkeys(cleaned) if tag not in have]
            if rows:
                conn.execute(insert(schema.tags), rows)
        return replace(run, tags=tuple(dict.fromkeys([*run.tags, *cleaned])))

    def count(self) -> dict[str, int]:
        """How many events, runs and datasets mentions the store holds."""
        with self._db() as conn:
            return {name: int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)
                    for name, table in (("events", schema.events), ("runs", schema.runs),
                                        ("datasets", schema.datasets))}

