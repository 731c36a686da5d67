"""Lineage wiring: the LineageInfo the Prefect tasks build (orchestrator, job name, stable run key,
parent flow run), observers that see the job start and finish, and the lineage env prefixed to the
job command. ``lineage_observers``/``lineage_env`` are replaced by recorders: lineage backends are
configured elsewhere, so that edge is the one thing faked here."""

from __future__ import annotations

import uuid
from typing import Any

from prefect import flow

from domino_orchestrate.core.lineage import LineageInfo
from domino_orchestrate.prefect import DominoCredentials, _common, run_domino_job


class Recorder:
    def __init__(self, info: LineageInfo) -> None:
        self.info = info
        self.events: list[tuple[str, Any]] = []

    def on_submitted(self, handle: Any, spec: Any) -> None:
        self.events.append(("submitted", handle.job_id))

    def on_finished(self, snapshot: Any, error: Any) -> None:
        self.events.append(("finished", snapshot.status.value if snapshot else None))


def test_lineage_info_observers_and_env(creds: DominoCredentials, h: Any, mocker: Any) -> None:
    recorders: list[Recorder] = []

    def observers(info: LineageInfo, config: Any) -> list[Any]:
        assert config.host == creds.host
        recorders.append(Recorder(info))
        return [recorders[-1]]

    mocker.patch.object(_common, "lineage_observers", side_effect=observers)
    mocker.patch.object(_common, "lineage_env",
                        return_value={"DO_LINEAGE_PARENT": "prefect/run 'x'"})
    title = f"lin-{uuid.uuid4().hex[:8]}"

    @flow(name="lineage-parent")
    def parent() -> dict[str, Any]:
        return run_domino_job(creds, 'echo "parent=$DO_LINEAGE_PARENT"', title=title,
                              poll_options=h.fast())

    state = parent(return_state=True)
    summary = state.result()
    parent_run_id = str(state.state_details.flow_run_id)

    assert len(recorders) == 1
    rec = recorders[0]
    info = rec.info
    assert info.orchestrator == "prefect"
    assert info.job_name == "run_domino_job.start_domino_job"
    assert info.parent is not None and info.parent.namespace == "prefect"
    assert info.parent.name == "run_domino_job"
    assert info.parent.run_id != parent_run_id  # the subflow run
    assert info.parent.root_run_id == parent_run_id and info.parent.root_name
    assert info.run_key[0] == parent_run_id
    assert "run_domino_job-0/start_domino_job" in info.run_key[1]
    # The wait task reports to the same observers: start and finish of one lineage run.
    assert rec.events == [("submitted", summary["job_id"]), ("finished", "Succeeded")]
    assert "parent=prefect/run 'x'" in h.read_logs(parent_run_id)


def test_stdout_lines_are_scrubbed_of_the_api_key(creds: DominoCredentials, h: Any,
                                                   sandbox: Any) -> None:
    state = run_domino_job(creds, f"echo leaked={sandbox.api_key}", title="scrub",
                           poll_options=h.fast(), return_state=True)
    assert state.is_completed()
    logs = h.read_logs(state.state_details.flow_run_id)
    assert "leaked=***" in logs
    assert not [m for m in logs if sandbox.api_key in m]
