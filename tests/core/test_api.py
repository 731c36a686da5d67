"""Request shapes (domino-api.md §2) and response interpretation into typed errors."""

from __future__ import annotations

import pytest

from domino_orchestrate.core import (
    AuthenticationError,
    BadRequestError,
    DominoAPIError,
    InvalidResponseError,
    JobNotFoundError,
    JobSpec,
    RateLimitedError,
    RedirectError,
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


# --- issue 13: bodies, Retry-After, redirects, redaction ----------------------------------------

NOW = 1_000_000_000.0  # 2001-09-09T01:46:40Z


@pytest.mark.parametrize(("value", "seconds"), [
    ("7", 7.0),
    (" 7 ", 7.0),
    ("0", 0.0),
    ("1.5", 1.5),
    ("100000", api.MAX_RETRY_AFTER),  # capped: never park a start for 28 hours
    ("Sun, 09 Sep 2001 01:47:40 GMT", 60.0),  # IMF-fixdate
    ("Sunday, 09-Sep-01 01:47:40 GMT", 60.0),  # obsolete RFC 850
    ("Sun Sep  9 01:47:40 2001", 60.0),  # obsolete asctime (used to raise TypeError)
    ("Sun, 09 Sep 2001 01:47:40 -0000", 60.0),  # naive per email.utils (used to raise)
    ("Sun, 09 Sep 2001 03:47:40 +0200", 60.0),
    ("Sun, 09 Sep 2001 01:00:00 GMT", 0.0),  # in the past: now
    ("inf", None), ("nan", None), ("-3", None), ("1e400", None), ("soon", None), ("", None),
    (None, None), ("Sun, 99 Foo 2001 01:47:40 GMT", None),
])
def test_retry_after_every_rfc9110_form(value: str | None, seconds: float | None) -> None:
    assert api.retry_after_seconds(value, now=NOW) == seconds


def test_retry_after_on_429_is_capped_and_says_so() -> None:
    with pytest.raises(RateLimitedError) as caught:
        api.interpret(api.job_get("j"), 429, {"retry-after": "100000"}, b"")
    assert caught.value.retry_after == api.MAX_RETRY_AFTER


@pytest.mark.parametrize(("body", "expected"), [
    (b'{"stdout": "a\xffb"}', {"stdout": "a\ufffdb"}),  # invalid UTF-8 byte
    (b'{"stdout": "a\x01b\tc\nd"}', {"stdout": "a\x01b\tc\nd"}),  # raw control characters
    (b'{"stdout": "x\\ud800y", "\\udfff": ["\\udc00"]}',
     {"stdout": "x\ufffdy", "\ufffd": ["\ufffd"]}),  # lone surrogates
    (b'{"ok": "\\ud83d\\ude00"}', {"ok": "\U0001f600"}),  # a proper pair stays
    (b'\xef\xbb\xbf{"id": "j"}', {"id": "j"}),  # a BOM
])
def test_bodies_are_decoded_leniently(body: bytes, expected: object) -> None:
    value = api.interpret(api.stdout("o", "p", "j"), 200, {}, body)
    assert value == expected
    json_text = repr(value)
    json_text.encode("utf-8")


def test_deeply_nested_json_is_an_invalid_response_not_a_recursion_error() -> None:
    with pytest.raises(InvalidResponseError):
        api.interpret(api.job_get("j"), 200, {}, b"[" * 100_000 + b"]" * 100_000)


@pytest.mark.parametrize("status", [300, 301, 302, 303, 304, 307, 308])
def test_an_unfollowed_redirect_names_its_location(status: int) -> None:
    with pytest.raises(RedirectError) as caught:
        api.interpret(api.job_get("j"), status, {"location": "https://u:pw-1234@elsewhere/x"}, b"")
    assert caught.value.location == "https://elsewhere/x"
    assert "Location 'https://elsewhere/x'" in str(caught.value)
    assert "pw-1234" not in str(caught.value)


@pytest.mark.parametrize("status", [401, 403, 404, 409, 422, 429, 500, 502])
def test_secrets_echoed_in_error_bodies_are_redacted(status: int) -> None:
    secret = "sk-live-0123456789abcdef"
    body = ('{"message": "' + "x" * 190 + secret + '"}').encode()  # straddles the excerpt cut
    with pytest.raises(DominoAPIError) as caught:
        api.interpret(api.job_get("j"), status, {}, body, secrets=[secret])
    for text in (str(caught.value), caught.value.excerpt):
        assert secret[:8] not in text
