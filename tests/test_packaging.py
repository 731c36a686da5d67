"""The distribution as users install it: a built wheel holds every subpackage and entry point."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    (built,) = out.glob("domino_orchestrate-*.whl")
    return zipfile.ZipFile(built)


def test_wheel_maps_each_folder_onto_its_subpackage(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for module in ("core/client.py", "core/lineage/__init__.py", "airflow/operators.py",
                   "prefect/__init__.py", "dagster/__init__.py", "sandbox/server.py",
                   "cli.py", "py.typed"):
        assert f"domino_orchestrate/{module}" in names, module


def test_wheel_declares_console_script_provider_and_pytest_plugin(wheel: zipfile.ZipFile) -> None:
    (entry_points,) = [n for n in wheel.namelist() if n.endswith("entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "domino-orchestrate = domino_orchestrate.cli:main" in text
    assert "[apache_airflow_provider]" in text and "get_provider_info" in text
    assert "[pytest11]" in text and "domino_orchestrate.sandbox.pytest_plugin" in text


def test_public_core_names_are_pinned() -> None:
    import domino_orchestrate.core as core

    assert {"DominoClient", "AsyncDominoClient", "JobSpec", "RunSpec", "PollOptions", "JobFailedError",
            "PollTimeoutError", "StopNotConfirmedError", "idempotency_key"} <= set(core.__all__)
    for name in core.__all__:
        assert getattr(core, name) is not None
