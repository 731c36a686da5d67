"""What a job reports from inside (Dagster Pipes messages on its stdout) reaches Prefect as
artifacts and in the task result; a flow retry that reattaches does not show them twice; many
lines go to the run logs in few calls.

The job runs ``domino_orchestrate.injob.open_pipes`` (dagster-pipes' own writer) in this venv.
"""

from __future__ import annotations

import json
import shlex
import sys
import uuid
from pathlib import Path
from typing import Any

from prefect import flow

from domino_orchestrate.prefect import DominoCredentials, run_domino_job

JOB = """
from domino_orchestrate.injob import open_pipes
with open_pipes() as pipes:
    pipes.report_asset_materialization(asset_key="orders", metadata={"rows": 42})
    pipes.report_asset_check(asset_key="orders", check_name="has_rows", passed=False)
    pipes.report_custom_message({"auc": 0.91})
for i in range(300):
    print(f"bulk line {i}")
"""


def _command(tmp_path: Path) -> str:
    script = tmp_path / "job.py"
    script.write_text(JOB)
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"


def _data(artifact: Any) -> Any:
    return json.loads(artifact.data) if isinstance(artifact.data, str) and artifact.type == "table" \
        else artifact.data


def test_reported_messages_become_artifacts_and_the_result_once_across_a_retry(
    creds: DominoCredentials, h: Any, sandbox: Any, tmp_path: Path
) -> None:
    title = f"pipes-{uuid.uuid4().hex[:8]}"
    command = _command(tmp_path)
    summaries: list[dict[str, Any]] = []

    @flow(retries=1, retry_delay_seconds=0)
    def nightly() -> dict[str, Any]:
        summary = run_domino_job(creds, command, title=title, poll_options=h.fast())
        summaries.append(summary)
        if len(summaries) == 1:
            raise RuntimeError("the flow fails after the job succeeded")
        return summary

    state = nightly(return_state=True)

    assert state.is_completed(), state.message
    assert h.starts(sandbox, title) == 1  # the retry reattached
    for summary in summaries:  # the retry's result still has everything the job reported
        assert summary["result"] == {"auc": 0.91}
        assert summary["messages"]["materializations"] == [
            {"asset_key": "orders", "data_version": None, "metadata": {"rows": 42}}]
        assert summary["messages"]["checks"][0]["passed"] is False
    artifacts = h.read_artifacts(state.state_details.flow_run_id)
    reports = [a for a in artifacts if a.type == "markdown" and "reported" in str(a.data)]
    assert len(reports) == 1, [a.data for a in reports]  # not shown again by the retry
    assert "materialized **orders**" in reports[0].data and '{"auc": 0.91}' in reports[0].data
    tables = [_data(a) for a in artifacts if a.type == "table"]
    rows = [row for table in tables for row in table if row.get("kind")]
    assert rows == [
        {"kind": "materialization", "asset_key": "orders", "check": None, "passed": None,
         "metadata": '{"rows": 42}'},
        {"kind": "check", "asset_key": "orders", "check": "has_rows", "passed": False,
         "metadata": "{}"}]
    logs = h.read_logs(state.state_details.flow_run_id)
    batched = [m for m in logs if "lines of Domino stdout:" in m]
    assert batched and all(f"bulk line {i}" in "\n".join(batched) for i in (0, 150, 299))
    assert len(logs) < 60, len(logs)  # 300+ lines, twice: a few log calls
