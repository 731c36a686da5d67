"""A real orchestrator feeding the store: Dagster materializes features -> train -> report as
Domino jobs (the sandbox), our integration names the datasets by asset key, the emitter writes
to ``DOMINO_ORCHESTRATE_LINEAGE_STORE``; a re-materialization of features makes the downstream
assets stale, and trace follows the asset graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from domino_orchestrate.trace.model import RULE_FRESHER
from domino_orchestrate.trace.store import LineageStore

dagster = pytest.importorskip("dagster")


def test_dagster_materializations_traced_and_stale(
        domino_sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from domino_orchestrate.dagster import DominoResource, domino_job_asset

    store_path = tmp_path / "lineage.db"
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_STORE", str(store_path))
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_DELIVERY_WAIT", "0")
    srv = domino_sandbox
    domino = DominoResource(host=srv.url, project="demo/quick-start", api_key=srv.api_key,
                            poll_freq=0.3, initial_interval=0.1, stop_timeout=15)
    features = domino_job_asset("features", "echo features")
    train = domino_job_asset("train", "echo train", deps=[features])
    report = domino_job_asset("report", "echo report", deps=[train, features])
    with dagster.DagsterInstance.ephemeral() as instance:
        first = dagster.materialize([features, train, report], resources={"domino": domino},
                                    instance=instance)
        assert first.success
        again = dagster.materialize([features], resources={"domino": domino},
                                    instance=instance)
        assert again.success

    with LineageStore(store_path) as store:
        root = store.trace("report")  # the asset key is the dataset name
        assert (root.run.orchestrator, root.run.status) == ("dagster", "COMPLETE")
        assert root.run.domino_job_id and root.run.parent_run_id == first.run_id
        assert [o.name for o in root.run.outputs] == ["report"]
        upstream = {node.via.name: node for node in root.upstream}
        assert set(upstream) == {"train", "features"}
        assert [n.via.name for n in upstream["train"].upstream] == ["features"]
        # The first features run fed both; features has run again since: both are stale.
        first_features = upstream["features"].run.run_id
        assert upstream["train"].upstream[0].run.run_id == first_features
        findings = {(f.run.run_id, f.dependency.run_id, f.rule) for f in store.stale("report")}
        assert findings == {(root.run.run_id, first_features, RULE_FRESHER),
                            (upstream["train"].run.run_id, first_features, RULE_FRESHER)}
        newest = store.history(upstream["features"].run.component, limit=1)[0]
        assert newest.run_id != first_features and newest.parent_run_id == again.run_id
