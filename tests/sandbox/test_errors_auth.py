"""Bad input gives a 4xx with a JSON `message` (never a 500); authentication rules (§1.1)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from domino_orchestrate.sandbox import SandboxServer

P1 = "/v1/projects/demo/quick-start"
UNKNOWN = "aaaaaaaaaaaaaaaaaaaaaaaa"


def _bad(resp: requests.Response, status: int) -> str:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert isinstance(body["message"], str) and body["message"]
    return str(body["message"])


@pytest.mark.parametrize(
    ("path", "data"),
    [
        (f"{P1}/runs", b"{not json"),
        ("/v4/jobs/start", b"[1,"),
        ("/v4/jobs/stop", b"\xff\xfe"),
        ("/v4/jobs/restart", b'"a string"'),
        ("/v4/jobs/start", b""),
    ],
)
def test_malformed_json(api: Any, path: str, data: bytes) -> None:
    resp = api.post(path, data=data, headers={"Content-Type": "application/json"})
    _bad(resp, 400)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"command": "main.py"},
        {"command": []},
        {"command": [1, 2]},
        {"command": [""]},
        {"command": ["x"], "isDirect": "yes"},
        {"command": ["x"], "tier": "no-such-tier"},
    ],
)
def test_v1_start_validation(api: Any, sandbox: SandboxServer, body: dict[str, Any]) -> None:
    before = sandbox.stats()["starts_by_title"]
    _bad(api.post(f"{P1}/runs", json=body), 400)
    assert sandbox.stats()["starts_by_title"] == before  # nothing was started


@pytest.mark.parametrize(
    "body",
    [
        {"commandToRun": "true"},
        {"projectId": "PID"},
        {"projectId": "PID", "commandToRun": ""},
        {"projectId": "PID", "commandToRun": 5},
        {"projectId": 7, "commandToRun": "true"},
        {"projectId": "PID", "commandToRun": "true", "overrideHardwareTierId": "nope"},
        {"projectId": "PID", "commandToRun": "true", "environmentId": "nope"},
    ],
)
def test_v4_start_validation(api: Any, body: dict[str, Any]) -> None:
    body = {k: (api.project_id if v == "PID" else v) for k, v in body.items()}
    _bad(api.post("/v4/jobs/start", json=body), 400)


def test_unknown_ids_and_projects(api: Any) -> None:
    _bad(api.get(f"/v4/jobs/{UNKNOWN}"), 404)
    _bad(api.get(f"/v4/jobs/{UNKNOWN}/runtimeExecutionDetails"), 404)
    _bad(api.get(f"{P1}/runs/{UNKNOWN}"), 404)
    _bad(api.get(f"{P1}/run/{UNKNOWN}/stdout"), 404)
    _bad(api.get("/v1/projects/nobody/nothing/runs"), 404)
    _bad(api.post("/v1/projects/nobody/nothing/runs", json={"command": ["true"]}), 404)
    _bad(api.post("/v4/jobs/start", json={"projectId": UNKNOWN, "commandToRun": "true"}), 404)
    _bad(api.post("/v4/jobs/stop", json={"projectId": api.project_id, "jobId": UNKNOWN}), 404)
    _bad(api.post("/v4/jobs/restart", json={"jobId": UNKNOWN}), 404)
    _bad(api.get("/v4/jobs", params={"projectId": UNKNOWN}), 404)
    _bad(api.get("/v4/jobs"), 400)
    _bad(api.get("/v4/jobs", params={"projectId": api.project_id, "status": "weird"}), 400)
    _bad(api.get("/v4/jobs", params={"projectId": api.project_id, "page_size": "x"}), 400)
    _bad(api.get(f"/v4/projects/{UNKNOWN}/hardwareTiers"), 404)
    _bad(api.get("/no/such/route"), 404)


def test_run_of_other_project_is_404(api: Any) -> None:
    run_id = api.start_run(["true"])["runId"]
    _bad(api.get(f"/v1/projects/other/proj/runs/{run_id}"), 404)
    other = api.srv.project_id("other/proj")
    _bad(api.post("/v4/jobs/stop", json={"projectId": other, "jobId": run_id}), 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v4/jobs/start"),
        ("GET", "/v4/jobs/stop"),
        ("DELETE", f"{P1}/runs"),
        ("PUT", "/v4/jobs/start"),
        ("POST", "/version"),
        ("POST", "/v4/jobs"),
    ],
)
def test_wrong_method(api: Any, method: str, path: str) -> None:
    _bad(api.session.request(method, api.url + path, timeout=10), 405)


def test_auth_required(sandbox: SandboxServer) -> None:
    url = sandbox.url + "/version"
    assert "missing" in _bad(requests.get(url, timeout=10), 401)
    _bad(requests.get(url, headers={"X-Domino-Api-Key": "wrong"}, timeout=10), 401)
    _bad(requests.get(url, headers={"Authorization": "Basic abc"}, timeout=10), 401)
    ok = requests.get(url, headers={"X-Domino-Api-Key": sandbox.api_key}, timeout=10)
    assert ok.status_code == 200


def test_bearer_tokens_add_expire_revoke(sandbox: SandboxServer) -> None:
    url = sandbox.url + "/version"

    def get(token: str) -> requests.Response:
        return requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    _bad(get("tok-1"), 401)
    sandbox.add_token("tok-1")
    assert get("tok-1").status_code == 200
    sandbox.expire_token("tok-1")
    assert "expired" in _bad(get("tok-1"), 401)
    # the API key still works as a fallback while the token is expired
    assert requests.get(url, headers={"X-Domino-Api-Key": sandbox.api_key}, timeout=10).ok
    # the same controls over HTTP
    oob = sandbox.url + "/__sandbox__/tokens"
    assert requests.post(oob, json={"token": "tok-2"}, timeout=10).ok
    assert get("tok-2").status_code == 200
    assert requests.post(oob, json={"token": "tok-2", "action": "revoke"}, timeout=10).ok
    assert "invalid" in _bad(get("tok-2"), 401)
    _bad(requests.post(oob, json={"token": "t", "action": "explode"}, timeout=10), 400)
    assert get(sandbox.api_key).status_code == 200  # the key is accepted as a bearer too


def test_no_500_for_garbage(api: Any) -> None:
    bodies: list[Any] = [[], None, 3, {"jobId": ["x"]}, {"projectId": {}, "commandToRun": []}]
    for path in ("/v4/jobs/start", "/v4/jobs/stop", "/v4/jobs/restart", f"{P1}/runs"):
        for body in bodies:
            resp = api.post(path, json=body)
            assert 400 <= resp.status_code < 500, (path, body, resp.text)
