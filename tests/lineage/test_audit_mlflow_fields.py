"""Audit of issue 14 ("Params/tags miss what the seeds list"): a job's MLflow run, on a real
``mlflow server``, carries what the user asked Domino for and where the run came from — title,
hardware tier, environment, cluster properties, commit and output commit, ``is_direct`` of a v1
run, ``mlflow.user``, ``mlflow.source.type/name`` and a note linking the Domino job."""

from __future__ import annotations

import getpass
import json
import uuid
from typing import Any

import pytest

from domino_orchestrate.core import DominoClient, JobSpec, PollOptions, RunSpec
from domino_orchestrate.core.lineage import LineageInfo, lineage_observers
from domino_orchestrate.core.lineage.mlflow_sink import JOB_ID_TAG, find_run

from .conftest import MLFLOW_EXPERIMENT, MLFLOW_PROJECT

pytestmark = [pytest.mark.xdist_group("mlflow")]

FAST = PollOptions(poll_freq=0.3, initial_interval=0.1, stop_timeout=20)
SESSION = uuid.uuid4().hex[:8]
ENVIRONMENT = "5f1a2b3c4d5e6f7081920a0c"  # the sandbox's "Sandbox Minimal Environment"
CLUSTER = {"clusterType": "Ray", "computeEnvironmentId": ENVIRONMENT, "workerCount": 2,
           "workerHardwareTierId": {"value": "small-k8s"},
           "masterHardwareTierId": {"value": "small-k8s"}}


def the_run(mlflow_url: str, job_id: str) -> Any:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_url)
    experiment = client.get_experiment_by_name(MLFLOW_EXPERIMENT)
    run = find_run(client, experiment.experiment_id, JOB_ID_TAG, job_id)
    assert run is not None, f"no MLflow run for job {job_id}"
    return run


def test_a_jobs_run_carries_the_seed_params_and_tags(
    mlflow_sandbox: Any, mlflow_env: str,
) -> None:
    lineage = LineageInfo("dagster", "assets.audit_fields", (SESSION, "v4"))
    spec = JobSpec("python train.py 1", title="audit fields", hardware_tier_name="Medium",
                   environment_id=ENVIRONMENT, compute_cluster_properties=CLUSTER)
    with DominoClient(mlflow_sandbox.url, MLFLOW_PROJECT, api_key=mlflow_sandbox.api_key) as client:
        final = client.run_job(spec, FAST, observers=lineage_observers(lineage, client.config))
    assert final.status.is_success

    run = the_run(mlflow_env, final.job_id)
    params, tags = run.data.params, run.data.tags
    assert run.info.status == "FINISHED"
    assert params["command"] == "python train.py 1"
    assert params["title"] == "audit fields"
    assert params["hardware_tier"] == "Medium"
    assert params["environment_id"] == ENVIRONMENT
    assert json.loads(params["compute_cluster_properties"]) == CLUSTER
    assert tags["mlflow.user"] == getpass.getuser()
    assert (tags["mlflow.source.type"], tags["mlflow.source.name"]) == (
        "JOB", "dagster:assets.audit_fields")
    assert final.commit_id and tags["mlflow.source.git.commit"] == final.commit_id
    assert tags["domino.commit_id"] == final.commit_id
    assert final.output_commit_id and tags["domino.output_commit_id"] == final.output_commit_id
    assert final.url and f"[{final.job_id}]({final.url})" in tags["mlflow.note.content"]
    assert tags["domino.hardware_tier"] == final.hardware_tier


def test_a_v1_runs_run_records_is_direct_and_the_command_as_written(
    mlflow_sandbox: Any, mlflow_env: str,
) -> None:
    lineage = LineageInfo("cli", "audit-v1", (SESSION, "v1"))
    with DominoClient(mlflow_sandbox.url, MLFLOW_PROJECT, api_key=mlflow_sandbox.api_key) as client:
        observers = lineage_observers(lineage, client.config)
        handle = client.start_run(RunSpec(("train.py", "1"), title="audit v1"),
                                  observers=observers)
        final = client.wait(handle, FAST, observers=observers)
    assert final.status.is_success

    run = the_run(mlflow_env, final.job_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["is_direct"] == "false"
    assert run.data.params["command"] == "train.py 1"
    assert run.data.params["title"] == "audit v1"
