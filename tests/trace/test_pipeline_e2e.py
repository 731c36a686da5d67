"""End to end: real Domino jobs (the sandbox, over HTTP) run features -> train -> report and
again with changes; our lineage emitter writes their events through ``type: domino_store`` in
``openlineage.yml`` (a composite transport also writes the JSON lines file); then the store
answers, and a second store fed by ``lineage import`` of that file answers the same."""

from __future__ import annotations

import contextlib
import json
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from domino_orchestrate.core import DominoClient, JobFailedError, PollOptions
from domino_orchestrate.core.lineage import (
    Dataset,
    LineageInfo,
    ParentRun,
    lineage_observers,
    lineage_run_id,
)
from domino_orchestrate.trace.model import RULE_FAILED, RULE_FRESHER, RULE_OLD
from domino_orchestrate.trace.store import LineageStore

pytest.importorskip("starlette")

FAST = PollOptions(poll_freq=0.3, initial_interval=0.1, stop_timeout=20)
DATA = "file:///data/churn"


def write_openlineage_yml(directory: Path, store: Path, jsonl: Path) -> None:
    (directory / "openlineage.yml").write_text(textwrap.dedent(f"""\
        transport:
          type: composite
          transports:
            store:
              type: domino_store
              store: {store}
            file:
              type: file
              log_file_path: {jsonl}
              append: true
        """))


def run_stage(client: DominoClient, name: str, number: int, command: str,
              inputs: tuple[str, ...], outputs: tuple[str, ...]) -> str:
    info = LineageInfo(
        orchestrator="cli", job_name=name, run_key=("churn", name, str(number)),
        parent=ParentRun("cli", "churn-pipeline", f"session-{number}"),
        inputs=tuple(Dataset(DATA, n) for n in inputs),
        outputs=tuple(Dataset(DATA, n) for n in outputs),
    )
    with contextlib.suppress(JobFailedError):  # a failing stage is part of the pipeline
        client.run_job(command, FAST, observers=lineage_observers(info, client.config),
                       idempotency_key=f"churn-{name}-{number}")
    return lineage_run_id(info)


def test_real_runs_through_openlineage_yml_then_queries_and_import(
        domino_sandbox: Any, tmp_path: Path) -> None:
    store_path, jsonl = tmp_path / "lineage.db", tmp_path / "lineage.jsonl"
    write_openlineage_yml(tmp_path, store_path, jsonl)  # the cwd (see conftest)
    srv = domino_sandbox
    with DominoClient(srv.url, "demo/quick-start", api_key=srv.api_key) as client:
        features1 = run_stage(client, "features", 1, "echo features v1", (), ("features.csv",))
        train1 = run_stage(client, "train", 1, "echo train", ("features.csv",), ("model.pkl",))
        report1 = run_stage(client, "report", 1, "echo report",
                            ("model.pkl", "features.csv"), ("report.html",))
        features2 = run_stage(client, "features", 2, "echo features v2; exit 3", (),
                              ("features.csv",))  # the re-run fails
        train2 = run_stage(client, "train", 2, "echo train again", ("features.csv",),
                           ("model.pkl",))

    with LineageStore(store_path) as store:
        # What real runs carry: Domino job ids and URLs, statuses, the parent session.
        run = store.inspect(train1)
        assert run.status == "COMPLETE" and run.domino_status == "Succeeded"
        assert run.domino_job_id and run.domino_job_url.endswith(run.domino_job_id)
        assert run.parent_name == "churn-pipeline" and run.orchestrator == "cli"
        assert store.inspect(run.parent_run_id).component == "churn-pipeline"  # its own START
        assert store.inspect(features2).domino_status == "Failed"

        root = store.trace("report.html")
        assert root.run.run_id == report1
        assert {n.via.name: n.run.run_id for n in root.upstream} == {
            "model.pkl": train1, "features.csv": features1}
        assert [n.run.run_id for n in root.upstream[0].upstream] == [features1]
        # The latest run of each component: train#2 read the failed features#2; report#1 used
        # train#1, and train has completed again since. features#2 failed: no fresher data.
        assert {(f.rule, f.run.run_id, f.dependency.run_id) for f in store.stale()} == {
            (RULE_FAILED, train2, features2), (RULE_FRESHER, report1, train1)}
        assert {(f.rule, f.dependency.run_id) for f in store.stale("report.html")} == {
            (RULE_FRESHER, train1)}
        # The runs were seconds apart: the "old" rule only fires with a threshold that small.
        assert RULE_OLD not in {f.rule for f in store.stale(report1)}
        assert RULE_OLD in {f.rule for f in store.stale(report1, threshold=timedelta(0))}
        expected = [r.to_dict() for r in store.recent(limit=100)]
        expected_trace = root.to_dict()

    # The file transport wrote the same events: imported twice, the same answers.
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    jobs = {e["run"]["runId"] for e in lines if e["job"]["name"] != "churn-pipeline"}
    assert jobs == {features1, train1, report1, features2, train2}
    with LineageStore(tmp_path / "imported.db") as imported:
        assert imported.import_files([jsonl]).new == len(lines)
        assert imported.import_files([jsonl]).new == 0
        assert [r.to_dict() for r in imported.recent(limit=100)] == expected
        assert imported.trace("report.html").to_dict() == expected_trace
