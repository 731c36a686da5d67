"""``domino_job_asset`` the way Dagster users expect: ``AssetSpec`` / ``multi_asset`` input,
``check_specs`` that pass or fail with the job, ``pool``, ``automation_condition``,
``backfill_policy``, a run config for launch-time overrides, job titles from the asset key, and
the resource inside an ``@asset_check`` — each against the sandbox over real HTTP.

(No ``from __future__ import annotations``: Dagster reads the context annotation.)
"""

from typing import Any

import pytest
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSpec,
    AssetKey,
    AssetSpec,
    AutomationCondition,
    BackfillPolicy,
    DagsterInstance,
    DailyPartitionsDefinition,
    Definitions,
    asset_check,
    materialize,
)
from dagster_shared.libraries import DagsterLibraryRegistry

import domino_orchestrate
from domino_orchestrate.core import ConfigurationError
from domino_orchestrate.dagster import DominoJobConfig, DominoResource, domino_job_asset
from domino_orchestrate.sandbox.server import SandboxServer


def start_requests(srv: SandboxServer) -> list[dict[str, Any]]:
    """The body of every start request the sandbox received, oldest first."""
    return [srv.execution_info(ex.id)["startRequest"] for ex in srv.ctx.store.all()]


def check_results(result: Any) -> dict[str, Any]:
    return {ev.check_name: ev for ev in result.get_asset_check_evaluations()}


def test_asset_spec_input_titles_the_job_after_the_asset_key(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance
) -> None:
    spec = AssetSpec(["orders", "daily"], group_name="sales", owners=["team:data"])
    orders = domino_job_asset(spec, "echo orders")
    result = materialize([orders], resources={"domino": domino}, instance=instance)

    assert result.success
    (mat,) = result.get_asset_materialization_events()
    assert mat.asset_key == AssetKey(["orders", "daily"])
    assert mat.materialization.metadata["domino_status"].value == "Succeeded"
    (body,) = start_requests(srv)
    assert body["title"].startswith("dagster: orders/daily [do:"), body["title"]
    assert "__" not in body["title"].split(" [do:")[0]
    assert orders.specs_by_key[AssetKey(["orders", "daily"])].group_name == "sales"


def test_several_specs_are_one_multi_asset_run_by_one_job(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance
) -> None:
    both = domino_job_asset([AssetSpec("raw"), AssetSpec("clean", deps=["raw"])], "echo both",
                            op_name="raw_and_clean")
    assert both.op.name == "raw_and_clean"
    result = materialize([both], resources={"domino": domino}, instance=instance)

    assert result.success
    keys = {m.asset_key for m in result.get_asset_materialization_events()}
    assert keys == {AssetKey("raw"), AssetKey("clean")}
    (body,) = start_requests(srv)  # one Domino job materialized both
    assert body["title"].startswith("dagster: clean, raw [do:"), body["title"]


def test_spec_attributes_given_beside_specs_are_one_clear_error() -> None:
    with pytest.raises(ConfigurationError, match=r"group_name.*set them on the AssetSpec"):
        domino_job_asset(AssetSpec("x"), "echo x", group_name="g")
    with pytest.raises(ConfigurationError, match="AssetSpec"):
        domino_job_asset([], "echo x")


def test_pool_automation_condition_and_backfill_policy_reach_dagster() -> None:
    condition = AutomationCondition.eager()
    policy = BackfillPolicy.single_run()
    daily = DailyPartitionsDefinition("2026-01-01")
    named = domino_job_asset("scored", "echo {partition_key}", partitions_def=daily,
                             pool="domino-gpu", automation_condition=condition,
                             backfill_policy=policy)
    assert named.op.pool == "domino-gpu"
    assert named.automation_conditions_by_key[AssetKey("scored")] == condition
    assert named.backfill_policy == policy
    own = AutomationCondition.on_cron("0 6 * * *")
    multi = domino_job_asset(
        [AssetSpec("a", automation_condition=own), AssetSpec("b")], "echo ab",
        pool="domino-gpu", backfill_policy=policy, partitions_def=daily,
        automation_condition=condition)
    assert multi.op.pool == "domino-gpu" and multi.backfill_policy == policy
    # The factory's condition fills in for a spec without one; a spec's own is kept.
    assert multi.automation_conditions_by_key[AssetKey("a")] == own
    assert multi.automation_conditions_by_key[AssetKey("b")] == condition
    # The definitions load as Dagster validates them (pool, policy, partitions together).
    Definitions(assets=[named, multi], resources={"domino": DominoResource(project="a/b")}
                ).resolve_all_job_defs()


def test_check_specs_pass_with_a_succeeded_job(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance
) -> None:
    checked = domino_job_asset("checked", "echo ok",
                               check_specs=[AssetCheckSpec("job_succeeded", asset="checked")])
    result = materialize([checked], resources={"domino": domino}, instance=instance)

    assert result.success
    evaluation = check_results(result)["job_succeeded"]
    assert evaluation.passed is True
    job_id = evaluation.metadata["domino_job_id"].value
    assert srv.execution_info(job_id)["status"] == "Succeeded"


def test_check_specs_fail_with_a_failed_job(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance
) -> None:
    checked = domino_job_asset("broken", "echo bad; exit 3",
                               check_specs=[AssetCheckSpec("job_succeeded", asset="broken")])
    result = materialize([checked], resources={"domino": domino}, instance=instance,
                         raise_on_error=False)

    assert not result.success
    evaluation = check_results(result)["job_succeeded"]
    assert evaluation.passed is False
    assert evaluation.metadata["domino_status"].value == "Failed"
    assert not result.get_asset_materialization_events()


def test_run_config_overrides_reach_the_start_request(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance
) -> None:
    report = domino_job_asset("report", "echo report", hardware_tier_name="Small")
    config = DominoJobConfig(command_args=["--full", "it's"], hardware_tier_name="Medium",
                             title="report rerun")
    result = materialize([report], resources={"domino": domino}, instance=instance,
                         run_config={"ops": {"report": {"config": config.model_dump()}}})

    assert result.success
    (body,) = start_requests(srv)
    assert body["commandToRun"] == "echo report --full 'it'\"'\"'s'"
    assert body["overrideHardwareTierId"] == "medium-k8s"
    assert body["title"].startswith("report rerun [do:")
    # Without run config the asset runs as defined.
    again = materialize([report], resources={"domino": domino}, instance=instance)
    assert again.success
    assert start_requests(srv)[-1]["commandToRun"] == "echo report"
    assert start_requests(srv)[-1]["overrideHardwareTierId"] == "small-k8s"


def test_resource_works_in_an_asset_check(
    srv: SandboxServer, domino: DominoResource, instance: DagsterInstance
) -> None:
    table = domino_job_asset("table", "echo table")

    @asset_check(asset=table, required_resource_keys={"domino"})
    def table_is_fresh(context: AssetCheckExecutionContext) -> AssetCheckResult:
        result = context.resources.domino.run_job(context, "echo checking")
        return AssetCheckResult(passed=result.status == "Succeeded",
                                metadata={"job": result.job_id})

    result = materialize([table, table_is_fresh], resources={"domino": domino},
                         instance=instance)
    assert result.success
    assert check_results(result)["table_is_fresh"].passed is True
    assert len(start_requests(srv)) == 2


def test_registered_with_the_dagster_library_registry() -> None:
    assert DagsterLibraryRegistry.get()["domino-orchestrate"] == domino_orchestrate.__version__
