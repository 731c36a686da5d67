"""``DominoJobComponent`` loaded from a ``dg`` project's ``defs.yaml`` the way ``dg`` and
``dagster dev`` load it (``load_from_defs_folder``), then materialized against the sandbox."""

import textwrap
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, Definitions, load_from_defs_folder

from domino_orchestrate.sandbox.server import SandboxServer

PROJECT = "demo/quick-start"

DEFS_YAML = """
type: domino_orchestrate.dagster.DominoJobComponent
attributes:
  command: echo "orders for {{ env.ORDERS_DAY }}"
  assets:
    - key: orders/daily
      group_name: sales
    - key: orders/summary
      deps: [orders/daily]
  checks:
    - name: job_succeeded
      asset: orders/daily
  hardware_tier_name: Medium
  pool: domino
  domino:
    project: demo/quick-start
    poll_freq: 0.5
    initial_interval: 0.2
"""


def dg_project(root: Path, module: str, defs_yaml: str) -> Path:
    """A minimal ``dg`` project (pyproject ``[tool.dg]``, ``<module>.defs``) with one component."""
    (root / "pyproject.toml").write_text(textwrap.dedent(f"""
        [tool.dg]
        directory_type = "project"

        [tool.dg.project]
        root_module = "{module}"
    """))
    package = root / "src" / module
    (package / "defs" / "orders").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "defs" / "__init__.py").write_text("")
    (package / "defs" / "orders" / "defs.yaml").write_text(defs_yaml)
    return root


def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, yaml: str) -> Definitions:
    root = dg_project(tmp_path, module, yaml)
    monkeypatch.syspath_prepend(str(root / "src"))
    return load_from_defs_folder(path_within_project=root)


def test_component_from_yaml_materializes_against_the_sandbox(
    srv: SandboxServer, instance: DagsterInstance, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Credentials and host come from the DOMINO_* variables, not the YAML.
    monkeypatch.setenv("DOMINO_API_HOST", srv.url)
    monkeypatch.setenv("DOMINO_USER_API_KEY", srv.api_key)
    monkeypatch.setenv("ORDERS_DAY", "2026-11-30")
    defs = load(tmp_path, monkeypatch, "domino_component_project", DEFS_YAML)

    assets_def = defs.resolve_assets_def(AssetKey(["orders", "daily"]))
    assert assets_def.keys == {AssetKey(["orders", "daily"]), AssetKey(["orders", "summary"])}
    assert assets_def.op.pool == "domino"
    assert assets_def.specs_by_key[AssetKey(["orders", "daily"])].group_name == "sales"

    # As a launch of the project's assets does: the definitions' own asset job and resources.
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(instance=instance)

    assert result.success
    keys = {m.asset_key for m in result.get_asset_materialization_events()}
    assert keys == {AssetKey(["orders", "daily"]), AssetKey(["orders", "summary"])}
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "job_succeeded" and check.passed
    (ex,) = srv.ctx.store.all()
    body = srv.execution_info(ex.id)["startRequest"]
    assert body["commandToRun"] == 'echo "orders for 2026-11-30"'
    assert body["overrideHardwareTierId"] == "medium-k8s"
    assert body["title"].startswith("dagster: orders/daily, orders/summary [do:")
    assert ex.status == "Succeeded"


def test_a_yaml_mistake_is_reported_by_the_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = DEFS_YAML.replace("  pool: domino\n", "  pool: domino\n  hardware_tier: Medium\n")
    with pytest.raises(Exception) as raised:
        load(tmp_path, monkeypatch, "domino_component_bad_project", bad)
    chain, error = [], raised.value
    while error is not None:
        chain.append(str(error))
        error = error.__cause__ or error.__context__
    text = "\n".join(chain)
    assert "hardware_tier" in text and "Extra inputs are not permitted" in text, text
