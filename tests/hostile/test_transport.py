"""The HTTP layer against a hostile Domino (issue 13): one scenario per class of defect, each run
with both clients (sync on requests, async on httpx), and the CLI as a subprocess where a user
would see the leak. Every scenario here failed before the fix it guards."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from domino_orchestrate.core import (
    AsyncDominoClient,
    AuthenticationError,
    CertificateError,
    ConfigurationError,
    DominoClient,
    PollOptions,
    RedirectError,
    RetryPolicy,
    ServerError,
    TransportError,
)
from domino_orchestrate.core import retry as retry_module
from domino_orchestrate.core.transport import same_origin

from .conftest import PrivateCA
from .server import HostileServer, Reply, html, job_body, json_reply, redirect

PROJECT = "alice/churn"
KEY = "hostile-key-7f3a9c1e5b2d4f6a8c0e"
NO_RETRY = RetryPolicy(max_retries=0)
QUICK = RetryPolicy(max_retries=4, initial_wait=0.01, max_wait=0.02, max_retry_after=0.05)
FAST = PollOptions(poll_freq=0.2, initial_interval=0.05)
DRIVERS = ["sync", "async"]


def run_with(driver: str, url: str, action: Callable[[Any], Any], **kwargs: Any) -> Any:
    """``action(client)`` with a fresh client of ``driver``; for async it returns a coroutine."""
    options = {"api_key": KEY, "retry_policy": QUICK, **kwargs}
    if driver == "sync":
        with DominoClient(url, PROJECT, **options) as client:
            return action(client)

    async def go() -> Any:
        async with AsyncDominoClient(url, PROJECT, **options) as client:
            return await action(client)

    return asyncio.run(go())


def cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-m", "domino_orchestrate", *args], env=full_env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def cli_env(server: HostileServer, **extra: str) -> dict[str, str]:
    return {"DOMINO_API_HOST": server.url, "DOMINO_USER_API_KEY": KEY, "DOMINO_PROJECT": PROJECT,
            **extra}


def no_key_reached(server: HostileServer) -> bool:
    return not any(KEY in str(r.headers) or KEY.encode() in r.body for r in server.received)


# --- redirects ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("driver", DRIVERS)
def test_redirect_to_another_host_never_carries_the_key(
    hostile: HostileServer, hostile_other: HostileServer, driver: str, status: int
) -> None:
    hostile.on("GET", "/v4/jobs/", redirect(status, hostile_other.url + "/v4/jobs/abc?x=1"))
    with pytest.raises(RedirectError) as caught:
        run_with(driver, hostile.url, lambda c: c.get_job("abc"))
    assert caught.value.location == hostile_other.url + "/v4/jobs/abc?x=1"
    assert "Location" in str(caught.value) and hostile_other.url in str(caught.value)
    assert not hostile_other.received  # not followed at all: nothing, let alone the key
    assert len(hostile.received) == 1  # and not retried


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("driver", DRIVERS)
def test_same_origin_redirect_keeps_the_start_a_post_with_its_body(
    hostile: HostileServer, driver: str, status: int
) -> None:
    hostile.script("POST", "/v4/jobs/start", [redirect(status, "/v4/jobs/start")])
    handle = run_with(driver, hostile.url, lambda c: c.start_job("python train.py --epochs 3"))
    starts = hostile.requests_to(path_prefix="/v4/jobs/start")
    assert [r.method for r in starts] == ["POST", "POST"]
    assert starts[0].body == starts[1].body
    assert starts[1].json()["commandToRun"] == "python train.py --epochs 3"
    assert starts[1].headers["x-domino-api-key"] == KEY
    assert handle.job_id in hostile.domino.jobs


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_followed_redirect_keeps_our_url_credentials_and_drops_the_locations(
    hostile: HostileServer, driver: str
) -> None:
    planted = hostile.url.replace("http://", "http://mallory:planted-pw@") + "/v4/jobs/abc"
    hostile.on("GET", "/v4/jobs/abc", json_reply(job_body("abc", "Running")))
    hostile.script("GET", "/v4/jobs/abc", [redirect(301, planted)])
    run_with(driver, hostile.url, lambda c: c.get_job("abc"))
    hostile.script("GET", "/v4/jobs/abc", [redirect(301, planted)])
    run_with(driver, hostile.url.replace("http://", "http://alice:own-pw@"),
             lambda c: c.get_job("abc"))
    sent = [r.headers.get("authorization") for r in hostile.received]
    ours = "Basic " + base64.b64encode(b"alice:own-pw").decode()
    assert sent == [None, None, ours, ours]  # followed, without the planted credentials


@pytest.mark.parametrize(("current", "target", "same"), [
    ("https://d.example.com", "https://d.example.com:443/x", True),
    ("https://d.example.com", "https://D.EXAMPLE.COM/x", True),
    ("http://d.example.com", "https://d.example.com/x", True),  # the upgrade users expect
    ("http://d.example.com:8080", "https://d.example.com:8443/x", False),
    ("https://d.example.com", "http://d.example.com/x", False),  # never a downgrade
    ("https://d.example.com", "https://d.example.com:444/x", False),
    ("https://d.example.com", "https://d.example.com.evil.io/x", False),
    ("https://d.example.com", "https://evil.io/@d.example.com", False),
    ("https://u:p@d.example.com", "https://d.example.com/x", True),
])
def test_same_origin(current: str, target: str, same: bool) -> None:
    assert same_origin(current, target) is same


@pytest.mark.parametrize("driver", DRIVERS)
def test_redirect_loop_and_missing_location_are_typed_errors(
    hostile: HostileServer, driver: str
) -> None:
    hostile.on("GET", "/v4/jobs/loop", redirect(302, "/v4/jobs/loop"))
    with pytest.raises(RedirectError, match="more than 5 redirects"):
        run_with(driver, hostile.url, lambda c: c.get_job("loop"))
    hostile.on("GET", "/v4/jobs/nowhere", Reply(301))
    with pytest.raises(RedirectError, match="without a Location"):
        run_with(driver, hostile.url, lambda c: c.get_job("nowhere"))


def test_cli_start_redirected_to_another_host_leaks_nothing(
    hostile: HostileServer, hostile_other: HostileServer
) -> None:
    hostile.on("POST", "/v4/jobs/start", redirect(307, hostile_other.url + "/v4/jobs/start"))
    done = cli("run", "--no-wait", "python train.py", env=cli_env(hostile))
    assert done.returncode != 0
    assert not hostile_other.received and no_key_reached(hostile_other)
    assert hostile_other.url in done.stderr and "Location" in done.stderr
    assert KEY not in done.stdout + done.stderr


# --- redaction ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("reply", "error"), [
    (json_reply({"message": f"API key {KEY} is not valid"}, 401), AuthenticationError),
    (html(500, f"<html><pre>Traceback: headers={{'X-Domino-Api-Key': '{KEY}'}}</pre></html>"),
     ServerError),
])
@pytest.mark.parametrize("driver", DRIVERS)
def test_error_bodies_echoing_the_key_are_redacted(
    hostile: HostileServer, driver: str, reply: Reply, error: type
) -> None:
    hostile.on("GET", "/v4/jobs/", reply)
    with pytest.raises(error) as caught:
        run_with(driver, hostile.url, lambda c: c.get_job("abc"), retry_policy=NO_RETRY)
    shown = f"{caught.value} {caught.value!r} {caught.value.excerpt}"
    assert KEY not in shown and "***" in shown


def test_cli_error_body_echoing_the_key_is_redacted(hostile: HostileServer) -> None:
    hostile.on("GET", "/v4/jobs/", json_reply({"message": f"bad key {KEY}"}, 401))
    done = cli("status", "abc", env=cli_env(hostile))
    assert done.returncode != 0
    assert "bad key ***" in done.stderr
    assert KEY not in done.stdout + done.stderr


@pytest.mark.parametrize("driver", DRIVERS)
def test_credentials_in_the_host_url_are_sent_but_never_shown(
    hostile: HostileServer, driver: str
) -> None:
    host = hostile.url.replace("http://", "http://alice:s3cret-pass@")

    def action(client: Any) -> Any:
        shown = [repr(client), repr(client.config), client.job_url("abc"), client.config.host]
        if isinstance(client, DominoClient):
            return shown, client.run_job("python x.py", options=FAST)
        return _async_shown(client, shown)

    shown, final = run_with(driver, host, action)
    assert "s3cret-pass" not in " ".join([*shown, final.url or "", repr(final)])
    assert final.url and final.url.startswith(hostile.url)
    # python-domino (requests) sends URL credentials as Basic auth: still sent, never shown.
    basic = "Basic " + base64.b64encode(b"alice:s3cret-pass").decode()
    assert all(r.headers.get("authorization") == basic for r in hostile.received)


async def _async_shown(client: Any, shown: list[str]) -> Any:
    return shown, await client.run_job("python x.py", options=FAST)


def test_cli_never_prints_host_credentials(hostile: HostileServer) -> None:
    env = cli_env(hostile, DOMINO_API_HOST=hostile.url.replace("http://", "http://bob:pw-9x8y7z@"))
    done = cli("run", "--poll-freq", "0.2", "python x.py", env=env)
    assert done.returncode == 0, done.stderr
    assert "pw-9x8y7z" not in done.stdout + done.stderr
    assert hostile.requests_to("POST", "/v4/jobs/start")


# --- bodies ------------------------------------------------------------------------------------


@pytest.mark.parametrize("driver", DRIVERS)
def test_one_bad_byte_in_stdout_json_does_not_lose_the_output(
    hostile: HostileServer, driver: str
) -> None:
    body = b'{"setup": "", "stdout": "first \xff line\\nsecond\tline \\ud800 end\\nthird\\n"}'
    hostile.on("GET", "/v1/projects/", Reply(200, body))
    lines: list[str] = []
    final = run_with(driver, hostile.url,
                     lambda c: c.run_job("python x.py", options=FAST,
                                         on_line=lambda line: lines.append(line.text)))
    assert final.status.value == "Succeeded"
    assert lines == ["first \ufffd line", "second\tline \ufffd end", "third"]
    for line in lines:
        line.encode("utf-8")  # nothing downstream can crash on it


@pytest.mark.parametrize("driver", DRIVERS)
def test_compressed_and_chunked_bodies_are_read_whole(hostile: HostileServer, driver: str) -> None:
    """The deadline-aware body reader still decodes gzip and chunked transfer encoding."""
    body = json.dumps(job_body("abc", "Running", title="x" * 5000)).encode()
    hostile.on("GET", "/v4/jobs/abc", Reply(200, gzip.compress(body),
                                            headers=[("Content-Encoding", "gzip")]))
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 700]), body[i:i + 700])
                      for i in range(0, len(body), 700))
    hostile.on("GET", "/v4/jobs/chunked", Reply(raw=(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + chunks + b"0\r\n\r\n")))

    async def both_async(client: Any) -> Any:
        return [await client.get_job("abc"), await client.get_job("chunked")]

    def both(client: Any) -> Any:
        if isinstance(client, DominoClient):
            return [client.get_job("abc"), client.get_job("chunked")]
        return both_async(client)

    snaps = run_with(driver, hostile.url, both)
    assert [snap.raw_status for snap in snaps] == ["Running", "Running"]
    assert [snap.job_id for snap in snaps] == ["abc", "abc"]


# --- whole-request deadline --------------------------------------------------------------------


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_trickled_body_cannot_outlive_the_timeout(hostile: HostileServer, driver: str) -> None:
    body = json.dumps(job_body("abc", "Running")).encode()
    hostile.on("GET", "/v4/jobs/abc", Reply(200, body, trickle=0.2))  # > 60 s for all of it
    began = time.monotonic()
    with pytest.raises(TransportError, match="whole request") as caught:
        run_with(driver, hostile.url, lambda c: c.get_job("abc"), timeout=1.0,
                 retry_policy=NO_RETRY)
    assert time.monotonic() - began < 3.0
    assert caught.value.sent


@pytest.mark.parametrize("driver", DRIVERS)
def test_trickled_headers_cannot_outlive_the_timeout(hostile: HostileServer, driver: str) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"X-Pad: y\r\n" * 40
    hostile.on("GET", "/v4/jobs/abc", Reply(raw=head, trickle=0.1))  # 48 s for the headers
    began = time.monotonic()
    with pytest.raises(TransportError, match="whole request"):
        run_with(driver, hostile.url, lambda c: c.get_job("abc"), timeout=1.0,
                 retry_policy=NO_RETRY)
    assert time.monotonic() - began < 3.0


# --- Retry-After -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["100000", "Sun Nov  6 08:49:37 2094",
                                   "Sunday, 06-Nov-94 08:49:37 GMT",
                                   "Tue, 06 Nov 2094 08:49:37 -0000", "inf", "nan", "-3", "soon"])
@pytest.mark.parametrize("driver", DRIVERS)
def test_retry_after_on_a_start_never_parks_the_job(
    hostile: HostileServer, driver: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any Retry-After on a 429 start: no crash, and no wait longer than the cap."""
    hostile.script("POST", "/v4/jobs/start", [Reply(429, b"", headers=[("Retry-After", value)])])
    slept: list[float] = []
    real_async_sleep = asyncio.sleep
    monkeypatch.setattr(time, "sleep", slept.append)

    async def fake_async_sleep(seconds: float, *args: Any) -> Any:
        slept.append(seconds)
        return await real_async_sleep(0, *args)

    monkeypatch.setattr(asyncio, "sleep", fake_async_sleep)
    handle = run_with(driver, hostile.url, lambda c: c.start_job("python x.py"))
    assert handle.job_id in hostile.domino.jobs
    assert len(hostile.domino.jobs) == 1
    assert slept and max(slept) <= 120  # api.MAX_RETRY_AFTER


@pytest.mark.parametrize("driver", DRIVERS)
def test_retry_after_on_a_read_is_capped_by_the_policy(hostile: HostileServer, driver: str) -> None:
    hostile.on("GET", "/v4/jobs/abc", json_reply(job_body("abc", "Running")))
    hostile.script("GET", "/v4/jobs/abc", [Reply(503, b"", headers=[("Retry-After", "100000")])])
    began = time.monotonic()
    snap = run_with(driver, hostile.url, lambda c: c.get_job("abc"))
    assert snap.raw_status == "Running"
    assert time.monotonic() - began < 2.0  # QUICK caps any server-requested wait at 0.05 s


# --- process-wide retry quota ------------------------------------------------------------------


def test_one_retry_quota_for_all_clients_of_a_process(
    hostile: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An outage: every read fails. Without a shared quota 6 calls x 5 tries = 30 requests."""
    monkeypatch.setattr(retry_module, "QUOTA",
                        retry_module.RetryQuota(capacity=20, refill_per_second=0))
    hostile.on("GET", "/v4/jobs/", Reply(503, b"down"))
    for driver in ("sync", "async", "sync", "async", "sync", "async"):
        with pytest.raises(ServerError):
            run_with(driver, hostile.url, lambda c: c.get_job("abc"))
    assert len(hostile.received) == 6 + 4  # six first tries, then the 20 tokens pay 4 retries
    # Domino recovers: a success refunds, and retries resume once the bucket can pay again.
    hostile.on("GET", "/v4/jobs/", json_reply(job_body("abc", "Running")))
    for _ in range(5):
        run_with("sync", hostile.url, lambda c: c.get_job("abc"))
    assert retry_module.QUOTA.tokens == 5


# --- clear errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [KEY + "\n", KEY + " ", "\t" + KEY, KEY[:8] + "\r\n" + KEY[8:]])
@pytest.mark.parametrize("driver", DRIVERS)
def test_api_key_with_whitespace_is_a_configuration_error(
    hostile: HostileServer, driver: str, key: str
) -> None:
    with pytest.raises(ConfigurationError, match=r"strip|control character") as caught:
        run_with(driver, hostile.url, lambda c: c.get_job("abc"), api_key=key)
    assert KEY not in str(caught.value)
    assert not hostile.received


def test_cli_api_key_with_a_newline_says_to_strip_it(hostile: HostileServer) -> None:
    done = cli("status", "abc", env=cli_env(hostile, DOMINO_USER_API_KEY=KEY + "\n"))
    assert done.returncode != 0
    assert "strip" in done.stderr and "network" not in done.stderr
    assert KEY not in done.stderr and not hostile.received


def test_domino_log_level_sets_the_library_logger(hostile: HostileServer) -> None:
    logger = logging.getLogger("domino_orchestrate")
    before = logger.level
    try:
        os.environ["DOMINO_LOG_LEVEL"] = "DEBUG"
        DominoClient(hostile.url, PROJECT, api_key=KEY).close()
        assert logger.level == logging.DEBUG
        os.environ["DOMINO_LOG_LEVEL"] = "loud"
        with pytest.raises(ConfigurationError, match="DOMINO_LOG_LEVEL"):
            DominoClient(hostile.url, PROJECT, api_key=KEY)
    finally:
        os.environ.pop("DOMINO_LOG_LEVEL", None)
        logger.setLevel(before)


# --- TLS and proxies ---------------------------------------------------------------------------


@pytest.mark.parametrize("driver", DRIVERS)
def test_unknown_ca_is_a_clear_error_not_retried(tls_hostile: HostileServer, driver: str) -> None:
    with pytest.raises(CertificateError, match="CA bundle") as caught:
        run_with(driver, tls_hostile.url, lambda c: c.get_job("abc"))
    assert "verify=" in str(caught.value)
    settle = time.monotonic() + 2  # the server counts the failed handshake in its own thread
    while tls_hostile.tls_failures < 1 and time.monotonic() < settle:
        time.sleep(0.01)
    time.sleep(0.2)  # a retry would have connected again by now
    assert tls_hostile.tls_failures == 1 and not tls_hostile.received


@pytest.mark.parametrize("how", ["argument", "DOMINO_VERIFY_CERTIFICATE", "REQUESTS_CA_BUNDLE",
                                 "SSL_CERT_FILE"])
@pytest.mark.parametrize("driver", DRIVERS)
def test_private_ca_bundle_is_honoured(
    tls_hostile: HostileServer, private_ca: PrivateCA, driver: str, how: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kwargs: dict[str, Any] = {}
    if how == "argument":
        kwargs["verify"] = str(private_ca.ca_pem)
    else:
        monkeypatch.setenv(how, str(private_ca.ca_pem))
    answer = run_with(driver, tls_hostile.url, lambda c: c.version(), **kwargs)
    assert answer["version"] == "5.10.0"
    assert tls_hostile.tls_failures == 0


def test_cli_private_ca_bundle(tls_hostile: HostileServer, private_ca: PrivateCA) -> None:
    hostile_env = cli_env(tls_hostile)
    refused = cli("run", "--no-wait", "python x.py", env=hostile_env)
    assert refused.returncode != 0 and "CA bundle" in refused.stderr
    trusted = cli("run", "--no-wait", "python x.py",
                  env={**hostile_env, "DOMINO_VERIFY_CERTIFICATE": str(private_ca.ca_pem)})
    assert trusted.returncode == 0, trusted.stderr
    assert len(tls_hostile.requests_to("POST", "/v4/jobs/start")) == 1


@pytest.mark.parametrize("driver", DRIVERS)
def test_proxy_variables_are_honoured(
    hostile: HostileServer, hostile_other: HostileServer, driver: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # hostile_other plays the proxy: it gets absolute-form targets and answers as Domino would.
    hostile_other.on("GET", "/v4/jobs/", json_reply(job_body("abc", "Running")))
    monkeypatch.setenv("HTTP_PROXY", hostile_other.url)
    run_with(driver, hostile.url, lambda c: c.get_job("abc"))
    assert [r.target for r in hostile_other.received] == [f"{hostile.url}/v4/jobs/abc"]
    assert not hostile.received
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    hostile.on("GET", "/v4/jobs/", json_reply(job_body("abc", "Running")))
    run_with(driver, hostile.url, lambda c: c.get_job("abc"))
    assert len(hostile.received) == 1 and len(hostile_other.received) == 1


@pytest.mark.parametrize("driver", DRIVERS)
def test_netrc_credentials_are_never_added(
    hostile: HostileServer, driver: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login mallory password netrc-secret-1\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    hostile.on("GET", "/v4/jobs/", json_reply(job_body("abc", "Running")))
    run_with(driver, hostile.url, lambda c: c.get_job("abc"))
    assert "authorization" not in hostile.received[0].headers
