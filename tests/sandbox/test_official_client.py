"""Conformance: the official client (dominodatalab 2.2.0) works against the sandbox.

The client lives in its own venv (it pins old packaging/dateutil), so each scenario runs as a
script under `$DOMINO_OFFICIAL_PYTHON` with DOMINO_API_HOST / DOMINO_USER_API_KEY pointing at an
in-process sandbox, and prints one JSON line of results.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from domino_orchestrate.sandbox import SandboxServer

OFFICIAL = os.environ.get("DOMINO_OFFICIAL_PYTHON", "")
pytestmark = pytest.mark.skipif(
    not OFFICIAL or not Path(OFFICIAL).exists(),
    reason="set DOMINO_OFFICIAL_PYTHON to a python with dominodatalab==2.2.0 "
    "(e.g. .venv-official/bin/python) to run the official-client conformance tests",
)

PRELUDE = """
import json, sys, time
from domino import Domino
from domino.exceptions import RunFailedException
d = Domino("demo/quick-start")
out = {}
"""


@pytest.fixture(scope="module")
def official_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    folder = tmp_path_factory.mktemp("official-project")
    (folder / "main.py").write_text("import sys\nprint('main says', *sys.argv[1:])\n")
    (folder / "fail.py").write_text("import sys\nprint('going down')\nsys.exit(2)\n")
    with SandboxServer(projects={"demo/quick-start": folder}, api_key="official-key") as srv:
        yield srv


def _run(srv: SandboxServer, body: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOMINO_")}
    env.update(DOMINO_API_HOST=srv.url, DOMINO_USER_API_KEY=srv.api_key)
    script = PRELUDE + textwrap.dedent(body) + "\nprint('RESULT ' + json.dumps(out))\n"
    proc = subprocess.run(
        [OFFICIAL, "-c", script], env=env, capture_output=True, text=True, timeout=90
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return dict(json.loads(line[len("RESULT ") :]))


def test_v1_runs(official_sandbox: SandboxServer) -> None:
    out = _run(
        official_sandbox,
        """
        started = d.runs_start_blocking(["main.py", "v1"], title="official-v1", poll_freq=0.2,
                                        max_poll_time=60)
        out["started"] = started
        rid = started["runId"]
        out["stdout"] = d.runs_stdout(rid)
        out["list"] = d.runs_list()
        out["status"] = d.runs_status(rid)
        try:
            d.runs_start_blocking(["fail.py"], poll_freq=0.2, max_poll_time=60)
            out["raised"] = None
        except RunFailedException as exc:
            out["raised"] = str(exc)
        """,
    )
    rid = out["started"]["runId"]
    assert out["stdout"] == "main says v1\n"
    assert out["list"]["objectType"] == "list"
    assert rid in [r["id"] for r in out["list"]["data"]]
    assert out["status"]["status"] == "Succeeded"
    assert out["raised"] and "did not succeed" in out["raised"]


def test_v4_jobs(official_sandbox: SandboxServer) -> None:
    out = _run(
        official_sandbox,
        """
        final = d.job_start_blocking(command="main.py v4", title="official-v4",
                                     hardware_tier_name="Medium", poll_freq=0.2, max_poll_time=60)
        out["final"] = final
        out["status"] = d.job_status(final["id"])
        out["tiers"] = d.hardware_tiers_list()
        long = d.job_start(command="sleep 60")
        d.job_stop(long["id"])
        for _ in range(100):
            st = d.job_status(long["id"])
            if st["statuses"]["isCompleted"]:
                break
            time.sleep(0.1)
        out["stopped"] = st
        out["jobs"] = d.jobs_list(d.project_id, page_size=50)
        out["stdout"] = d.runs_stdout(final["id"])
        """,
    )
    final = out["final"]
    assert final["statuses"]["isCompleted"] is True
    assert final["statuses"]["executionStatus"] == "Succeeded"
    assert final["hardwareTier"]["id"] == "medium-k8s"
    assert out["status"]["id"] == final["id"]
    assert out["stdout"] == "main says v4\n"
    assert [t["hardwareTier"]["name"] for t in out["tiers"]] == ["Small", "Medium", "Large"]
    assert out["stopped"]["statuses"]["executionStatus"] == "Stopped"
    ids = [j["id"] for j in out["jobs"]["jobs"]]
    assert final["id"] in ids and out["stopped"]["id"] in ids


def test_v4_failure_raises(official_sandbox: SandboxServer) -> None:
    out = _run(
        official_sandbox,
        """
        try:
            d.job_start_blocking(command="fail.py", poll_freq=0.2, max_poll_time=60)
            out["raised"] = None
        except RunFailedException as exc:
            out["raised"] = str(exc)
        """,
    )
    assert out["raised"] and out["raised"].startswith("Run Status Failed for run:")
