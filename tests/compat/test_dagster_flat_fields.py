"""Dagster: every ``job_start`` field given flat to ``domino_job_asset`` reaches Domino's start
request, and the resource's ``auth_token`` goes out as python-domino's bearer header."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.timeout(120)

ENV_ID = "5f1a2b3c4d5e6f7081920a0c"
SPARK = {"computeEnvironmentId": ENV_ID, "executorCount": 1, "executorHardwareTierId": "small-k8s",
         "masterHardwareTierId": "small-k8s", "executorStorageMB": 0}
CLUSTER = {"clusterType": "Dask", "computeEnvironmentId": ENV_ID, "workerCount": 1,
           "masterHardwareTierId": "small-k8s", "workerHardwareTierId": "large-k8s"}


def test_asset_factory_fields_and_auth_token_reach_domino(domino_sandbox: Any) -> None:
    from dagster import DagsterInstance, materialize

    from domino_orchestrate.dagster import DominoResource, domino_job_asset

    srv = domino_sandbox
    token = "dagster-bearer-token-01"
    srv.add_token(token)
    commit = srv.ctx.store.find_project("demo", "quick-start").commits[0]
    asset = domino_job_asset(
        "flat_fields", "echo flat-fields", title="dagster flat", hardware_tier_name="Medium",
        environment_id=ENV_ID, main_repo_git_ref={"type": "commitId", "value": commit},
        commit_id=commit, on_demand_spark_cluster_properties=SPARK,
        compute_cluster_properties=CLUSTER, external_volume_mounts=["vol-d"],
    )
    resource = DominoResource(host=srv.url, project="demo/quick-start", auth_token=token,
                              poll_freq=0.5, initial_interval=0.2)
    with DagsterInstance.ephemeral() as instance:
        result = materialize([asset], resources={"domino": resource}, instance=instance)
    assert result.success
    [ex] = srv.ctx.store.all()
    info = srv.execution_info(ex.id)
    assert info["startAuth"] == "Authorization: Bearer"
    body = info["startRequest"]
    assert body["commandToRun"] == "echo flat-fields" and body["title"].startswith("dagster flat")
    assert body["overrideHardwareTierId"] == "medium-k8s" and body["environmentId"] == ENV_ID
    assert body["commitId"] == commit
    assert body["mainRepoGitRef"] == {"type": "commitId", "value": commit}
    assert body["onDemandSparkClusterProperties"] == SPARK
    assert body["computeClusterProperties"]["workerHardwareTierId"] == {"value": "large-k8s"}
    assert body["externalVolumeMounts"] == ["vol-d"]
