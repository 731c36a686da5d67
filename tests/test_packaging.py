"""The distribution as users install it: a built wheel holds every subpackage and entry point."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UV = Path(sys.executable).with_name("uv")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(  # uv: the build backend as pip would run it, from uv's cache (fast)
        [str(UV), "build", "--wheel", "-q", "--out-dir", str(out), str(ROOT)],
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


# --- metadata, licence, sdist, provider page (issue 17) ---------------------------------------

DOCS_URL = "https://domino-orchestrate.github.io/domino-orchestrate/"


def _metadata(wheel: zipfile.ZipFile) -> str:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return wheel.read(name).decode()


def test_wheel_carries_the_licence_classifiers_and_project_urls(wheel: zipfile.ZipFile) -> None:
    (licence,) = [n for n in wheel.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
    assert "Apache License" in wheel.read(licence).decode()
    metadata = _metadata(wheel)
    assert "License-Expression: Apache-2.0" in metadata
    for classifier in ("Framework :: Apache Airflow", "Framework :: Apache Airflow :: Provider",
                       "Framework :: Dagster", "Programming Language :: Python :: 3.10",
                       "Programming Language :: Python :: 3.11", "Typing :: Typed"):
        assert f"Classifier: {classifier}\n" in metadata, classifier
    assert "Author: " in metadata
    assert f"Project-URL: Documentation, {DOCS_URL}" in metadata
    assert "Project-URL: Source, " in metadata and "Project-URL: Changelog, " in metadata


def test_version_is_written_once(wheel: zipfile.ZipFile) -> None:
    import domino_orchestrate
    from domino_orchestrate.airflow.provider import get_provider_info

    version = domino_orchestrate.__version__
    assert f"\nVersion: {version}\n" in _metadata(wheel)
    assert get_provider_info()["versions"] == [version]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and f'"{version}"' not in pyproject


def test_sdist_ships_licence_examples_docs_and_changelog(tmp_path: Path) -> None:
    subprocess.run([str(UV), "build", "--sdist", "-q", "--out-dir", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    (sdist,) = tmp_path.glob("domino_orchestrate-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for shipped in ("LICENSE", "CHANGELOG.md", "mkdocs.yml", "docs/index.md", "docs/airflow.md",
                    "examples/airflow/domino_example_dag.py", "examples/prefect/domino_example_flow.py",
                    "examples/dagster/definitions.py", "examples/project/train.py"):
        assert shipped in names, shipped
    assert not any("__pycache__" in name for name in names)


def test_airflow_provider_page_gets_the_documentation_url(wheel: zipfile.ZipFile,
                                                          tmp_path: Path) -> None:
    # What the providers page and `airflow providers list` show: Airflow reads it from the
    # installed distribution's Project-URL, so install the built wheel where Airflow looks first.
    wheel.extractall(tmp_path / "site")
    code = ("from airflow.providers_manager import ProvidersManager\n"
            "info = ProvidersManager().providers['domino-orchestrate']\n"
            "print(info.data['documentation-url'])\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PYTHONPATH": str(tmp_path / "site")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == DOCS_URL


def test_private_framework_modules_are_imported_only_with_a_fallback() -> None:
    """A private module (``prefect._internal…``, ``dagster._core…``) can move in any release of
    the framework: ours import one only inside ``try`` with an ``ImportError`` fallback, or as
    the fallback for a framework too old to export the public name."""
    import ast

    unguarded = []
    for path in [*ROOT.glob("core/**/*.py"), *ROOT.glob("integrations/**/*.py"),
                 *ROOT.glob("src/**/*.py"), *ROOT.glob("sandbox/**/*.py")]:
        tree = ast.parse(path.read_text(), str(path))
        guarded: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Try) and any(
                    "ImportError" in ast.unparse(h.type or ast.Name("BaseException"))
                    for h in node.handlers):
                guarded.update(id(child) for child in ast.walk(node))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            if any(part.startswith("_") for name in names
                   if name.split(".")[0] in {"airflow", "prefect", "dagster"}
                   for part in name.split(".")[1:]) and id(node) not in guarded:
                unguarded.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not unguarded, unguarded
