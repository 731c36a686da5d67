"""What lineage promises the user without any server: the command is never rewritten by default,
the command param is the command as written, Databricks naming and filter rules, and our own
OpenLineage facets (Domino job, Databand log/startTime/tags) valid against their own schemas."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from openlineage.client.serde import Serde

from domino_orchestrate.core import JobHandle, JobSnapshot, JobSpec, JobStatus, LogLine
from domino_orchestrate.core.lineage import LineageInfo, ParentRun, lineage_env, with_env_prefix
from domino_orchestrate.core.lineage.config import LineageSettings, mlflow_experiment_name
from domino_orchestrate.core.lineage.events import SCHEMA_DIR, LineageRun
from domino_orchestrate.core.lineage.mlflow_sink import tag_filter, user_command
from domino_orchestrate.core.lineage.observer import OpenLineageObserver

INFO = LineageInfo("prefect", "flow.train", ("flow-run-1", "train"),
                   parent=ParentRun("prefect", "flow", "0b6f7c62-8d7e-4c5b-9a37-6f1b2b0e9d11"))


@pytest.fixture
def openlineage_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "file")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", str(tmp_path / "ol.jsonl"))
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__APPEND", "true")


def test_the_command_is_sent_as_written_unless_the_user_opts_in_to_env(
    openlineage_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = "python train.py --name 'a b'"
    # Every integration sends with_env_prefix(command, lineage_env(...)): untouched by default.
    assert lineage_env(INFO) == {}
    assert with_env_prefix(command, lineage_env(INFO)) == command
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_ENV", "true")
    env = lineage_env(INFO)
    assert env["OPENLINEAGE_PARENT_JOB_NAME"] == "flow.train"
    assert with_env_prefix(command, env).startswith("export OPENLINEAGE_PARENT_ID=")


@pytest.mark.parametrize("command", [
    "python train.py --name 'a b'",
    "export FOO=1; python train.py",  # the user's own export stays
    "python -c \"print('it''s')\" | tee out.txt",
])
def test_the_command_param_is_the_users_command_even_with_env_opted_in(command: str) -> None:
    env = {"OPENLINEAGE_PARENT_ID": "domino.a.b/flow.train/1f0e-…", "DAGSTER_PARTITION_KEY":
           "2026-11-30 it's", "OPENLINEAGE_ROOT_PARENT_RUN_ID": "x y"}
    assert user_command(with_env_prefix(command, env)) == command
    assert user_command(command) == command
    assert user_command(("python", "train.py", "--epochs", "3")) == "python train.py --epochs 3"


def test_databricks_experiment_names_are_workspace_paths_and_filters_quote_keys() -> None:
    assert mlflow_experiment_name("domino-orchestrate", "databricks") == "/Shared/domino-orchestrate"
    assert mlflow_experiment_name("/Users/me@x.com/exp", "databricks://prof") == \
        "/Users/me@x.com/exp"
    assert mlflow_experiment_name("exp", "http://127.0.0.1:5000") == "exp"
    settings = LineageSettings.from_env({"DOMINO_ORCHESTRATE_MLFLOW_TRACKING_URI": "databricks"})
    assert settings.mlflow_experiment == "/Shared/domino-orchestrate"
    assert tag_filter("domino.job_id", "6b03dc") == "tags.\"domino.job_id\" = '6b03dc'"
    with pytest.raises(ValueError, match="quotes"):
        tag_filter("domino.job_id", "x' OR '1'='1")


def _events(tail: list[str]) -> list[dict[str, Any]]:
    sent: list[Any] = []
    run = LineageRun.create(INFO, "domino.alice.churn", "alice/churn")
    observer = OpenLineageObserver(run, sent.append)
    started = datetime(2026, 11, 30, 1, 0, 5, tzinfo=timezone.utc)
    completed = datetime(2026, 11, 30, 1, 2, 0, tzinfo=timezone.utc)
    handle = JobHandle("6b03dc4e384459ed41115bd0", url="https://domino.example.com/jobs/x")
    observer.on_submitted(handle, JobSpec("python train.py", title="nightly", commit_id="c0ffee",
                                          environment_id="env-1", hardware_tier_name="Small"))
    observer.on_status(JobSnapshot(handle.job_id, JobStatus.RUNNING, "Running", started_at=started))
    for text in tail:
        observer.on_line(LogLine(text))
    observer.on_finished(JobSnapshot(
        handle.job_id, JobStatus.SUCCEEDED, "Succeeded", started_at=started, completed_at=completed,
        output_commit_id="beef01", url=handle.url), None)
    return [Serde.to_dict(event) for event in sent]


def test_every_event_carries_the_domino_job_and_databand_facets(ol_schema: Any) -> None:
    start, running, complete = _events(["epoch 1", "epoch 2"])
    for event in (start, running, complete):
        ol_schema.validate(event)  # including our facets, against schemas/*.json
        job = event["run"]["facets"]["dominoJob"]
        assert job["jobId"] == "6b03dc4e384459ed41115bd0" and job["commitId"] == "c0ffee"
        assert job["title"] == "nightly" and job["environmentId"] == "env-1"
        tags = event["run"]["facets"]["tags"]
        assert (tags["projectName"], tags["runName"]) == ("alice/churn", "flow.train")
    assert "startTime" not in start["run"]["facets"]
    assert running["run"]["facets"]["startTime"]["startTime"] == "2026-11-30T01:00:05+00:00"
    facets = complete["run"]["facets"]
    assert facets["dominoJob"]["outputCommitId"] == "beef01"
    assert facets["dominoJob"]["status"] == "Succeeded"
    assert facets["log"] == {**facets["log"], "logBody": "epoch 1\nepoch 2",
                             "logUrl": "https://domino.example.com/jobs/x"}
    assert complete["eventTime"] == "2026-11-30T01:02:00+00:00"  # Domino's clock
    commit_tags = {t["key"]: t["value"] for t in facets["tags"]["tags"]}
    assert commit_tags["domino.output_commit_id"] == "beef01"
    assert commit_tags["domino.commit_id"] == "c0ffee"


def test_our_facet_schemas_are_real_schemas(ol_schema: Any) -> None:
    """The schemas reject what they should: a facet without its required field fails."""
    from jsonschema import ValidationError

    complete = _events(["x"])[-1]
    for name in ("dominoJob", "log", "startTime"):
        assert complete["run"]["facets"][name]["_schemaURL"].split("#")[0] in ol_schema.ids
    broken = json.loads(json.dumps(complete))
    del broken["run"]["facets"]["dominoJob"]["jobId"]
    with pytest.raises(ValidationError, match="jobId"):
        ol_schema.validate(broken)
    for path in SCHEMA_DIR.glob("*.json"):
        doc = json.loads(path.read_text())
        assert doc["$id"].endswith(f"/core/lineage/schemas/{path.name}")


def test_the_parent_run_has_its_own_events(
    openlineage_on: None, tmp_path: Path, ol_schema: Any
) -> None:
    """A Prefect flow run / Dagster run / CLI session emits START and COMPLETE under the id its
    Domino jobs' ``parent`` facet names."""
    from domino_orchestrate.core.lineage import emit_parent_event
    from domino_orchestrate.core.lineage.events import parent_facet

    parent = INFO.parent
    assert parent is not None
    assert emit_parent_event(parent, "START", orchestrator="prefect")
    assert emit_parent_event(parent, "FAIL", orchestrator="prefect", error="task train failed")
    events = [json.loads(line) for line in (tmp_path / "ol.jsonl").read_text().splitlines()]
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    child_parent = Serde.to_dict(parent_facet(parent))
    for event in events:
        ol_schema.validate(event)
        assert event["run"]["runId"] == child_parent["run"]["runId"]
        assert (event["job"]["namespace"], event["job"]["name"]) == (
            child_parent["job"]["namespace"], child_parent["job"]["name"])
    assert events[1]["run"]["facets"]["errorMessage"]["message"] == "task train failed"


def test_no_parent_events_without_configuration() -> None:
    from domino_orchestrate.core.lineage import emit_parent_event

    assert INFO.parent is not None
    assert emit_parent_event(INFO.parent, "START", orchestrator="cli") is False
