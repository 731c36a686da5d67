"""A missing extra is named, with the command that installs it, instead of a bare
``ModuleNotFoundError`` from deep inside our code.

Each case runs in a fresh interpreter where the extra's package is blocked the way Python itself
reports an absent one (``sys.modules[name] = None`` makes ``import name`` raise
``ModuleNotFoundError``), so nothing already imported by this test process can hide the error.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tomllib

from domino_orchestrate.core.extras import EXTRAS, MissingExtraError, require_extra, requires_extra


def run_without(blocked: list[str], code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new interpreter in which the modules ``blocked`` cannot be imported."""
    prelude = f"import sys\nfor _name in {blocked!r}:\n    sys.modules[_name] = None\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120)


def assert_names_extra(proc: subprocess.CompletedProcess[str], extra: str) -> None:
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    assert proc.returncode != 0, proc.stdout
    assert last.startswith("domino_orchestrate.core.extras.MissingExtraError"), proc.stderr
    assert f"pip install 'domino-orchestrate[{extra}]'" in last, last


@pytest.mark.parametrize("extra", ["airflow", "prefect", "dagster"])
def test_importing_an_integration_without_its_extra_names_the_extra(extra: str) -> None:
    proc = run_without([extra], f"import domino_orchestrate.{extra}")
    assert_names_extra(proc, extra)
    # One error, not a chain of ours around Python's: the user reads one line to act on.
    assert "During handling" not in proc.stderr


def test_from_import_of_an_airflow_operator_without_airflow_names_the_extra() -> None:
    proc = run_without(["airflow"], "from domino_orchestrate.airflow import DominoJobOperator")
    assert_names_extra(proc, "airflow")


def test_lineage_store_without_its_extra_names_the_extra() -> None:
    proc = run_without(["sqlalchemy"], "from domino_orchestrate.trace import LineageStore")
    assert_names_extra(proc, "store")


def test_the_error_is_still_a_module_not_found_error_for_fallback_code() -> None:
    proc = run_without(["dagster"], """
        try:
            import domino_orchestrate.dagster
        except ModuleNotFoundError as exc:
            print(type(exc).__name__, exc.name, exc.extra)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["MissingExtraError", "dagster", "dagster"]


def test_in_job_mlflow_helper_without_mlflow_names_the_extra() -> None:
    proc = run_without(["mlflow"], """
        from domino_orchestrate.injob import mlflow_run
        with mlflow_run(tracking_uri="file:///nonexistent"):
            pass
    """)
    assert_names_extra(proc, "mlflow")


def test_mlflow_sink_without_mlflow_is_off_with_a_warning_naming_the_extra() -> None:
    # The sink never fails the job: without mlflow it records and logs why, naming the extra.
    proc = run_without(["mlflow"], """
        import logging
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        from domino_orchestrate.core.lineage import LineageInfo
        from domino_orchestrate.core.lineage.mlflow_sink import MlflowObserver
        sink = MlflowObserver(LineageInfo("cli", "train", ("k",)), "file:///nonexistent", "exp")
        print("client:", sink._connect(), "enabled:", sink.enabled)
        print("errors:", sink.calls.errors)
    """)
    assert proc.returncode == 0, proc.stderr
    assert "client: None enabled: False" in proc.stdout
    assert "pip install 'domino-orchestrate[mlflow]'" in proc.stdout.split("errors:")[1]
    assert "pip install 'domino-orchestrate[mlflow]'" in proc.stderr  # the logged warning


def test_lineage_without_openlineage_logs_the_extra_and_the_job_runs_on() -> None:
    proc = run_without(["openlineage"], """
        import logging, os
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        os.environ["OPENLINEAGE_URL"] = "http://127.0.0.1:9"
        from domino_orchestrate.core.lineage import LineageInfo, lineage_observers
        print("observers:", lineage_observers(LineageInfo("cli", "train", ("k",)), None))
    """)
    assert proc.returncode == 0, proc.stderr
    assert "observers: []" in proc.stdout
    assert "pip install 'domino-orchestrate[lineage]'" in proc.stderr


def test_require_extra_passes_when_installed_and_names_the_missing_module() -> None:
    require_extra("airflow", "x")  # installed in this environment: no error
    with pytest.raises(MissingExtraError) as caught, requires_extra("mlflow", "the MLflow sink"):
        raise ModuleNotFoundError("No module named 'mlflow.entities'", name="mlflow.entities")
    assert caught.value.extra == "mlflow" and caught.value.name == "mlflow.entities"
    assert str(caught.value) == ("the MLflow sink needs the 'mlflow' extra ('mlflow.entities' is "
                                 "not installed): pip install 'domino-orchestrate[mlflow]'")


def test_a_missing_module_that_is_not_the_extras_passes_unchanged() -> None:
    # A bug (or another dependency) must not be blamed on an extra the user already has.
    with pytest.raises(ModuleNotFoundError) as caught, requires_extra("airflow", "x"):
        raise ModuleNotFoundError("No module named 'airflowish'", name="airflowish")
    assert type(caught.value) is ModuleNotFoundError


def test_the_error_pickles_for_process_pools_and_every_extra_is_declared() -> None:
    error = MissingExtraError("prefect", "domino_orchestrate.prefect", "prefect")
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), str(again), again.extra, again.name) == (
        MissingExtraError, str(error), "prefect", "prefect")
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert set(EXTRAS) <= set(pyproject["project"]["optional-dependencies"])
