"""The Dagster example: ``examples/dagster/definitions.py`` loads as valid Definitions and
``examples/dagster/run_demo.py``'s ``run`` materializes it against the sandbox (one asset fails
on purpose) and returns the rows of the demo summary table."""

from pathlib import Path
from types import ModuleType

from dagster import Definitions

from domino_orchestrate.core import DominoClient
from domino_orchestrate.sandbox.server import SandboxServer

from ..conftest import load_module

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "dagster"


def load(name: str) -> ModuleType:
    return load_module(f"dagster_example_{name}", EXAMPLES / f"{name}.py")


def test_definitions_load() -> None:
    defs = load("definitions").defs
    Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert keys == {"features", "train_model", "broken_report"}


def test_run_demo_rows(domino_sandbox: SandboxServer) -> None:
    srv = domino_sandbox
    rows = load("run_demo").run(srv.url, srv.api_key, "demo/quick-start")

    by_task = {row["task"]: row for row in rows}
    assert set(by_task) == {"features", "train_model", "broken_report"}
    assert all(row["orchestrator"] == "dagster" for row in rows)
    assert by_task["features"]["state"] == "Succeeded"
    assert by_task["train_model"]["state"] == "Succeeded"
    assert by_task["broken_report"]["state"] == "Failed"
    client = DominoClient(srv.url, "demo/quick-start", api_key=srv.api_key)
    for row in rows:
        assert client.get_job(row["job_id"]).status.value == row["state"]
    assert sum(srv.stats()["starts_by_title"].values()) == 3
    assert srv.api_key not in repr(rows)
