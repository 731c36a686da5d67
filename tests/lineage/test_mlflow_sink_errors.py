"""A tracking server that goes away before the job ends never leaves its run RUNNING silently:
the close is spooled, said in the log, and delivered by ``lineage flush`` once it is back."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from domino_orchestrate.core import JobHandle, JobSnapshot, JobSpec, JobStatus, LogLine
from domino_orchestrate.core.lineage import LineageInfo, flush_spool, lineage_run_id
from domino_orchestrate.core.lineage.mlflow_sink import RUN_ID_TAG, MlflowObserver

from .conftest import free_port

pytestmark = pytest.mark.xdist_group("mlflow")


class Proxy:
    """A TCP forwarder on a fixed loopback port that can go down (refusing and cutting every
    connection) and come back: a tracking server that disappears, seen from the client."""

    def __init__(self, target: str) -> None:
        parsed = urlparse(target)
        self.target = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []

    def start(self) -> Proxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._conns += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the thread blocked in accept()
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()
        self._conns.clear()


def test_a_close_the_server_missed_is_spooled_then_flushed(
    mlflow_server: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from mlflow import MlflowClient

    proxy = Proxy(mlflow_server).start()
    try:
        lineage = LineageInfo("airflow", "dag.train", ("dag", "train", "run-1", "-1"))
        spool = tmp_path / "spool"
        observer = MlflowObserver(lineage, proxy.url, "sink-errors", spool_dir=spool / "mlflow")
        handle = JobHandle("6b03dc4e384459ed41115bd0", url="https://domino.example.com/j/1")
        observer.on_submitted(handle, JobSpec("python train.py"))
        for i in range(3):
            observer.on_line(LogLine(f"epoch {i}"))
        real = MlflowClient(tracking_uri=mlflow_server)
        [run] = real.search_runs(
            [real.get_experiment_by_name("sink-errors").experiment_id],
            filter_string=f"tags.\"{RUN_ID_TAG}\" = '{lineage_run_id(lineage)}'")
        assert run.info.status == "RUNNING"

        proxy.stop()  # the tracking server is gone when the job ends
        started = datetime(2026, 11, 30, 1, 0, 0, tzinfo=timezone.utc)
        completed = datetime(2026, 11, 30, 1, 1, 30, tzinfo=timezone.utc)
        ended = time.monotonic()
        with caplog.at_level(logging.WARNING, "domino_orchestrate.lineage"):
            observer.on_finished(JobSnapshot(handle.job_id, JobStatus.SUCCEEDED, "Succeeded",
                                             started_at=started, completed_at=completed), None)
        # Refused at once (the whole test takes 2 s at load 10); MLflow's retries take minutes.
        assert time.monotonic() - ended < 10, "a dead tracking server must not hold the task"
        assert observer.spooled is not None and observer.spooled.is_file()
        assert "unreachable" in caplog.text and "lineage flush" in caplog.text
        assert handle.job_id in caplog.text
        assert real.get_run(run.info.run_id).info.status == "RUNNING"

        proxy.start()  # back: `domino-orchestrate lineage flush` closes it
        assert flush_spool(spool) == (1, 0)
        closed = real.get_run(run.info.run_id)
        assert closed.info.status == "FINISHED"
        assert closed.info.end_time == int(completed.timestamp() * 1000)
        assert closed.data.metrics["duration_s"] == 90.0
        path = real.download_artifacts(run.info.run_id, "stdout.txt", str(tmp_path))
        assert Path(path).read_text() == "epoch 0\nepoch 1\nepoch 2\n"
        assert not list((spool / "mlflow").glob("*.json"))
    finally:
        proxy.stop()


def test_a_run_nobody_opened_is_created_and_closed_by_the_waiting_observer(
    mlflow_server: str, tmp_path: Path
) -> None:
    """MLflow configured only where the wait happens: the waiting observer creates the run from
    the job snapshot (command as Domino reports it) and closes it."""
    from mlflow import MlflowClient

    lineage = LineageInfo("cli", "cli-train", ("session-1", "cli-train"))
    observer = MlflowObserver(lineage, mlflow_server, "sink-errors")
    snapshot = JobSnapshot("6b03dc4e384459ed41115bd9", JobStatus.FAILED, "Failed",
                           command="python train.py --epochs 3", title="nightly",
                           failure_message="exit 3")
    observer.on_status(snapshot)
    observer.on_finished(snapshot, RuntimeError("failed"))
    real = MlflowClient(tracking_uri=mlflow_server)
    assert observer.run_id is not None
    run: Any = real.get_run(observer.run_id)
    assert run.info.status == "FAILED"
    assert run.data.params["command"] == "python train.py --epochs 3"
    assert run.data.tags["domino.failure_message"] == "exit 3"
    assert run.data.tags["domino.job_id"] == snapshot.job_id
