"""Airflow test setup: an isolated AIRFLOW_HOME + SQLite DB per xdist worker, and DAG helpers.

The environment is set at import time, before anything imports Airflow (Airflow reads its config
once on import). Each worker gets its own temp dir; the DB is created once per worker session
(``airflow.utils.db.initdb``, ~2 s on SQLite) — the fastest recipe that works on Airflow 3.3.
``run_dag`` registers an in-memory DAG in the metadata DB (dag.test() needs it serialized) and runs
it with ``dag.test()``; deferred tasks run their trigger inline there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# tests/conftest.py has given this worker its own AIRFLOW_HOME before Airflow was imported.
_HOME = Path(os.environ["AIRFLOW_HOME"])

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "airflow"
FAST = {"poll_freq": 0.5, "initial_interval": 0.2, "stop_timeout": 15.0}


def use_sandbox_connection(monkeypatch: pytest.MonkeyPatch, sandbox: Any) -> None:
    """Point the ``domino_default`` Airflow connection (JSON env var) at ``sandbox``."""
    for name in ("DOMINO_API_HOST", "DOMINO_USER_API_KEY", "DOMINO_TOKEN_FILE", "DOMINO_API_PROXY",
                 "DOMINO_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_DOMINO_DEFAULT", json.dumps({
        "conn_type": "domino",
        "host": sandbox.url,
        "password": sandbox.api_key,
        "extra": {"project": "demo/quick-start"},
    }))


@pytest.fixture
def domino_conn(domino_sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The sandbox, reachable through the ``domino_default`` Airflow connection."""
    use_sandbox_connection(monkeypatch, domino_sandbox)
    return domino_sandbox


def sandbox_client(sandbox: Any) -> Any:
    from domino_orchestrate.core import DominoClient

    return DominoClient(sandbox.url, "demo/quick-start", api_key=sandbox.api_key)


def _run_dag(dag: Any) -> Any:
    """Register ``dag`` in the metadata DB and run it once with ``dag.test()``; return the DagRun."""
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    bag = DagBag(dag_folder=str(_HOME / "dags"))
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return dag.test()


def _task_instances(dag_run: Any) -> dict[str, Any]:
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = dag_run.get_task_instances(session=session)
        for ti in tis:
            session.expunge(ti)
    return {ti.task_id: ti for ti in tis}


def _xcoms(dag_run: Any, task_id: str) -> dict[str, Any]:
    """Every XCom the task pushed, ``{key: deserialized value}``."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter(
            XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id,
            XComModel.task_id == task_id,
        ).all()
        return {row.key: XComModel.deserialize_value(row) for row in rows}


class AirflowHelpers:
    """Helpers handed to tests (``--import-mode=importlib`` cannot import conftest)."""

    fast = FAST
    examples = EXAMPLES
    run_dag = staticmethod(_run_dag)
    use_sandbox_connection = staticmethod(use_sandbox_connection)
    sandbox_client = staticmethod(sandbox_client)
    task_instances = staticmethod(_task_instances)
    xcoms = staticmethod(_xcoms)


@pytest.fixture
def af() -> type[AirflowHelpers]:
    return AirflowHelpers


@pytest.fixture
def fast() -> dict[str, float]:
    return dict(FAST)


@pytest.fixture(autouse=True)
def _db(airflow_db: Path) -> Iterator[None]:
    yield
