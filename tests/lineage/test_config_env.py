"""Lineage switches: nothing configured means no observers, no output; ``lineage_env`` and
``with_env_prefix`` (checked through a real /bin/sh)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from domino_orchestrate.core import DominoConfig
from domino_orchestrate.core.lineage import (
    LineageInfo,
    ParentRun,
    flush_spool,
    lineage_env,
    lineage_observers,
    lineage_run_id,
    with_env_prefix,
)
from domino_orchestrate.core.lineage.config import LineageSettings, job_namespace

INFO = LineageInfo(orchestrator="prefect", job_name="flow.task", run_key=("flow-run-1", "task-1"))


def config() -> DominoConfig:
    return DominoConfig.resolve("http://127.0.0.1:1", "alice/churn", api_key="key-123456")


def test_nothing_configured_means_no_observers_and_no_output(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert lineage_observers(INFO, config()) == []
    assert lineage_env(INFO, config()) == {}
    assert flush_spool() == (0, 0)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]


def test_openlineage_disabled_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENLINEAGE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    assert lineage_observers(INFO, config()) == []


@pytest.mark.parametrize(
    "setup",
    ["url", "transport_env", "yml_cwd", "yml_env", "databand"],
)
def test_each_configuration_source_enables_lineage(
    setup: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    yml = "transport:\n  type: file\n  log_file_path: " + str(tmp_path / "ol") + "\n"
    if setup == "url":
        monkeypatch.setenv("OPENLINEAGE_URL", "http://127.0.0.1:9")
    elif setup == "transport_env":
        monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "file")
        monkeypatch.setenv("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", str(tmp_path / "ol"))
    elif setup == "yml_cwd":
        (Path.cwd() / "openlineage.yml").write_text(yml)
    elif setup == "yml_env":
        (tmp_path / "elsewhere.yml").write_text(yml)
        monkeypatch.setenv("OPENLINEAGE_CONFIG", str(tmp_path / "elsewhere.yml"))
    else:
        monkeypatch.setenv("DOMINO_ORCHESTRATE_DATABAND_URL", "http://127.0.0.1:9/bulk")
    settings = LineageSettings.from_env()
    assert settings.openlineage
    observers = lineage_observers(INFO, config())
    assert [type(o).__name__ for o in observers] == ["OpenLineageObserver"]
    assert lineage_env(INFO, config()) == {}  # the command is not rewritten unless opted in
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_ENV", "true")
    assert lineage_env(INFO, config())["OPENLINEAGE_PARENT_RUN_ID"] == lineage_run_id(INFO)


def test_namespace_from_env_or_project(monkeypatch: pytest.MonkeyPatch) -> None:
    assert job_namespace(config()) == "domino.alice.churn"
    assert job_namespace(None) == "domino"
    monkeypatch.setenv("OPENLINEAGE_NAMESPACE", "prod")
    assert job_namespace(config()) == "prod"


def test_lineage_env_links_the_domino_run_and_its_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLINEAGE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_ENV", "true")
    run_id = lineage_run_id(INFO)
    env = lineage_env(INFO, config())
    assert env["OPENLINEAGE_PARENT_ID"] == f"domino.alice.churn/flow.task/{run_id}"
    assert env["OPENLINEAGE_PARENT_ID"].split("/") == [
        env["OPENLINEAGE_PARENT_JOB_NAMESPACE"], env["OPENLINEAGE_PARENT_JOB_NAME"],
        env["OPENLINEAGE_PARENT_RUN_ID"],
    ]
    # Without a parent, the Domino run is its own root.
    assert env["OPENLINEAGE_ROOT_PARENT_ID"] == env["OPENLINEAGE_PARENT_ID"]
    parent = ParentRun("prefect", "flow", "3f2c9a40-1111-4222-8333-444455556666")
    with_parent = lineage_env(
        LineageInfo("prefect", "flow.task", ("flow-run-1", "task-1"), parent=parent), config()
    )
    assert with_parent["OPENLINEAGE_ROOT_PARENT_ID"] == f"prefect/flow/{parent.run_id}"
    rooted = ParentRun("af", "dag.task", "r1", root_namespace="af", root_name="dag",
                       root_run_id="3f2c9a40-1111-4222-8333-444455556666")
    env3 = lineage_env(LineageInfo("airflow", "dag.task", ("k",), parent=rooted), config())
    assert env3["OPENLINEAGE_ROOT_PARENT_JOB_NAME"] == "dag"
    assert env3["OPENLINEAGE_ROOT_PARENT_RUN_ID"] == rooted.root_run_id
    assert "key-123456" not in repr(env3)


def test_with_env_prefix_survives_a_real_shell(tmp_path: Path) -> None:
    env = {"OPENLINEAGE_PARENT_ID": "ns/job name/1", "TRICKY": "a'b\"c $HOME; rm -rf /"}
    command = with_env_prefix('printf "%s|%s" "$OPENLINEAGE_PARENT_ID" "$TRICKY"', env)
    assert command.startswith("export ")
    out = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, check=True)
    assert out.stdout == "ns/job name/1|a'b\"c $HOME; rm -rf /"
    assert with_env_prefix("echo hi", {}) == "echo hi"
    with pytest.raises(ValueError):
        with_env_prefix("echo", {"BAD-NAME": "x"})


def test_settings_repr_hides_the_databand_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOMINO_ORCHESTRATE_DATABAND_URL", "http://127.0.0.1:9/bulk")
    monkeypatch.setenv("DOMINO_ORCHESTRATE_DATABAND_TOKEN", "dbnd-secret-token")
    settings: Any = LineageSettings.from_env()
    assert settings.databand_token == "dbnd-secret-token"
    assert "dbnd-secret-token" not in repr(settings)


def test_lineage_package_is_cheap_to_import() -> None:
    code = (
        "import sys; import domino_orchestrate.core.lineage as m; m.lineage_env; "
        "bad = [n for n in ('openlineage', 'mlflow', 'requests') if n in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
