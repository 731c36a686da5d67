"""Feeding the store: ``DOMINO_ORCHESTRATE_LINEAGE_STORE`` makes our emitter write real jobs'
events to it (here a real PostgreSQL), a store that is down spools them until ``lineage flush``,
and plain openlineage-python (no domino-orchestrate import) loads the transport by dotted path."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from domino_orchestrate.core import DominoClient, PollOptions
from domino_orchestrate.core.lineage import Dataset, LineageInfo, flush_spool, lineage_observers
from domino_orchestrate.core.lineage import lineage_run_id as run_id_of
from domino_orchestrate.trace.store import LineageStore

pytest.importorskip("starlette")

FAST = PollOptions(poll_freq=0.3, initial_interval=0.1, stop_timeout=20)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _job(client: DominoClient, name: str) -> str:
    info = LineageInfo(orchestrator="cli", job_name=name, run_key=("t", name),
                       outputs=(Dataset("file:///data", f"{name}.csv"),))
    client.run_job(f"echo {name}", FAST, observers=lineage_observers(info, client.config))
    return run_id_of(info)


@pytest.mark.xdist_group("postgres")
def test_env_var_store_on_postgres_and_spool_while_it_is_down(
        domino_sandbox: Any, postgres_url: str, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    srv = domino_sandbox
    down = f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/lineage"
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_STORE", down)
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_DELIVERY_WAIT", "0")
    with DominoClient(srv.url, "demo/quick-start", api_key=srv.api_key) as client:
        early = _job(client, "while-down")  # the job runs; its events wait in the spool
        spooled = list((tmp_path / "spool" / "store").glob("*.json"))
        assert len(spooled) >= 2, "events of a job whose store is down must be spooled"
        monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_STORE", postgres_url)
        delivered, remaining = flush_spool()  # what `domino-orchestrate lineage flush` does
        assert (delivered, remaining) == (len(spooled), 0)
        later = _job(client, "while-up")
    assert not list((tmp_path / "spool" / "store").glob("*.json"))
    with LineageStore(postgres_url) as store:
        for run_id, name in ((early, "while-down"), (later, "while-up")):
            run = store.inspect(run_id)
            assert (run.component, run.status) == (name, "COMPLETE")
            assert run.domino_job_id and [o.name for o in run.outputs] == [f"{name}.csv"]


def test_plain_openlineage_client_loads_the_transport_by_dotted_path(tmp_path: Path) -> None:
    store = tmp_path / "lineage.db"
    script = textwrap.dedent("""
        import sys
        from openlineage.client import OpenLineageClient
        from openlineage.client.event_v2 import Job, Run, RunEvent, RunState, OutputDataset
        client = OpenLineageClient()
        for state in (RunState.START, RunState.COMPLETE):
            client.emit(RunEvent(eventType=state, eventTime="2026-11-30T10:00:00Z",
                                 run=Run(runId="0b6f7c62-8d7e-4c5b-9a37-6f1b2b0e9d11"),
                                 job=Job(namespace="spark", name="nightly"),
                                 outputs=[OutputDataset(namespace="s3://b", name="t")],
                                 producer="https://example.com/producer"))
        # Found by its dotted path alone: our emitter (which registers "domino_store") never ran.
        assert "domino_orchestrate.core.lineage.transports" not in sys.modules
    """)
    env = {**os.environ,
           "OPENLINEAGE__TRANSPORT__TYPE": "domino_orchestrate.trace.transport.DominoStoreTransport",
           "OPENLINEAGE__TRANSPORT__STORE": str(store)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120,
                   cwd=tmp_path)
    with LineageStore(store) as opened:
        run = opened.inspect("0b6f7c62-8d7e-4c5b-9a37-6f1b2b0e9d11")
        assert (run.component, run.status, run.outputs[0].key) == ("nightly", "COMPLETE", "s3://b/t")
