"""The store stays fast as it grows: every query that trace, history and stale(OUTPUT) make is
an index search (checked in SQLite's query plan of the statements they really run, which does
not depend on the machine's load), and a 10-deep trace over a few thousand events answers well
within the 100 ms goal. The full benchmark (100,000 events) is
``benchmarks/lineage_store.py``."""

from __future__ import annotations

import json
import statistics
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from domino_orchestrate.trace.store import LineageStore

from .pipeline import T0, Pipeline

DEPTH = 10


def deep_pipeline(rounds: int) -> list[dict[str, Any]]:
    """``rounds`` runs of a 10-stage chain, a day apart: one round built by our event builder,
    copied with new run ids and times (building each event costs more than storing it)."""
    p = Pipeline()
    for stage in range(DEPTH):
        p.run(f"stage{stage}", day=stage / 100, inputs=[f"stage{stage - 1}.parquet"] if stage
              else [], outputs=[f"stage{stage}.parquet"])
    events = []
    for round_ in range(rounds):
        for original in p.events:
            copy = json.loads(json.dumps(original))
            copy["run"]["runId"] = str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                  f"{round_}/{original['run']['runId']}"))
            when = datetime.fromisoformat(original["eventTime"]) + timedelta(days=round_)
            copy["eventTime"] = when.isoformat()
            events.append(copy)
    return events


def test_trace_lookups_use_indexes_and_stay_fast(tmp_path: Path) -> None:
    events = deep_pipeline(100)
    assert len(events) == 3000
    with LineageStore(tmp_path / "lineage.db") as store:
        started = time.process_time()
        assert store.ingest_many(events).new == 3000
        ingest_rate = 3000 / (time.process_time() - started)
        root = store.trace(f"stage{DEPTH - 1}.parquet")
        chain = [root]
        while chain[-1].upstream:
            (node,) = chain[-1].upstream
            chain.append(node)
        assert [n.run.component for n in chain] == [f"stage{s}" for s in range(DEPTH)][::-1]
        assert root.run.start_time == T0 + timedelta(days=99.09)  # the newest run of stage 9
        timings = []
        for _ in range(9):
            started = time.perf_counter()
            store.trace(f"stage{DEPTH - 1}.parquet")
            timings.append(time.perf_counter() - started)

        # Every query these answers make is an index search, never a scan of a table.
        statements: list[tuple[str, Any]] = []

        def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            statements.append((statement, parameters))

        event.listen(store.engine, "before_cursor_execute", capture)
        store.trace(f"stage{DEPTH - 1}.parquet")
        store.trace(f"s3://churn-bucket/stage{DEPTH - 1}.parquet")
        store.trace(root.run.run_id)
        store.history("stage3", limit=5)
        store.history(f"{root.run.namespace}/stage3", limit=5)
        store.stale(f"stage{DEPTH - 1}.parquet")
        event.remove(store.engine, "before_cursor_execute", capture)
        queries = [(sql, params) for sql, params in statements if sql.lstrip().startswith("SELECT")]
        assert len(queries) > 30
        with store.engine.connect() as conn:
            for sql, params in queries:
                plan = [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql,
                                                                params)]
                assert not any(step.startswith("SCAN") for step in plan), (sql, plan)
    assert statistics.median(timings) < 0.1, timings
    assert ingest_rate > 1000, ingest_rate  # CPU time: the full benchmark reports the real rate
