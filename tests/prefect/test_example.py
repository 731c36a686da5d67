"""The Prefect example and demo entry point run against the sandbox, and importing the
integration stays cheap (no HTTP client, no Prefect server, no database driver)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from ..conftest import load_module

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "prefect"


def _load(name: str) -> Any:
    sys.path.insert(0, str(EXAMPLES))
    try:
        return load_module(f"prefect_example_{name}", EXAMPLES / f"{name}.py")
    finally:
        sys.path.remove(str(EXAMPLES))


def test_run_demo_rows(sandbox: Any, prefect_api: str, domino: Any) -> None:
    rows = _load("run_demo").run(sandbox.url, sandbox.api_key, "demo/quick-start")
    assert [(r["orchestrator"], r["task"], r["state"]) for r in rows] == [
        ("prefect", "train", "Succeeded"), ("prefect", "validate", "Failed")]
    for row in rows:
        assert set(row) == {"orchestrator", "task", "job_id", "state"}
        assert domino.get_job(row["job_id"]).status.value == row["state"]
    assert sandbox.api_key not in repr(rows)


def test_import_is_cheap() -> None:
    code = (
        "import sys, domino_orchestrate.prefect\n"
        "heavy = ['requests', 'sqlalchemy', 'prefect.server.api.server', "
        "'domino_orchestrate.core.client', 'domino_orchestrate.sandbox', 'prefect.artifacts']\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_example_docstring_command_runs_as_written(sandbox: Any, prefect_api: str) -> None:
    """``python examples/prefect/domino_example_flow.py owner/project`` with the two DOMINO_*
    variables of its docstring (and the Prefect API the user's profile names)."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("DOMINO_")}
    env.update({"DOMINO_API_HOST": sandbox.url, "DOMINO_USER_API_KEY": sandbox.api_key,
                "PREFECT_API_URL": prefect_api})
    out = subprocess.run([sys.executable, str(EXAMPLES / "domino_example_flow.py"),
                          "demo/quick-start"], env=env, capture_output=True, text=True,
                         timeout=240, cwd=EXAMPLES.parents[1])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "'task': 'train', " in out.stdout and "'state': 'Succeeded'" in out.stdout
    assert "'task': 'validate', " in out.stdout and "'state': 'Failed'" in out.stdout
    assert sandbox.api_key not in out.stdout + out.stderr
