"""Fault injection (each kind at rate 1.0, never on /__sandbox__/) and request statistics."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator

import pytest
import requests

from domino_orchestrate.sandbox import SandboxServer


@pytest.fixture(scope="module")
def srv() -> Iterator[SandboxServer]:
    with SandboxServer(api_key="k", slow_seconds=0.4) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(srv: SandboxServer) -> Iterator[None]:
    srv.set_faults(rate=0.0, kinds=None, seed=0)
    srv.reset_stats()
    yield
    srv.set_faults(rate=0.0)


def _get(srv: SandboxServer, path: str = "/version") -> requests.Response:
    return requests.get(srv.url + path, headers={"X-Domino-Api-Key": "k"}, timeout=10)


@pytest.mark.parametrize("code", [500, 502, 503, 504, 429])
def test_status_faults(srv: SandboxServer, code: int) -> None:
    srv.set_faults(rate=1.0, kinds=[str(code)])
    resp = _get(srv)
    assert resp.status_code == code
    assert resp.json()["status"] == code
    assert (resp.headers.get("retry-after") == "1") == (code == 429)
    assert srv.stats()["requests"]["GET /version"] == {str(code): 1}


def test_reset_fault(srv: SandboxServer) -> None:
    srv.set_faults(rate=1.0, kinds=["reset"])
    with pytest.raises(requests.ConnectionError):
        _get(srv)
    assert srv.stats()["requests"]["GET /version"] == {"reset": 1}
    srv.set_faults(rate=0.0)
    assert _get(srv).status_code == 200  # the server itself is fine


def test_slow_fault(srv: SandboxServer) -> None:
    srv.set_faults(rate=1.0, kinds=["slow"])
    t0 = time.monotonic()
    resp = _get(srv)
    assert resp.status_code == 200 and resp.json()["version"] == "5.10.0"
    assert time.monotonic() - t0 >= 0.4


def test_html_fault(srv: SandboxServer) -> None:
    srv.set_faults(rate=1.0, kinds=["html"])
    resp = _get(srv)
    assert resp.status_code == 502
    assert resp.headers["content-type"].startswith("text/html")
    assert "nginx" in resp.text and "502 Bad Gateway" in resp.text


def test_truncated_fault(srv: SandboxServer) -> None:
    srv.set_faults(rate=1.0, kinds=["truncated"])
    resp = _get(srv)
    assert resp.status_code == 200
    full = json.dumps({"version": "5.10.0"})
    assert len(resp.content) < len(full) * 4
    with pytest.raises(ValueError):
        json.loads(resp.content)


def test_never_on_sandbox_endpoints(srv: SandboxServer) -> None:
    srv.set_faults(rate=1.0, kinds=["500", "reset", "html", "truncated"])
    for _ in range(10):
        resp = requests.get(srv.url + "/__sandbox__/stats", timeout=10)
        assert resp.status_code == 200 and "requests" in resp.json()
    assert requests.get(srv.url + "/__sandbox__/faults", timeout=10).json()["rate"] == 1.0


def test_faults_configurable_over_http(srv: SandboxServer) -> None:
    url = srv.url + "/__sandbox__/faults"
    body = requests.post(url, json={"rate": 1.0, "kinds": ["503"], "seed": 7}, timeout=10).json()
    assert body["rate"] == 1.0 and body["kinds"] == ["503"] and body["seed"] == 7
    assert _get(srv).status_code == 503
    bad = requests.post(url, json={"kinds": ["boom"]}, timeout=10)
    assert bad.status_code == 400
    assert requests.post(url, json={"rate": 2}, timeout=10).status_code == 400


def test_start_faults_before_and_after(srv: SandboxServer) -> None:
    """Lost requests (no job) and lost responses (job created) both happen."""
    srv.set_faults(rate=1.0, kinds=["500", "reset", "truncated"], seed=3)
    pid = srv.project_id("demo/quick-start")
    for i in range(24):
        with contextlib.suppress(requests.ConnectionError):
            requests.post(
                srv.url + "/v4/jobs/start",
                json={"projectId": pid, "commandToRun": "true", "title": f"lost-{i}"},
                headers={"X-Domino-Api-Key": "k"},
                timeout=10,
            )
    stats = srv.stats()
    created = sum(stats["starts_by_title"].values())
    assert 0 < created < 24
    whens = {key.split(":")[1] for key in stats["faults"]}
    assert whens == {"before", "after"}
    assert sum(stats["requests"]["POST /v4/jobs/start"].values()) == 24


def test_fault_rate_share_is_seeded(srv: SandboxServer) -> None:
    def failures() -> int:
        srv.set_faults(rate=0.3, kinds=["500"], seed=11)
        return sum(_get(srv).status_code == 500 for _ in range(60))

    first = failures()
    assert 5 <= first <= 35
    assert failures() == first  # same seed, same sequence


def test_stats_counts_and_reset(srv: SandboxServer) -> None:
    pid = srv.project_id("demo/quick-start")
    headers = {"X-Domino-Api-Key": "k"}
    job = requests.post(
        srv.url + "/v4/jobs/start",
        json={"projectId": pid, "commandToRun": "true", "title": "counted"},
        headers=headers,
        timeout=10,
    ).json()
    for _ in range(3):
        requests.get(f"{srv.url}/v4/jobs/{job['id']}", headers=headers, timeout=10)
    requests.get(f"{srv.url}/v4/jobs/{'0' * 24}", headers=headers, timeout=10)
    requests.get(srv.url + "/version", timeout=10)  # 401
    stats = srv.stats()
    assert stats["requests"]["GET /v4/jobs/{jobId}"] == {"200": 3, "404": 1}
    assert stats["requests"]["GET /version"] == {"401": 1}
    assert stats["starts_by_title"]["counted"] == 1
    assert stats["bytes_sent"] > 0
    assert sum(stats["executions"].values()) >= 1
    over_http = requests.get(srv.url + "/__sandbox__/stats", timeout=10).json()
    assert over_http["requests"] == stats["requests"]
    assert requests.post(srv.url + "/__sandbox__/stats/reset", timeout=10).ok
    after = srv.stats()
    assert after["requests"] == {} and after["bytes_sent"] == 0 and after["starts_by_title"] == {}


def test_phase_delay_config(srv: SandboxServer) -> None:
    url = srv.url + "/__sandbox__/config"
    assert requests.post(url, json={"phase_delay": 0.2}, timeout=10).json()["phase_delay"] == 0.2
    assert requests.get(url, timeout=10).json()["phase_delay"] == 0.2
    srv.set_phase_delay(0.05)
    assert requests.get(url, timeout=10).json()["phase_delay"] == 0.05


def test_unknown_kind_rejected() -> None:
    with pytest.raises(ValueError):
        SandboxServer(fault_kinds=["500", "meteor"])
    assert isinstance(SandboxServer(fault_kinds="500,reset"), SandboxServer)


def test_responses_are_not_held_back_by_nagle(srv: SandboxServer) -> None:
    """The sandbox answers like a server in front of Domino: TCP_NODELAY on every connection.

    Without it a response's body waited for the client's delayed ACK of its head, adding 40 ms
    to every request on a kept-alive connection (and to every latency the benchmarks measure)."""
    import socket

    host, port = srv.url.split("//")[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as client:
        client.sendall(f"GET /version HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        assert client.recv(65536).startswith(b"HTTP/1.1 "), "no answer"
        served = [t.get_extra_info("socket") for t in srv.ctx.registry._transports.values()]
        assert served, "the sandbox recorded no connection"
        assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in served)
