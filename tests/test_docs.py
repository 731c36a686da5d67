"""The documentation site builds with warnings as errors, says what users need, and the public API
it is generated from has docstrings.

The build is the real one (``mkdocs build --strict`` on ``mkdocs.yml``: Material, mkdocstrings
reading our sources through griffe), into a temporary directory.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BUILD_BUDGET_S = 60.0

#: Modules whose public names (``__all__``, else every name without a leading underscore, and the
#: public methods and properties of their classes) must all have a docstring. Grow this list as
#: modules are documented; every module listed stays documented.
DOCUMENTED_MODULES = [
    "domino_orchestrate.core.client",
    "domino_orchestrate.core.errors",
    "domino_orchestrate.core.config",
    "domino_orchestrate.core.models",
    "domino_orchestrate.core.status",
    "domino_orchestrate.core.identity",
    "domino_orchestrate.core.extras",
    "domino_orchestrate.core.lineage",
    "domino_orchestrate.core.lineage.config",
    "domino_orchestrate.core.lineage.naming",
    "domino_orchestrate.core.lineage.observer",
    "domino_orchestrate.core.lineage.mlflow_sink",
    "domino_orchestrate.core.lineage.transports",
    "domino_orchestrate.core.lineage.events",
    "domino_orchestrate.core.observe",
    "domino_orchestrate.core.retry",
    "domino_orchestrate.core.transport",
    "domino_orchestrate.core.api",
    "domino_orchestrate.core.flows",
    "domino_orchestrate.airflow.operators",
    "domino_orchestrate.airflow.sensors",
    "domino_orchestrate.airflow.triggers",
    "domino_orchestrate.airflow.hooks",
    "domino_orchestrate.airflow.links",
    "domino_orchestrate.airflow.provider",
    "domino_orchestrate.airflow.openlineage",
    "domino_orchestrate.prefect.credentials",
    "domino_orchestrate.prefect.jobs",
    "domino_orchestrate.dagster.resource",
    "domino_orchestrate.dagster.assets",
    "domino_orchestrate.injob",
    "domino_orchestrate.core.messages",
    "domino_orchestrate.airflow.compat",
    "domino_orchestrate.airflow.hooks_lazy",
    "domino_orchestrate.prefect._common",
    "domino_orchestrate.prefect.tasks",
    "domino_orchestrate.dagster.pipes",
    "domino_orchestrate.cli",
    "domino_orchestrate._terminal",
    "domino_orchestrate.trace.cli",
    "domino_orchestrate.trace.web",
    "domino_orchestrate.trace.store",
    "domino_orchestrate.trace.events",
    "domino_orchestrate.core.lineage.parents",
    "domino_orchestrate.dagster.lineage",
    "domino_orchestrate.sandbox.app",
    "domino_orchestrate.sandbox.faults",
    "domino_orchestrate.sandbox.middleware",
    "domino_orchestrate.sandbox.processes",
    "domino_orchestrate.sandbox.server",
    "domino_orchestrate.sandbox.state",
    "domino_orchestrate.sandbox.stdout",
    "domino_orchestrate.sandbox.views",
    "domino_orchestrate.compat",
    "domino_orchestrate.core.command",
    "domino_orchestrate.core.stdout",
    "domino_orchestrate.core.lineage.ids",
    "domino_orchestrate.core.lineage.injob",
    "domino_orchestrate.core.lineage.journal",
    "domino_orchestrate.core.lineage.reported",
    "domino_orchestrate.core.lineage.spool",
    "domino_orchestrate.dagster.components",
    "domino_orchestrate.prefect.flows",
    "domino_orchestrate.sandbox.pytest_plugin",
    "domino_orchestrate.trace.errors",
    "domino_orchestrate.trace.model",
    "domino_orchestrate.trace.render",
    "domino_orchestrate.trace.schema",
    "domino_orchestrate.trace.transport",
]


def _load_mkdocs_hooks():  # the hook that lays the sources out as the installed package
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "ci" / "mkdocs_hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    assert elapsed < BUILD_BUDGET_S, f"docs build took {elapsed:.0f} s (budget {BUILD_BUDGET_S:.0f} s)"
    return out


def _text(site: Path, page: str) -> str:
    html = (site / page / "index.html").read_text()
    return re.sub(r"<[^>]+>", "", html)


def test_every_page_is_built_and_linked(site: Path) -> None:
    for page in ("airflow", "prefect", "dagster", "cli", "lineage", "lineage-store", "environment",
                 "migration", "changelog", "reference/core", "reference/errors",
                 "reference/airflow", "reference/prefect", "reference/dagster",
                 "reference/lineage"):
        assert (site / page / "index.html").is_file(), page
    home = (site / "index.html").read_text()
    for page in ("airflow/", "prefect/", "dagster/", "environment/", "reference/core/"):
        assert f'href="{page}"' in home or f'href="./{page}"' in home, page


def test_home_page_shows_install_lines_and_every_extra(site: Path) -> None:
    text = re.sub(r"<[^>]+>", "", (site / "index.html").read_text())
    for orchestrator in ("airflow", "prefect", "dagster"):
        assert f"pip install 'domino-orchestrate[{orchestrator}]'" in text.replace("&#39;", "'")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in set(extras) - {"dev"}:
        assert re.search(rf"\b{re.escape(extra)}\b", text), f"extra {extra!r} is not listed"


def test_each_orchestrator_page_covers_what_a_user_does_first(site: Path) -> None:
    for page, example_marker in (("airflow", "hello_domino"), ("prefect", "domino-example"),
                                 ("dagster", "broken_report")):
        text = _text(site, page)
        for heading in ("Install", "Credentials", "Retries and reruns", "Cancellation",
                        "Lineage", "Troubleshooting"):
            assert heading in text, (page, heading)
        assert example_marker in text, f"{page}: the example is not included"


def test_api_reference_is_generated_from_docstrings(site: Path) -> None:
    core = _text(site, "reference/core")
    assert "DominoClient" in core and "AsyncDominoClient" in core
    assert "run_job" in core and "Start a Domino job and wait for it" in core
    errors = _text(site, "reference/errors")
    assert "JobFailedError" in errors and "PollTimeoutError" in errors
    assert "DominoJobOperator" in _text(site, "reference/airflow")
    assert "DominoResource" in _text(site, "reference/dagster")


def _variables_read_by_the_code() -> set[str]:
    names: set[str] = set()
    for folder in ("core", "integrations", "src", "sandbox"):
        for path in (ROOT / folder).rglob("*.py"):
            names.update(re.findall(r"[\"'](DOMINO_[A-Z0-9_]*[A-Z0-9])[\"']", path.read_text()))
    names.discard("DOMINO_ORCHESTRATE")  # a tag value (the lineage source), not a variable
    return names


def test_environment_page_lists_every_variable_the_code_reads() -> None:
    documented = set(re.findall(r"`(DOMINO_[A-Z0-9_]+)`", (DOCS / "environment.md").read_text()))
    read = _variables_read_by_the_code()
    assert len(read) >= 20, sorted(read)  # the scan itself works
    assert read <= documented, f"undocumented: {sorted(read - documented)}"


def _public_names_without_docstring(tree: Path, modules: list[str]) -> tuple[int, list[str]]:
    import griffe

    loader = griffe.GriffeLoader(search_paths=[str(tree)])
    loader.load("domino_orchestrate")
    package = loader.modules_collection["domino_orchestrate"]
    checked, missing = 0, []

    def check(obj: griffe.Object) -> None:
        nonlocal checked
        checked += 1
        if not (obj.docstring and obj.docstring.value.strip()):
            missing.append(obj.path)

    for dotted in modules:
        module = package.get_member(dotted.removeprefix("domino_orchestrate."))
        exported = module.exports
        names = ([str(n) for n in exported] if exported is not None
                 else [n for n in module.members if not n.startswith("_")])
        for name in names:
            member = module.members.get(name)
            if member is None or member.is_alias or member.is_module or member.is_attribute:
                continue  # re-exports are checked where they are defined; constants need none
            check(member)
            if member.is_class:
                for method_name, method in member.members.items():
                    if method_name.startswith("_") or method.is_alias or method.is_attribute:
                        continue
                    check(method)
    return checked, missing


def test_public_api_has_docstrings(tmp_path: Path) -> None:
    tree = _load_mkdocs_hooks().package_tree(ROOT, tmp_path / "packages")
    checked, missing = _public_names_without_docstring(tree, DOCUMENTED_MODULES)
    assert checked > 150, checked  # the checker does see the API
    assert not missing, f"{len(missing)} of {checked} public names have no docstring:\n" + "\n".join(
        missing)
