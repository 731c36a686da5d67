"""Set-up every test directory shares: an isolated Airflow home per xdist worker (set here,
before any test module can import Airflow), and the OpenLineage JSON schema from ``../shared``
(or ``DOMINO_ORCHESTRATE_OPENLINEAGE_SPEC``), skipped with a reason when it is absent."""

from __future__ import annotations

import atexit
import json
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

if "airflow" in sys.modules:  # pragma: no cover - would silently use the wrong AIRFLOW_HOME
    raise RuntimeError("tests/conftest.py must be imported before Airflow")

AIRFLOW_HOME = Path(
    tempfile.mkdtemp(prefix=f"airflow-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-")
)
(AIRFLOW_HOME / "dags").mkdir()
atexit.register(shutil.rmtree, AIRFLOW_HOME, True)
os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{AIRFLOW_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(AIRFLOW_HOME / "dags")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "INFO"
os.environ.pop("AIRFLOW_CONN_DOMINO_DEFAULT", None)


@pytest.fixture(autouse=True)
def _fresh_retry_quota() -> None:
    """The retry quota is one per process (core/retry.py); a test that exhausts it against a
    dead server must not leave the next test in this worker without retries."""
    from domino_orchestrate.core.retry import QUOTA

    QUOTA.reset()


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """This worker's migrated Airflow metadata DB (created once); returns AIRFLOW_HOME."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.utils import db

    marker = AIRFLOW_HOME / ".db-ready"
    if not marker.exists():
        db.initdb()
        DagBundlesManager().sync_bundles_to_db()  # the "dags-folder" bundle row DAGs refer to
        marker.touch()
    return AIRFLOW_HOME


# --- ports for servers started as other processes --------------------------------------------

_PORTS_HANDED_OUT: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def load_module(name: str, path: Path) -> Any:
    """The Python file at ``path`` imported as module ``name`` (examples, CI hooks, scripts that
    are not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def port_for_a_server() -> int:
    """A free loopback port for a server started as another process (it binds the port later).

    A port from ``bind(("127.0.0.1", 0))`` is free only until the socket closes: the kernel hands
    the same ephemeral range to every outgoing connection and ``bind(0)`` of the rest of the
    suite, so on a busy machine another socket could take it before the server binds it, and the
    server fails to start. This picks, at random, a free port *below* the ephemeral range
    (``ip_local_port_range``), where nothing is assigned without being asked for by number."""
    low = _ephemeral_low()
    rng = random.SystemRandom()
    for _ in range(500):
        port = rng.randrange(max(1024, low - 12000), low)
        if port in _PORTS_HANDED_OUT:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _PORTS_HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free port below {low} after 500 tries")


@pytest.fixture(scope="session")
def server_port() -> Callable[[], int]:
    """``server_port()``: a free port for a server started as another process (conftests cannot
    import each other in importlib mode; see :func:`port_for_a_server`)."""
    return port_for_a_server


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """One temporary Prefect API (SQLite) per worker, shared by every Prefect test; yields its URL.
    Never a second one beside it: a harness started and stopped inside another left the
    process's events worker failing every event afterwards (task runs never reached the API)."""
    import prefect.settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield str(prefect.settings.PREFECT_API_URL.value())


@pytest.fixture
def lineage_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """openlineage-python's file transport, appending every event to this file; undelivered
    events spool under this test's ``tmp_path``."""
    path = tmp_path / "lineage.jsonl"
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "file")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", str(path))
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__APPEND", "true")
    monkeypatch.setenv("DOMINO_ORCHESTRATE_LINEAGE_SPOOL", str(tmp_path / "spool"))
    return path


@pytest.fixture
def airflow_openlineage() -> Iterator[None]:
    """Airflow's OpenLineage provider as in a process started with ``[openlineage]`` configured.

    The provider reads its settings once per process (``functools.cache``), keeps its client,
    and its plugin registers the listener only if OpenLineage was configured when the plugin
    module was first imported; on a test worker an earlier test may have imported it without
    (``listeners = []`` for the rest of the process). So: start and end the test with the
    settings and client unread, and the listener registered with both of Airflow's listener
    managers (task instances: the task SDK's; DAG runs: the core's) for this test only. Configure
    ``AIRFLOW__OPENLINEAGE__*`` in the test itself."""
    from airflow.listeners.listener import get_listener_manager as core_listeners
    from airflow.providers.openlineage import conf
    from airflow.providers.openlineage.plugins.listener import get_openlineage_listener
    from airflow.sdk.listener import get_listener_manager as task_listeners

    def forget() -> None:
        for value in vars(conf).values():
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()
        listener = get_openlineage_listener()
        if getattr(listener, "adapter", None) is not None:
            listener.adapter._client = None

    forget()
    listener = get_openlineage_listener()
    added = [manager for manager in (task_listeners(), core_listeners())
             if not manager.pm.is_registered(listener)]
    for manager in added:
        manager.add_listener(listener)
    yield
    for manager in added:  # later tests on this worker see the process as it was
        manager.pm.unregister(listener)
    forget()


SPEC_DIR = Path(
    os.environ.get("DOMINO_ORCHESTRATE_OPENLINEAGE_SPEC")
    or Path(__file__).resolve().parents[2] / "shared" / "openlineage-spec"
)


# --- schema ----------------------------------------------------------------------------------


class OpenLineageSchema:
    """Validates a RunEvent dict against OpenLineage.json, and each facet against the schema its
    ``_schemaURL`` names (facet files registered by their ``$id``)."""

    def __init__(self, spec_dir: Path) -> None:
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource

        self.root = json.loads((spec_dir / "OpenLineage.json").read_text())
        resources = [(self.root["$id"], Resource.from_contents(self.root))]
        from domino_orchestrate.core.lineage.events import SCHEMA_DIR  # our own facets' schemas

        for path in [*sorted((spec_dir / "facets").glob("*.json")), *sorted(SCHEMA_DIR.glob("*.json"))]:
            doc = json.loads(path.read_text())
            resources.append((doc["$id"], Resource.from_contents(doc)))
        self.registry = Registry().with_resources(resources)
        self.ids = {uri for uri, _ in resources}
        self.checker = Draft202012Validator.FORMAT_CHECKER
        self.event_validator = Draft202012Validator(
            {"$ref": self.root["$id"] + "#/$defs/RunEvent"},
            registry=self.registry, format_checker=self.checker,
        )

    def validate(self, event: dict[str, Any]) -> None:
        from jsonschema import Draft202012Validator

        self.event_validator.validate(event)
        facets: list[dict[str, Any]] = [
            *((event.get("run") or {}).get("facets") or {}).values(),
            *((event.get("job") or {}).get("facets") or {}).values(),
        ]
        for dataset in [*event.get("inputs", []), *event.get("outputs", [])]:
            facets.extend((dataset.get("facets") or {}).values())
        for facet in facets:
            url = facet["_schemaURL"]
            base, _, fragment = url.partition("#")
            if base not in self.ids:
                # An older openlineage-python (the declared floor) names an older version of a
                # facet the spec copy has: validate against the copy's version of that file.
                newer = [uri for uri in self.ids if uri.rsplit("/", 1)[-1] == base.rsplit("/", 1)[-1]]
                assert newer, f"facet schema {url} is not in the spec copy"
                url = f"{newer[0]}#{fragment}" if fragment else newer[0]
            Draft202012Validator(
                {"$ref": url}, registry=self.registry, format_checker=self.checker
            ).validate(facet)


@pytest.fixture(scope="session")
def ol_schema() -> OpenLineageSchema:
    if not (SPEC_DIR / "OpenLineage.json").is_file():
        pytest.skip(
            f"OpenLineage spec not found at {SPEC_DIR} (set DOMINO_ORCHESTRATE_OPENLINEAGE_SPEC)"
        )
    return OpenLineageSchema(SPEC_DIR)


class RunEventShape:
    """Without the spec: the fields every OpenLineage RunEvent has, so tests that check events in
    passing (chaos) still check them on a fresh clone instead of skipping."""

    def validate(self, event: dict[str, Any]) -> None:
        import uuid

        assert event["eventType"] in {"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"}, event
        assert isinstance(event["eventTime"], str) and event["eventTime"], event
        assert isinstance(event["producer"], str) and isinstance(event["schemaURL"], str), event
        uuid.UUID(event["run"]["runId"])
        assert event["job"]["namespace"] and event["job"]["name"], event


def run_event_checker() -> OpenLineageSchema | RunEventShape:
    """The spec's validator when the spec copy is there (as ``.ci/run`` provides it), else
    :class:`RunEventShape`."""
    if (SPEC_DIR / "OpenLineage.json").is_file():
        return OpenLineageSchema(SPEC_DIR)
    return RunEventShape()


@pytest.fixture(scope="session")
def run_event_check() -> OpenLineageSchema | RunEventShape:
    """For tests whose subject is not the schema: validates with the spec, never skips."""
    return run_event_checker()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Make ``xdist_group`` marks work again: pytest-xdist 3.8 tags a grouped test by setting
    ``item._nodeid``, which pytest 9 no longer reads (it reads ``item._id``), so ``--dist
    loadgroup`` spread every group over both workers and each started its own expensive fixture."""
    from _pytest.nodeid import coerce_node_id

    for item in items:
        tagged = item.__dict__.pop("_nodeid", None)
        if tagged is not None:
            item._id = coerce_node_id(tagged)


# A runner that starts the suite as a background job of a non-interactive shell hands it SIGINT
# ignored (POSIX), which Python then keeps: no KeyboardInterrupt, and every process the tests start
# (a sandbox's jobs, dagster dev's step workers) inherits the ignored SIGINT. Tests run as from a
# terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_DISPOSITIONS_AT_START = {sig: signal.getsignal(sig) for sig in _SIGNALS}


@pytest.fixture(autouse=True)
def _signal_dispositions_restored() -> Iterator[None]:
    """Give every test the worker's original SIGINT/SIGTERM/SIGHUP handling back: Airflow's
    ``dag.test()`` and Dagster's ``materialize()`` leave handlers of their own installed, and a
    later test on the same worker then saw no KeyboardInterrupt, or its in-process sandbox started
    jobs that inherited an ignored SIGTERM (their TERM trap never ran)."""
    yield
    for sig, disposition in _DISPOSITIONS_AT_START.items():
        if signal.getsignal(sig) is not disposition and disposition is not None:
            signal.signal(sig, disposition)
