"""No secret reaches the terminal or another host through the CLI: a key echoed in an error body,
credentials written into the host URL, a redirect to another origin."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from .conftest import cli_env, hostile_server, one_error_line, run_cli

KEY = "hostile-key-0123456789abcdef"
JOB = "aabbccddeeff001122334455"


def _env(server: Any, **extra: str) -> dict[str, str]:
    return cli_env(server.url, KEY, project="alice/churn", DOMINO_MAX_RETRIES="0", **extra)


def test_a_key_echoed_by_a_rejecting_domino_is_never_printed(hostile: Any) -> None:
    hostile.on("*", "/", hostile_server.Reply(401, f"invalid key {KEY}",
                                              headers=[("Content-Type", "text/plain")]))
    done = run_cli(_env(hostile), "status", JOB)
    assert done.returncode == 4, done.stderr
    one_error_line(done.stderr)
    assert KEY not in done.stdout + done.stderr


def test_credentials_in_the_host_url_are_never_printed(hostile: Any) -> None:
    password = "url-password-7f3a9c"
    parts = urlsplit(hostile.url)
    env = _env(hostile, DOMINO_API_HOST=f"{parts.scheme}://alice:{password}@{parts.netloc}")
    done = run_cli(env, "-vv", "run", "--poll-freq", "0.2", "python train.py")
    assert done.returncode == 0, done.stderr
    assert "Started Domino job" in done.stderr
    assert password not in done.stdout + done.stderr


def test_a_redirect_to_another_host_never_carries_the_key(hostile: Any, hostile_other: Any) -> None:
    hostile.on("GET", "/v4/jobs/", hostile_server.redirect(307, f"{hostile_other.url}/v4/jobs/{JOB}"))
    done = run_cli(_env(hostile), "status", JOB)
    assert done.returncode == 4, done.stderr
    one_error_line(done.stderr)
    assert all(KEY not in str(dict(r.headers)) for r in hostile_other.received)
