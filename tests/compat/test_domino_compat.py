"""``domino_orchestrate.compat.Domino`` against the official client (dominodatalab 2.2.0), the
seed's own calls, the same sandbox, one test: the same return shapes, and our behaviour where it
is deliberately better (Error fails, a timeout stops the job, stdout is logged while it runs).

The official client pins old packages, so it runs in its own venv as a subprocess
(``$DOMINO_OFFICIAL_PYTHON``, which ``make test`` sets, or ``.venv-official``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from domino_orchestrate.sandbox import SandboxServer

ROOT = Path(__file__).resolve().parents[2]
OFFICIAL = next((c for c in (os.environ.get("DOMINO_OFFICIAL_PYTHON"),
                             str(ROOT / ".venv-official" / "bin" / "python"))
                 if c and Path(c).exists()), "")

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not OFFICIAL, reason="the official client's venv is made by `make test` "
                       "(DOMINO_OFFICIAL_PYTHON)"),
]

#: The seed's calls (python-domino README "Example", examples/start_run_and_check_status.py and
#: the Jobs section), written once and run by both clients; ``d`` is the client, ``out`` the
#: results, ``Failure`` the client's failure exception.
CALLS = """
started = d.runs_start_blocking(["main.py", "a", "b", "9"],
                                title="Started from Python API example code",
                                poll_freq=0.2, max_poll_time=60)
out["runs_start_blocking"] = started
out["runs_stdout"] = d.runs_stdout(started["runId"])
all_runs = d.runs_list()["data"]
out["runs_list"] = d.runs_list()
out["runs_status"] = d.runs_status(started["runId"])
out["runs_start_direct"] = d.runs_start(["echo 'Hello, World!'"], isDirect=True)
final = d.job_start_blocking(command="main.py v4", title="seed v4", hardware_tier_name="Medium",
                             poll_freq=0.2, max_poll_time=60)
out["job_start_blocking"] = final
out["job_status"] = d.job_status(final["id"])
long = d.job_start(command="sleep 60")
stopped = d.job_stop(long["id"])
out["job_stop_status_code"] = stopped.status_code
for _ in range(100):
    st = d.job_status(long["id"])
    if st["statuses"]["isCompleted"]:
        break
    time.sleep(0.1)
out["stopped"] = st["statuses"]["executionStatus"]
out["jobs_list"] = d.jobs_list(d.project_id, page_size=50)
try:
    d.job_start_blocking(command="fail.py", poll_freq=0.2, max_poll_time=60)
    out["failed"] = None
except Failure as exc:
    out["failed"] = type(exc).__name__
try:
    ended = d.job_start_blocking(command="no-such-program-xyz", poll_freq=0.2, max_poll_time=60)
    out["error"] = ended["statuses"]["executionStatus"]
except Failure as exc:
    out["error"] = "raised " + str(exc).splitlines()[0]
try:
    d.runs_start_blocking(["fail.py"], poll_freq=0.2, max_poll_time=60)
    out["run_failed"] = None
except Failure as exc:
    out["run_failed"] = type(exc).__name__
"""

OFFICIAL_SCRIPT = """
import json, time
from domino import Domino
from domino.exceptions import RunFailedException as Failure
d = Domino("demo/quick-start")
out = {}
""" + CALLS + "\nprint('RESULT ' + json.dumps(out))\n"


def _shape(value: Any) -> Any:
    """Keys all the way down (lists by their first item): what a caller indexes into."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return "."


@pytest.fixture(scope="module")
def seed_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("seed-project")
    (folder / "main.py").write_text("import sys\nprint('main says', *sys.argv[1:])\n")
    (folder / "fail.py").write_text("import sys\nprint('going down')\nsys.exit(2)\n")
    return folder


def test_the_seed_calls_give_the_official_shapes(seed_project: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    from domino_orchestrate.compat import Domino, RunFailedException

    with SandboxServer(projects={"demo/quick-start": seed_project},
                       api_key="compat-shapes-key-01") as srv:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOMINO_")}
        env.update(DOMINO_API_HOST=srv.url, DOMINO_USER_API_KEY=srv.api_key)
        proc = subprocess.run([OFFICIAL, "-c", OFFICIAL_SCRIPT], env=env, capture_output=True,
                              text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        official = json.loads(next(line for line in proc.stdout.splitlines()
                                   if line.startswith("RESULT "))[len("RESULT "):])

        for name in [n for n in os.environ if n.startswith("DOMINO_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("DOMINO_API_HOST", srv.url)
        monkeypatch.setenv("DOMINO_USER_API_KEY", srv.api_key)
        ours: dict[str, Any] = {}
        scope = {"d": Domino("demo/quick-start"), "out": ours, "Failure": RunFailedException,
                 "time": __import__("time")}
        official_count = len(srv.ctx.store.all())
        with caplog.at_level(logging.INFO, logger="domino_orchestrate.compat"):
            exec(compile(textwrap.dedent(CALLS), "seed_calls.py", "exec"), scope)
        bodies = [srv.execution_info(ex.id)["startRequest"]
                  for ex in sorted(srv.ctx.store.all(), key=lambda ex: ex.number)]

    # Domino receives the same start requests, field for field (null where the seed sends null:
    # publishApiEndpoint not given); our titles carry the retry key ` [do:…]` (docs/migration.md)
    assert len(bodies) == 2 * official_count
    for theirs, mine in zip(bodies[:official_count], bodies[official_count:], strict=True):
        if mine.get("title"):
            mine = {**mine, "title": re.sub(r" ?\[do:[0-9a-f]+\]$", "", mine["title"]) or None}
        assert mine == theirs

    # the same shapes, key for key
    for name in ("runs_start_blocking", "runs_list", "runs_status", "runs_start_direct",
                 "job_start_blocking", "job_status", "jobs_list"):
        assert _shape(ours[name]) == _shape(official[name]), name
    assert ours["runs_start_blocking"]["message"].startswith("Run for project demo/quick-start")
    assert ours["runs_stdout"] == official["runs_stdout"] == "main says a b 9\n"
    assert ours["job_start_blocking"]["statuses"]["executionStatus"] == "Succeeded"
    assert ours["job_stop_status_code"] == official["job_stop_status_code"] == 200
    assert ours["stopped"] == official["stopped"] == "Stopped"
    assert official["failed"] == "RunFailedException" and ours["failed"] == "JobFailedError"
    assert official["run_failed"] == "RunFailedException" and ours["run_failed"] == "JobFailedError"
    # deliberately better: a job that ends Error fails (the official client returns it as done)
    assert official["error"] == "Error"
    assert ours["error"].startswith("raised ") and "Error" in ours["error"]
    # stdout was logged line by line (the official client logs it once, at the end)
    logged = [r.getMessage() for r in caplog.records if r.name == "domino_orchestrate.compat"]
    assert "main says a b 9" in logged and "main says v4" in logged and "going down" in logged


def test_a_timeout_stops_the_job_and_bad_input_is_typed(
        seed_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from domino_orchestrate.compat import Domino, PollTimeoutError
    from domino_orchestrate.core import AuthenticationError, ConfigurationError

    with SandboxServer(projects={"demo/quick-start": seed_project},
                       api_key="compat-timeout-key-1") as srv:
        d = Domino("demo/quick-start", api_key=srv.api_key, host=srv.url)
        with pytest.raises(PollTimeoutError) as timed_out:
            d.job_start_blocking(command="sleep 60", poll_freq=0.2, max_poll_time=1.5)
        job_id = timed_out.value.job_id
        assert d.job_status(job_id)["statuses"]["executionStatus"] == "Stopped"
        with pytest.raises(ValueError, match="isDirect"):
            d.runs_start(["a"], is_direct=True, isDirect=True)
        with pytest.raises(ConfigurationError, match="owner/name"):
            Domino("no-slash", api_key=srv.api_key, host=srv.url)
        with pytest.raises(AuthenticationError):
            Domino("demo/quick-start", api_key="wrong-key-123", host=srv.url).job_status(job_id)
        # auth_token (seed precedence: before the API key) goes out as a bearer token
        srv.add_token("script-bearer-token-1")
        tokened = Domino("demo/quick-start", api_key="wrong-key-123", host=srv.url,
                         auth_token="script-bearer-token-1")
        started = tokened.job_start(command="echo tokened")
        assert srv.execution_info(started["id"])["startAuth"] == "Authorization: Bearer"
