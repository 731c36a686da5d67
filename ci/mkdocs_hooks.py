"""MkDocs hook: lay the sources out as the installed package, for mkdocstrings.

The repository maps folders onto subpackages (``core/`` is ``domino_orchestrate.core``,
``integrations/airflow/`` is ``domino_orchestrate.airflow``, ``[tool.setuptools.package-dir]``).
Griffe reads sources statically and cannot follow that mapping, so before each build this hook
mirrors it with symlinks under ``build/docs-packages/`` (the path ``mkdocs.yml`` gives
mkdocstrings). Nothing is imported: documenting the Airflow operator does not need Airflow.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "build" / "docs-packages"


def package_tree(root: Path, target: Path) -> Path:
    """Mirror ``[tool.setuptools.package-dir]`` of ``root`` under ``target`` (replaced whole)."""
    mapping: dict[str, str] = tomllib.loads((root / "pyproject.toml").read_text())["tool"][
        "setuptools"]["package-dir"]
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".docs-packages-", dir=target.parent))
    # Shortest names first, so a package's folder exists before its mapped subpackages go in.
    for package in sorted(mapping, key=lambda name: name.count(".")):
        source = root / mapping[package]
        where = staging.joinpath(*package.split("."))
        if where.is_symlink() or where.exists():
            continue  # already inside a parent that was linked whole
        if any(other.startswith(package + ".") for other in mapping):
            where.mkdir(parents=True)  # a real folder: mapped subpackages go beside its files
            for child in source.iterdir():
                if child.name != "__pycache__":
                    (where / child.name).symlink_to(child)
        else:
            where.parent.mkdir(parents=True, exist_ok=True)
            where.symlink_to(source, target_is_directory=True)
    # Swap in whole, so parallel builds never see a half-made tree.
    old = target.with_name(f".old-{os.getpid()}-{target.name}")
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def on_startup(command: str, dirty: bool) -> None:
    """MkDocs entry point: lay out the package tree before any plugin is configured.

    mkdocstrings takes its search paths in its own ``on_config``, which runs before a hook's: a
    path that does not exist yet (a fresh clone) would be dropped.
    """
    package_tree(ROOT, TARGET)
