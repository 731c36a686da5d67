"""Ingesting OpenLineage events: idempotent imports, order-independent merging of one run's
events, typed errors for bad events, and garbage never crashing the store (Hypothesis)."""

from __future__ import annotations

import copy
import json
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domino_orchestrate.trace.errors import InvalidEventError
from domino_orchestrate.trace.events import parse_event
from domino_orchestrate.trace.store import LineageStore

from .pipeline import Pipeline, churn_pipeline


def snapshot(store: Any) -> dict[str, Any]:
    """Every answer a user could get, as plain data."""
    return {
        "counts": store.count(),
        "recent": [r.to_dict() for r in store.recent(limit=1000)],
        "trace": store.trace("report.html").to_dict(),
        "stale": [f.to_dict() for f in store.stale()],
    }


def test_importing_the_same_file_twice_changes_nothing(store: Any, tmp_path: Path) -> None:
    path = churn_pipeline().write(tmp_path / "lineage.jsonl")
    first = store.import_files([path])
    assert (first.new, first.duplicates, first.runs) == (24, 0, 8)
    before = snapshot(store)
    second = store.import_files([path, path])
    assert (second.new, second.duplicates, second.runs) == (0, 48, 0)
    assert snapshot(store) == before


def test_event_order_and_splitting_do_not_matter(tmp_path: Path) -> None:
    events = churn_pipeline().events
    with LineageStore(tmp_path / "ordered.db") as ordered:
        ordered.ingest_many(events)
        expected = snapshot(ordered)
    shuffled = copy.deepcopy(events)
    random.Random(7).shuffle(shuffled)
    with LineageStore(tmp_path / "shuffled.db") as store:
        for event in shuffled:  # one at a time: each run refolded as its events trickle in
            store.ingest(event)
        assert snapshot(store) == expected


def test_one_run_merged_from_its_events_retry_clears_error(store: Any) -> None:
    p = Pipeline()
    run_id = p.run("train", day=0, inputs=["features.parquet"], end="FAIL", attempt=1)
    p.run("train", day=0.01, inputs=["features.parquet"], outputs=["model.pkl"], attempt=1)
    assert len(set(p.ids["train"])) == 1  # a retry keeps the lineage run id
    store.ingest_many(p.events[:3])
    failed = store.inspect(run_id)
    assert (failed.status, failed.error_message, failed.event_count) == (
        "FAIL", "job failed: exit 3", 3)
    store.ingest_many(p.events[3:])
    run = store.inspect(run_id)
    assert (run.status, run.error_message, run.event_count) == ("COMPLETE", None, 6)
    assert run.start_time == failed.start_time  # the first START
    assert [o.name for o in run.outputs] == ["model.pkl"]  # datasets: union over the events


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Any:
    """Parsing does not depend on the database: these tests run on SQLite only."""
    with LineageStore(tmp_path / "lineage.db") as store:
        yield store


def test_times_in_any_iso_form(sqlite_store: Any) -> None:
    store = sqlite_store
    event = churn_pipeline().events[0]
    for when, expected in (("2026-11-30T10:00:00.123456789Z", "2026-11-30T10:00:00.123456"),
                           ("2026-11-30T12:00:00+02:00", "2026-11-30T10:00:00"),
                           ("2026-11-30T10:00:00", "2026-11-30T10:00:00")):
        item = {**event, "eventTime": when, "run": {**event["run"], "runId": when}}
        store.ingest(item)
        assert store.inspect(when).start_time.isoformat() == expected + "+00:00"


def test_job_and_dataset_events_are_ignored(sqlite_store: Any) -> None:
    store = sqlite_store
    job_event = {"eventTime": "2026-11-30T10:00:00Z", "producer": "p", "schemaURL": "s",
                 "job": {"namespace": "n", "name": "j"}}
    dataset_event = {"eventTime": "2026-11-30T10:00:00Z", "producer": "p", "schemaURL": "s",
                     "dataset": {"namespace": "n", "name": "d"}}
    result = store.ingest_many([job_event, dataset_event])
    assert (result.ignored, result.new) == (2, 0)
    assert store.count()["events"] == 0


@pytest.mark.parametrize(("mutate", "where"), [
    (lambda e: e["run"].pop("runId"), "run.runId is missing"),
    (lambda e: e["job"].update(name=42), "job.name must be a string"),
    (lambda e: e.update(eventTime="yesterday"), "eventTime is not an ISO-8601 date-time"),
    (lambda e: e.update(eventType="DONE"), "eventType must be one of"),
    (lambda e: e.update(inputs=[{"namespace": "s3"}]), "inputs[0].name is missing"),
    (lambda e: e.update(outputs="model.pkl"), "outputs must be a list"),
    (lambda e: e["run"].update(runId="x" * 300), "run.runId is longer than 256 bytes"),
])
def test_bad_event_is_one_typed_error_naming_the_field(sqlite_store: Any, mutate: Any,
                                                       where: str) -> None:
    store = sqlite_store
    event = copy.deepcopy(churn_pipeline().events[0])
    mutate(event)
    with pytest.raises(InvalidEventError) as caught:
        store.ingest(event)
    assert where in str(caught.value) and caught.value.exit_code == 6
    assert store.count()["events"] == 0


def test_bad_line_in_a_file_stores_nothing_unless_skipped(store: Any, tmp_path: Path) -> None:
    path = churn_pipeline().write(tmp_path / "lineage.jsonl")
    lines = path.read_text().splitlines()
    lines.insert(3, '{"eventType": "START", "run": {"runId": "r1"')  # cut off mid-write
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidEventError, match=rf"{path}:4: .*is not JSON"):
        store.import_files([path])
    assert store.count()["events"] == 0
    result = store.import_files([path], skip_invalid=True)
    assert result.new == 24 and len(result.invalid) == 1 and f"{path}:4" in result.invalid[0]


# --- garbage never crashes ------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                      children, max_size=4),
    max_leaves=12,
)
BASE = churn_pipeline().events[2]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_paths(child, (*prefix, index)))
    return found


PATHS = [p for p in _paths(BASE) if p]


@st.composite
def damaged_events(draw: st.DrawFn) -> Any:
    """A real event with a few fields replaced by arbitrary JSON (or removed)."""
    event = copy.deepcopy(BASE)
    for path in draw(st.lists(st.sampled_from(PATHS), min_size=1, max_size=3)):
        parent: Any = event
        try:
            for key in path[:-1]:
                parent = parent[key]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(JSON)
        except (KeyError, IndexError, TypeError):
            continue
    return event


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON, damaged_events()))
def test_parser_reads_or_raises_invalid_event_never_crashes(event: Any) -> None:
    try:
        fragment = parse_event(event)
    except InvalidEventError as exc:
        assert exc.where and exc.problem
    else:
        assert fragment.run_id and fragment.component and fragment.namespace
        json.loads(fragment.to_json())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(damaged_events(), min_size=1, max_size=5))
def test_store_ingests_damaged_events_or_names_them(tmp_path_factory: Any, events: Any) -> None:
    with LineageStore(tmp_path_factory.mktemp("fuzz") / "lineage.db") as store:
        result = store.ingest_many(events, skip_invalid=True)
        assert result.new + result.duplicates + result.ignored + len(result.invalid) == \
            len(events)
        for run in store.recent(limit=10):
            json.dumps(run.to_dict())
            store.trace(run.run_id)
        store.stale()


@pytest.mark.xdist_group("postgres")
def test_sqlite_and_postgresql_give_the_same_answers(tmp_path: Path, postgres_url: str) -> None:
    path = churn_pipeline().write(tmp_path / "lineage.jsonl")
    answers = []
    for location in (tmp_path / "lineage.db", postgres_url):
        with LineageStore(location) as store:
            store.import_files([path])
            store.flag("report.html")
            store.flag("model.pkl")
            answers.append({
                **snapshot(store),
                "history": [r.to_dict() for r in store.history("features")],
                "stale_old": [f.to_dict() for f in store.stale(
                    "report.html", threshold=timedelta(hours=1))],
                "review": [e.to_dict() for e in store.review()],
                "inspect": store.inspect(store.recent(1)[0].run_id[:8]).to_dict(),
            })
    assert answers[0] == answers[1]
    assert answers[0]["review"] and answers[0]["stale_old"]


# --- import cost -----------------------------------------------------------------------------


def test_import_runs_no_cyclic_gc_commits_per_ten_thousand_events_with_a_big_cache(
        sqlite_store: Any, tmp_path: Path) -> None:
    """What made a 100,000-event import cost ~150 µs of CPU per event: the cyclic garbage
    collector walking the file's parsed events again and again (gen-2 passes over everything
    kept so far), a commit (a WAL checkpoint) every 2,000 events, and SQLite's 2 MB page
    cache re-reading index pages."""
    import gc

    from sqlalchemy import event

    from domino_orchestrate.trace.store import BULK_CACHE_KIB, IMPORT_BATCH

    p = Pipeline()
    for day in range(700):  # 2,100 events: more than the old 2,000-event batch
        p.run("train", day=day, inputs=["features.parquet"], outputs=["model.pkl"])
    path = p.write(tmp_path / "lineage.jsonl")
    collections: list[int] = []
    commits: list[int] = []

    def count(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    with sqlite_store.engine.connect() as conn:
        cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    pragmas: list[str] = []
    event.listen(sqlite_store.engine, "commit", lambda conn: commits.append(1))
    event.listen(sqlite_store.engine, "before_cursor_execute",
                 lambda conn, cursor, sql, *_: pragmas.append(sql) if "PRAGMA" in sql else None)
    gc.collect()
    gc.callbacks.append(count)
    try:
        assert sqlite_store.import_files([path]).new == 2100
    finally:
        gc.callbacks.remove(count)
    # None while importing (one may fall due as the collector comes back on at the end).
    assert len(collections) <= 1, collections
    assert len(commits) == 1 and IMPORT_BATCH >= 2100
    # A larger page cache while importing (index pages are updated all over), then as before.
    assert pragmas[-2:] == [f"PRAGMA cache_size=-{BULK_CACHE_KIB}", f"PRAGMA cache_size={cache}"]
    with sqlite_store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == cache
    assert gc.isenabled()  # on again afterwards, also after a bad line:
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(InvalidEventError):
        sqlite_store.import_files([tmp_path / "bad.jsonl"])
    assert gc.isenabled()
    gc.disable()  # and off if the caller had it off
    try:
        sqlite_store.import_files([path])
        assert not gc.isenabled()
    finally:
        gc.enable()
