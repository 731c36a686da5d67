"""Request shapes (domino-api.md §2) and response interpretation into typed errors."""

from __future__ import annotations

import pytest

from domino_orchestrate.core import (
    AuthenticationError,
    BadRequestError,
    InvalidResponseError,
    JobNotFoundError,
    JobSpec,
    RateLimitedError,
    RunSpec,
    ServerError,
    api,
)


def test_job_start_body_always_has_the_ten_keys() -> None:
    req = api.job_start("p1", JobSpec(command="main.py a b"), None, None)
    assert req.method == "POST" and req.path == "/v4/jobs/start" and req.retry is False
    assert set(req.body) == {
        "projectId", "commandToRun", "commitId", "mainRepoGitRef", "overrideHardwareTierId",
        "onDemandSparkClusterProperties", "computeClusterProperties", "environmentId",
        "externalVolumeMounts", "title",
    }
    assert req.body["commandToRun"] == "main.py a b"


def test_branch_becomes_git_ref_and_cluster_tiers_are_wrapped() -> None:
    spec = JobSpec(
        command="x", branch="dev",
        compute_cluster_properties={"clusterType": "Ray", "masterHardwareTierId": "m", "workerHardwareTierId": "w"},
    )
    body = api.job_start("p", spec, "t", "tier").body
    assert body["mainRepoGitRef"] == {"type": "branches", "value": "dev"}
    assert body["computeClusterProperties"]["masterHardwareTierId"] == {"value": "m"}
    assert body["computeClusterProperties"]["workerHardwareTierId"] == {"value": "w"}
    assert body["overrideHardwareTierId"] == "tier" and body["title"] == "t"


def test_run_start_sends_all_six_keys() -> None:
    req = api.run_start("o", "p", RunSpec(command=("main.py", "1")), "t")
    assert req.path == "/v1/projects/o/p/runs"
    assert req.body == {"command": ["main.py", "1"], "isDirect": False, "commitId": None,
                        "title": "t", "tier": None, "publishApiEndpoint": False}


def test_stdout_path_is_singular_run_and_status_is_by_id() -> None:
    assert api.stdout("o", "p", "abc").path == "/v1/projects/o/p/run/abc/stdout"
    assert api.run_get("o", "p", "abc").path == "/v1/projects/o/p/runs/abc"


def test_jobs_list_parameter_order_and_names() -> None:
    req = api.jobs_list("pid", page_size=10)
    assert [k for k, _ in req.params] == ["projectId", "order_by", "sort_by", "page_size", "page_no", "show_archived", "status"]


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, BadRequestError), (401, AuthenticationError), (403, AuthenticationError),
     (409, AuthenticationError), (404, JobNotFoundError), (429, RateLimitedError),
     (500, ServerError), (502, ServerError), (503, ServerError)],
)
def test_status_codes_map_to_typed_errors(status: int, error: type) -> None:
    with pytest.raises(error) as caught:
        api.interpret(api.job_get("j1"), status, {}, b'{"message": "nope"}')
    assert caught.value.status_code == status
    assert "/v4/jobs/j1" in str(caught.value)


def test_retry_after_is_parsed() -> None:
    with pytest.raises(RateLimitedError) as caught:
        api.interpret(api.job_get("j"), 429, {"retry-after": "3"}, b"")
    assert caught.value.retry_after == 3.0


def test_html_error_page_is_quoted_briefly() -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>" + b"x" * 5000 + b"</body></html>"
    with pytest.raises(ServerError) as caught:
        api.interpret(api.job_get("j"), 502, {}, page)
    assert "HTML error page" in str(caught.value) and "502 Bad Gateway" in str(caught.value)
    assert len(str(caught.value)) < 400


def test_truncated_json_on_200_is_invalid_response() -> None:
    with pytest.raises(InvalidResponseError, match="unreadable JSON"):
        api.interpret(api.job_get("j"), 200, {}, b'{"id": "abc", "statu')


def test_stop_accepts_an_empty_body() -> None:
    assert api.interpret(api.job_stop("p", "j", True), 200, {}, b"") is None
