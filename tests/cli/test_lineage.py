"""Lineage of a CLI run (issue 14), read from openlineage-python's file transport: the datasets
given with --input/--output reach the job's events, and the CLI invocation is a run of its own
(START before its job's, COMPLETE/FAIL/ABORT after) whose id the job's parent facet names, so
that facet never points at an orphan. Bad dataset names are refused before anything is started.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from domino_orchestrate.sandbox import SandboxServer

from .conftest import cli_env, executions_titled, popen_cli, run_cli, signal_after_first_line

INPUTS = ["warehouse:sales.orders", "s3://bucket/raw/orders.csv"]
OUTPUTS = ["postgres://db:5432/shop.public.features"]
EXPECTED_INPUTS = [("warehouse", "sales.orders"), ("s3://bucket", "raw/orders.csv")]
EXPECTED_OUTPUTS = [("postgres://db:5432", "shop.public.features")]


def _lineage_env(sandbox: SandboxServer, tmp_path: Path) -> dict[str, str]:
    return cli_env(
        sandbox.url, sandbox.api_key,
        OPENLINEAGE__TRANSPORT__TYPE="file",
        OPENLINEAGE__TRANSPORT__LOG_FILE_PATH=str(tmp_path / "ol.jsonl"),
        OPENLINEAGE__TRANSPORT__APPEND="true",
        DOMINO_ORCHESTRATE_LINEAGE_SPOOL=str(tmp_path / "spool"),
    )


def _events(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "ol.jsonl").read_text().splitlines()]


def _split(events: list[dict[str, Any]], title: str) -> tuple[list[Any], list[Any]]:
    """(the CLI session's events, the Domino job's events), each in emission order."""
    job = [e for e in events if e["job"]["name"] == title]
    session = [e for e in events if e["job"]["name"] != title]
    return session, job


def _datasets(event: dict[str, Any], key: str) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in event.get(key) or []]


def _assert_parent_is_the_session(session: list[Any], job: list[Any]) -> None:
    run_ids = {e["run"]["runId"] for e in session}
    assert len(run_ids) == 1, session
    names = {(e["job"]["namespace"], e["job"]["name"]) for e in session}
    for event in job:
        parent = event["run"]["facets"]["parent"]
        assert parent["run"]["runId"] in run_ids
        assert (parent["job"]["namespace"], parent["job"]["name"]) in names
    job_type = session[0]["job"]["facets"]["jobType"]
    assert (job_type["integration"], job_type["jobType"]) == ("CLI", "COMMAND")


def test_run_sends_its_datasets_and_its_session_is_the_jobs_parent(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    title = "ol-datasets"
    args = [a for d in INPUTS for a in ("--input", d)] + [a for d in OUTPUTS
                                                          for a in ("--output", d)]
    done = run_cli(_lineage_env(sandbox, tmp_path), "run", "--poll-freq", "0.2", "--title",
                   title, *args, "echo hi")
    assert done.returncode == 0, done.stderr
    events = _events(tmp_path)
    session, job = _split(events, title)
    # The session starts first and ends last: its job runs inside it.
    assert [e["eventType"] for e in session] == ["START", "COMPLETE"]
    assert events[0] is session[0] and events[-1] is session[-1]
    assert [e["eventType"] for e in job] == ["START", "COMPLETE"]
    _assert_parent_is_the_session(session, job)
    for event in job:
        assert _datasets(event, "inputs") == EXPECTED_INPUTS
        assert _datasets(event, "outputs") == EXPECTED_OUTPUTS
    [execution] = executions_titled(sandbox, title)
    assert execution.status == "Succeeded"


def test_a_failed_job_fails_its_session(sandbox: SandboxServer, tmp_path: Path) -> None:
    done = run_cli(_lineage_env(sandbox, tmp_path), "run", "--poll-freq", "0.2", "--title",
                   "ol-failing", "exit 3")
    assert done.returncode == 1, done.stderr
    session, job = _split(_events(tmp_path), "ol-failing")
    assert [e["eventType"] for e in session] == ["START", "FAIL"]
    assert job[-1]["eventType"] == "FAIL"
    assert "Failed" in session[-1]["run"]["facets"]["errorMessage"]["message"]
    _assert_parent_is_the_session(session, job)


@pytest.mark.xdist_group("cli-signals")
def test_a_signal_aborts_the_session_after_its_job_stopped(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    proc = popen_cli(_lineage_env(sandbox, tmp_path), "run", "--poll-freq", "0.3", "--title",
                     "ol-signal", "echo started; sleep 60")
    err = signal_after_first_line(proc, "started", signal.SIGTERM)
    assert proc.returncode == 128 + signal.SIGTERM, err
    session, job = _split(_events(tmp_path), "ol-signal")
    assert [e["eventType"] for e in session] == ["START", "ABORT"]
    assert job[-1]["eventType"] in {"ABORT", "FAIL"}
    _assert_parent_is_the_session(session, job)
    [execution] = executions_titled(sandbox, "ol-signal")
    assert execution.status == "Stopped"


BAD_DATASETS = {
    "no namespace": ("--input", "orders.csv", "has no namespace"),
    "empty name": ("--output", "warehouse:", "needs both a namespace and a name"),
    "empty namespace": ("--input", ":orders", "needs both a namespace and a name"),
    "uri without path": ("--input", "s3://bucket", "needs both a location and a path"),
    "space": ("--output", "ware house:orders", "no spaces"),
    "escape": ("--input", "ns:\x1b]0;x\x07", "no spaces or control characters"),
}


@pytest.mark.parametrize(("option", "value", "says"), list(BAD_DATASETS.values()),
                         ids=list(BAD_DATASETS))
def test_a_bad_dataset_is_one_clear_usage_error_before_anything_starts(
    hostile: Any, option: str, value: str, says: str
) -> None:
    env = cli_env(hostile.url, "hostile-key-0123456789", project="alice/churn",
                  DOMINO_MAX_RETRIES="0")
    done = run_cli(env, "run", option, value, "python train.py")
    assert done.returncode == 2, done.stderr
    error = " ".join(done.stderr.replace("\u2502", " ").split())  # rich's panel wraps lines
    assert says in error and option in error and "NAMESPACE:NAME" in error, done.stderr
    assert "Traceback" not in done.stderr and "\x1b]" not in done.stderr
    assert hostile.received == []
