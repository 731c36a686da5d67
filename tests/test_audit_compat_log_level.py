"""``DOMINO_LOG_LEVEL`` in a plain script using ``domino_orchestrate.compat.Domino`` (issue 19), as
python-domino users run one: no logging set up by the script, so what the job prints shows at the
default INFO, ``DOMINO_LOG_LEVEL=WARNING`` quiets it, and a value that is no level is one clear
error naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from domino_orchestrate.sandbox import SandboxServer

pytestmark = pytest.mark.timeout(120)

SCRIPT = """
from domino_orchestrate.compat import Domino
d = Domino("demo/quick-start")
final = d.job_start_blocking(command="main.py level-check", poll_freq=0.2, max_poll_time=60)
print("STATUS", final["statuses"]["executionStatus"])
"""


def test_domino_log_level_decides_what_a_plain_script_shows(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("import sys\nprint('main says', *sys.argv[1:])\n")
    with SandboxServer(projects={"demo/quick-start": tmp_path},
                       api_key="log-level-key-0123456789") as srv:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOMINO_")}
        env.update(DOMINO_API_HOST=srv.url, DOMINO_USER_API_KEY=srv.api_key)

        def script(**extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-c", SCRIPT], env={**env, **extra},
                                  capture_output=True, text=True, timeout=90)

        default, quiet, bad = script(), script(DOMINO_LOG_LEVEL="WARNING"), script(
            DOMINO_LOG_LEVEL="chatty")
    assert default.returncode == 0 and default.stdout == "STATUS Succeeded\n", default.stderr
    assert "main says level-check" in default.stderr  # the job's line, logged at INFO
    assert quiet.returncode == 0 and quiet.stdout == "STATUS Succeeded\n", quiet.stderr
    assert "main says" not in quiet.stderr
    assert bad.returncode == 1 and bad.stdout == ""
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith("domino_orchestrate.core.errors.ConfigurationError: DOMINO_LOG_LEVEL "
                           "must be one of"), bad.stderr[-2000:]
