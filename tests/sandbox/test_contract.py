"""Response shapes of every endpoint against domino-api.md §2 (field names are exact)."""

from __future__ import annotations

import re
from typing import Any

from domino_orchestrate.sandbox import SandboxServer

OID = re.compile(r"^[0-9a-f]{24}$")
P1 = "/v1/projects/demo/quick-start"
RUN_FIELDS = {
    "id",
    "projectId",
    "number",
    "startingUserId",
    "queued",
    "started",
    "completed",
    "status",
    "commitId",
    "executor",
    "outputCommitId",
    "title",
    "isArchived",
    "postProcessedTimestamp",
    "diagnosticStatistics",
    "isCompleted",
    "hardwareTierId",
}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_version(api: Any) -> None:
    body = api.get("/version").json()
    assert body["version"] == "5.10.0"
    assert {"buildId", "buildUrl", "commitId", "commitUrl", "timestamp"} <= body.keys()


def test_find_project(api: Any, sandbox: SandboxServer) -> None:
    resp = api.get(
        "/v4/gateway/projects/findProjectByOwnerAndName",
        params={"ownerName": "demo", "projectName": "quick-start"},
    )
    assert resp.status_code == 200
    body = resp.json()
    assert OID.match(body["id"]) and body["id"] == sandbox.project_id("demo/quick-start")
    assert body["name"] == "quick-start" and body["ownerName"] == "demo"
    missing = api.get(
        "/v4/gateway/projects/findProjectByOwnerAndName",
        params={"ownerName": "demo", "projectName": "nope"},
    )
    assert missing.status_code == 404 and "message" in missing.json()


def test_v1_start_list_get_and_commits(api: Any) -> None:
    started = api.start_run(["main.py", "x"], title="contract-v1")
    run_id = started["runId"]
    assert OID.match(run_id) and started["id"] == run_id
    assert started["message"] == (
        "Run for project demo/quick-start started. You can view progress here: "
        f"{api.url}/demo/quick-start#r/{run_id}"
    )
    job = api.wait_status(run_id)
    run = api.run(run_id)
    assert set(run) == RUN_FIELDS
    assert run["status"] == "Succeeded" and run["isCompleted"] is True
    assert run["title"] == "contract-v1" and run["hardwareTierId"] == "small-k8s"
    assert all(ISO.match(run[k]) for k in ("queued", "started", "completed"))
    assert run["outputCommitId"] == job["commitDetails"]["outputCommitId"]
    listing = api.get(f"{P1}/runs").json()
    assert listing["objectType"] == "list" and listing["uri"] == f"{P1}/runs"
    assert listing["data"][0]["id"] == run_id  # most recently queued first
    numbers = [r["number"] for r in listing["data"]]
    assert numbers == sorted(numbers, reverse=True)
    commits = api.get(f"{P1}/commits").json()
    assert all(isinstance(c, str) for c in commits)  # plain strings, §2.3 catch
    assert run["outputCommitId"] in commits and run["commitId"] in commits


def test_v4_job_shape(api: Any) -> None:
    job = api.start_job("true", title="shape")
    assert OID.match(job["id"]) and job["projectId"] == api.project_id
    assert job["jobRunCommand"] == "true" and job["title"] == "shape"
    assert job["statuses"] == {
        "isCompleted": False,
        "isArchived": False,
        "isScheduled": False,
        "executionStatus": "Queued",
    }
    assert set(job["queuedJobHistoryDetails"]) == {"expectedWait", "explanation", "helpText"}
    assert job["stageTime"]["runStartTime"] is None and job["stageTime"]["completedTime"] is None
    assert isinstance(job["stageTime"]["submissionTime"], int)
    assert set(job["startedBy"]) == {"id", "username"}
    assert job["commitDetails"]["outputCommitId"] is None
    done = api.wait_status(job["id"])
    st = done["stageTime"]
    assert st["submissionTime"] <= st["runStartTime"] <= st["completedTime"]
    assert done["commitDetails"]["outputCommitId"]
    # the same execution is visible as a v1 run (one id space)
    assert api.run(job["id"])["status"] == "Succeeded"


def test_numbers_increase_across_apis(api: Any) -> None:
    a = api.start_job("true")["number"]
    b = api.job(api.start_run(["true"])["runId"])["number"]
    c = api.start_job("true")["number"]
    assert a < b < c


def test_jobs_list_filters_and_pagination(api: Any) -> None:
    ids = [api.start_job("true", title=f"page-{i}")["id"] for i in range(3)]
    for job_id in ids:
        api.wait_status(job_id)
    running = api.start_job("sleep 30", title="page-running")
    api.wait_status(running["id"], lambda j: j["statuses"]["executionStatus"] == "Running")
    query = {
        "projectId": api.project_id,
        "order_by": "number",
        "sort_by": "desc",
        "page_no": 1,
        "show_archived": "false",
        "status": "all",
    }
    full = api.get("/v4/jobs", params=query).json()
    assert full["totalCount"] == len(full["jobs"]) >= 4
    numbers = [j["number"] for j in full["jobs"]]
    assert numbers == sorted(numbers, reverse=True)
    page = api.get("/v4/jobs", params={**query, "page_size": 2, "page_no": 2}).json()
    assert [j["id"] for j in page["jobs"]] == [j["id"] for j in full["jobs"][2:4]]
    assert page["totalCount"] == full["totalCount"]
    asc = api.get("/v4/jobs", params={**query, "sort_by": "asc"}).json()
    assert [j["number"] for j in asc["jobs"]] == sorted(numbers)
    completed = api.get("/v4/jobs", params={**query, "status": "completed"}).json()["jobs"]
    assert completed and all(j["statuses"]["isCompleted"] for j in completed)
    assert running["id"] not in {j["id"] for j in completed}
    run_only = api.get("/v4/jobs", params={**query, "status": "running"}).json()["jobs"]
    assert running["id"] in {j["id"] for j in run_only}
    assert not any(j["statuses"]["isCompleted"] for j in run_only)
    api.post("/v4/jobs/stop", json={"projectId": api.project_id, "jobId": running["id"]})


def test_runtime_details_tiers_environments_spark(api: Any) -> None:
    job = api.start_job("true", overrideHardwareTierId="medium-k8s")
    details = api.get(f"/v4/jobs/{job['id']}/runtimeExecutionDetails").json()
    assert details["hardwareTier"] == {"id": "medium-k8s", "name": "Medium"}
    pid = api.project_id
    tiers = api.get(f"/v4/projects/{pid}/hardwareTiers").json()
    assert isinstance(tiers, list)
    ids = [t["hardwareTier"]["id"] for t in tiers]
    assert ids == ["small-k8s", "medium-k8s", "large-k8s"]
    defaults = [
        t["hardwareTier"]["id"] for t in tiers if t["hardwareTier"]["hwtFlags"]["isDefault"]
    ]
    assert defaults == ["small-k8s"]
    envs = api.get(f"/v4/projects/{pid}/useableEnvironments").json()["environments"]
    assert envs and all({"id", "name"} <= e.keys() for e in envs)
    spark = api.get(f"/v4/jobs/project/{pid}/defaultSparkSettings").json()
    assert set(spark) == {
        "maximumExecutionSlotsPerUser",
        "executorHardwareTierId",
        "masterHardwareTierId",
    }


def test_restart_creates_new_execution(api: Any) -> None:
    first = api.start_job("echo again", title="restart-me")
    api.wait_status(first["id"])
    resp = api.post(
        "/v4/jobs/restart", json={"jobId": first["id"], "shouldUseOriginalInputCommit": True}
    )
    assert resp.status_code == 200
    second = resp.json()
    assert second["id"] != first["id"] and second["number"] > first["number"]
    assert second["jobRunCommand"] == "echo again" and second["title"] == "restart-me"
    assert second["commitDetails"]["inputCommitId"] == first["commitDetails"]["inputCommitId"]
    api.wait_status(second["id"])
    assert "again" in api.stdout(second["id"])["stdout"]


def test_v1_tier_and_full_body(api: Any) -> None:
    body = {
        "command": ["true"],
        "isDirect": None,
        "commitId": None,
        "title": None,
        "tier": "Large",
        "publishApiEndpoint": None,
    }
    resp = api.post(f"{P1}/runs", json=body)
    assert resp.status_code == 200
    assert api.run(resp.json()["runId"])["hardwareTierId"] == "large-k8s"
