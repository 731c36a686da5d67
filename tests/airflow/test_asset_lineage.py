"""Airflow users declare data with ``inlets``/``outlets`` Assets (which also drive Airflow's
data-aware scheduling): a Domino task's lineage, on Airflow's own task events and on our Domino-job
events, carries them as input/output datasets by the one naming rule, so the lineage store can
chain a producer DAG to a consumer DAG."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("airflow")


def _datasets(event: dict[str, Any], side: str) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in event.get(side) or ()}


def test_inlets_and_outlets_assets_are_the_tasks_datasets(
        domino_conn: Any, af: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        airflow_openlineage: None) -> None:
    from airflow.sdk import DAG, Asset

    from domino_orchestrate.airflow import DominoJobOperator

    for key in list(os.environ):
        if key.startswith("OPENLINEAGE"):
            monkeypatch.delenv(key)
    events_file = tmp_path / "events.jsonl"
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps(
        {"type": "file", "log_file_path": str(events_file), "append": True}))
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_SPOOL", str(tmp_path / "spool"))
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_DELIVERY_WAIT", "0")
    # Airflow's provider emits its task events from a forked child killed after execution_timeout
    # (10 s by default): too short on a loaded CI machine.
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__EXECUTION_TIMEOUT", "120")
    features, named = Asset("s3://lake/features"), Asset("churn_model")
    with DAG(f"assets_{uuid.uuid4().hex[:8]}", schedule=None) as dag:
        make = DominoJobOperator(task_id="features", command="echo features",
                                 outlets=[features], output_datasets=["warehouse:raw.copy"],
                                 **af.fast)
        train = DominoJobOperator(task_id="train", command="echo train",
                                  inlets=[features], outlets=[named], **af.fast)
        make >> train
    dag_run = af.run_dag(dag)
    assert str(dag_run.state) == "success"

    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    # Airflow's own task events carry its "airflow" facet; ours a "dominoJob" facet alone.
    domino = {name: [e for e in events if "airflow" not in e["run"]["facets"]
                     and e["job"]["name"] == f"{dag.dag_id}.{name}"] for name in ("features", "train")}
    airflow = {name: [e for e in events if "airflow" in e["run"]["facets"]
                      and e["job"]["name"] == f"{dag.dag_id}.{name}"
                      and e["eventType"] == "COMPLETE"] for name in ("features", "train")}
    for found in (domino, airflow):
        assert found["features"] and found["train"], [(e["eventType"], e["job"]["name"],
                                                       sorted(e["run"]["facets"])) for e in events]
        for event in found["features"]:
            assert _datasets(event, "outputs") == {("s3://lake", "features"),
                                                   ("warehouse", "raw.copy")}, event
        for event in found["train"]:
            assert _datasets(event, "inputs") == {("s3://lake", "features")}
            assert _datasets(event, "outputs") == {("airflow", "churn_model")}
