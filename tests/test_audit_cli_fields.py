"""Every ``job_start`` field in the CLI's flat interface reaches Domino (issue 19: "every
``job_start`` field in every integration's flat interface"): ``domino-orchestrate run`` with each
v4 flag, and a v1 ``--run --direct`` start, against the sandbox, which records the start request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from domino_orchestrate.sandbox import SandboxServer

pytestmark = pytest.mark.timeout(120)

ENV_ID = "5f1a2b3c4d5e6f7081920a0c"
SPARK = {"computeEnvironmentId": ENV_ID, "executorCount": 2, "executorHardwareTierId": "small-k8s",
         "masterHardwareTierId": "small-k8s", "executorStorageMB": 0}
CLUSTER = {"clusterType": "Ray", "computeEnvironmentId": ENV_ID, "workerCount": 2,
           "masterHardwareTierId": "medium-k8s", "workerHardwareTierId": "small-k8s"}


def _cli(srv: SandboxServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOMINO_")}
    env.update(DOMINO_API_HOST=srv.url, DOMINO_USER_API_KEY=srv.api_key,
               DOMINO_PROJECT="demo/quick-start", NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "domino_orchestrate", *args], env=env,
                          capture_output=True, text=True, timeout=90)


def _start_request(srv: SandboxServer, title: str) -> dict:
    [ex] = [ex for ex in srv.ctx.store.all() if (ex.title or "").startswith(title)]
    return srv.execution_info(ex.id)["startRequest"]


def test_each_flag_of_run_reaches_the_start_request(tmp_path: Path) -> None:
    with SandboxServer(projects={"demo/quick-start": tmp_path},
                       api_key="cli-fields-key-0123456789") as srv:
        commit = srv.ctx.store.find_project("demo", "quick-start").commits[0]
        git_ref = {"type": "commitId", "value": commit}
        v4 = _cli(srv, "run", "--no-wait", "--title", "cli v4 fields", "--hardware-tier", "Large",
                  "--environment-id", ENV_ID, "--commit-id", commit,
                  "--git-ref", json.dumps(git_ref), "--spark", json.dumps(SPARK),
                  "--compute-cluster", json.dumps(CLUSTER), "--volume", "vol-1",
                  "--volume", "vol-2", "--", "python", "train.py", "--lr", "0.1")
        branch = _cli(srv, "run", "--no-wait", "--title", "cli branch", "--branch", "main",
                      "echo branch")
        v1 = _cli(srv, "run", "--run", "--direct", "--no-wait", "--title", "cli v1 fields",
                  "--commit-id", commit, "echo direct-$((40+2))")
        assert (v4.returncode, branch.returncode, v1.returncode) == (0, 0, 0), (
            v4.stderr + branch.stderr + v1.stderr)
        body = _start_request(srv, "cli v4 fields")
        branch_body = _start_request(srv, "cli branch")
        v1_body = _start_request(srv, "cli v1 fields")
    assert body["commandToRun"] == "python train.py --lr 0.1"
    assert body["overrideHardwareTierId"] == "large-k8s" and body["environmentId"] == ENV_ID
    assert body["commitId"] == commit and body["mainRepoGitRef"] == git_ref
    assert body["onDemandSparkClusterProperties"] == SPARK
    assert body["computeClusterProperties"] == {
        **CLUSTER, "masterHardwareTierId": {"value": "medium-k8s"},
        "workerHardwareTierId": {"value": "small-k8s"}}
    assert body["externalVolumeMounts"] == ["vol-1", "vol-2"]
    assert branch_body["mainRepoGitRef"] == {"type": "branches", "value": "main"}
    assert v1_body["command"] == ["echo direct-$((40+2))"] and v1_body["isDirect"] is True
    assert v1_body["commitId"] == commit
