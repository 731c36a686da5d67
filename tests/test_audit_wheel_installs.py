"""The built wheel as a new user installs it (issue 17): alone, and with each extra, into a fresh
venv that holds nothing of this checkout, then used the way that extra is meant to be used.

``tests/test_packaging.py`` reads the wheel's metadata; this installs it. Each venv is made with
``uv pip install --offline`` from uv's cache (filled by ``make``'s install of the same pinned
versions, ``-c constraints.txt``): no network, and seconds per venv because uv links files from
its cache. What each extra must make work:

* none: the CLI (``--version``), the core and the python-domino ``compat.Domino``; an integration
  import names its missing extra;
* ``sandbox``: the local Domino serves, and the installed ``domino-orchestrate`` console script runs
  a job against it;
* ``lineage``: OpenLineage observers are built when ``OPENLINEAGE_URL`` is set;
* ``mlflow``: the client-only ``mlflow-skinny`` (not the 600 MB ``mlflow``) runs the in-job helper;
* ``store`` / ``postgres``: the lineage store opens (SQLite; the PostgreSQL driver and dialect);
* ``airflow``: Airflow's ProvidersManager finds the provider, its version and documentation URL;
* ``prefect``: Prefect's own collection loader (``prefect.collections`` entry point) loads ours;
* ``dagster``: a ``Definitions`` with a Domino asset and resource validates as loadable.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UV = Path(sys.executable).with_name("uv")
DOCS_URL = "https://domino-orchestrate.github.io/domino-orchestrate/"

pytestmark = [pytest.mark.timeout(300), pytest.mark.xdist_group("audit-wheel")]

#: What the test program asserts in each venv (``VENV`` is the venv's folder, ``WORK`` a scratch
#: folder); it prints ``OK`` last. Every program also checks the package came from the venv.
SMOKE: dict[str, str] = {
    "": """
        import subprocess, domino_orchestrate
        from domino_orchestrate.compat import Domino
        from domino_orchestrate.core import DominoClient, JobSpec
        done = subprocess.run([f"{VENV}/bin/domino-orchestrate", "--version"],
                              capture_output=True, text=True)
        assert done.stdout == f"domino-orchestrate {domino_orchestrate.__version__}\\n", done
        for extra in ("airflow", "prefect", "dagster"):
            try:
                __import__(f"domino_orchestrate.{extra}")
            except ModuleNotFoundError as exc:
                assert f"pip install 'domino-orchestrate[{extra}]'" in str(exc), exc
            else:
                raise AssertionError(f"{extra} imported without its extra")
    """,
    "sandbox": """
        import subprocess
        from pathlib import Path
        from domino_orchestrate.sandbox import SandboxServer
        project = Path(WORK) / "project"
        project.mkdir()
        with SandboxServer(projects={"demo/quick-start": project}, api_key="wheel-key-0123456789") as srv:
            env = {"PATH": os.environ["PATH"], "DOMINO_API_HOST": srv.url,
                   "DOMINO_USER_API_KEY": srv.api_key, "DOMINO_PROJECT": "demo/quick-start"}
            done = subprocess.run([f"{VENV}/bin/domino-orchestrate", "run", "--poll-freq", "0.2",
                                   "echo from-the-wheel"], capture_output=True, text=True, env=env,
                                  timeout=120)
        assert done.returncode == 0, done.stderr
        assert "from-the-wheel" in done.stdout + done.stderr, done
    """,
    "lineage": """
        os.environ["OPENLINEAGE_URL"] = "http://127.0.0.1:9"
        import openlineage.client
        from domino_orchestrate.core.lineage import LineageInfo, lineage_observers
        observers = lineage_observers(LineageInfo("cli", "train", ("k",)), None)
        assert observers, "no OpenLineage observer with OPENLINEAGE_URL set"
    """,
    "mlflow": """
        from importlib.metadata import PackageNotFoundError, distribution
        assert distribution("mlflow-skinny")
        try:
            distribution("mlflow")
        except PackageNotFoundError:
            pass
        else:
            raise AssertionError("the [mlflow] extra pulled the full mlflow")
        import mlflow
        from domino_orchestrate.injob import mlflow_run
        os.environ["DOMINO_RUN_ID"] = "wheel-job-1"
        # a file store keeps this offline (users point at a tracking server; MLflow 3 asks
        # file-store users to opt in)
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        with mlflow_run(tracking_uri=f"file://{WORK}/mlruns", experiment="wheel", wait_s=0):
            mlflow.log_metric("auc", 0.91)
        [run] = mlflow.search_runs(experiment_names=["wheel"], output_format="list")
        assert run.data.metrics == {"auc": 0.91}, run.data
    """,
    "store": """
        from domino_orchestrate.trace import LineageStore
        with LineageStore(f"{WORK}/lineage.db") as store:
            assert store.recent() == [] and store.count()["runs"] == 0, store.count()
    """,
    "postgres": """
        import psycopg, sqlalchemy
        from domino_orchestrate.trace import LineageStore
        engine = sqlalchemy.create_engine("postgresql+psycopg://u:p@127.0.0.1:9/db")
        assert engine.dialect.driver == "psycopg"
        with LineageStore(f"{WORK}/lineage.db") as store:
            assert store.recent() == []
    """,
    "airflow": """
        os.environ["AIRFLOW_HOME"] = f"{WORK}/airflow"
        from airflow.providers_manager import ProvidersManager
        from domino_orchestrate import __version__
        from domino_orchestrate.airflow import DominoJobOperator
        info = ProvidersManager().providers["domino-orchestrate"]
        assert info.version == __version__, info
        assert info.data["documentation-url"] == DOCS_URL, info.data
        assert "domino" in ProvidersManager().hooks, "the Domino connection type is not listed"
    """,
    "prefect": """
        os.environ["PREFECT_HOME"] = f"{WORK}/prefect"
        from prefect.plugins import load_prefect_collections
        collections = load_prefect_collections()
        assert "domino_orchestrate" in collections, collections
        from prefect.blocks.core import Block
        assert Block.get_block_class_from_key("domino-credentials").__module__.startswith(
            "domino_orchestrate.prefect")
    """,
    "dagster": """
        os.environ["DAGSTER_HOME"] = WORK
        from dagster import Definitions
        from domino_orchestrate.dagster import DominoResource, domino_job_asset
        defs = Definitions(assets=[domino_job_asset("report", "python report.py")],
                           resources={"domino": DominoResource(host="https://domino.example.com",
                                                               project="a/b", api_key="k" * 12)})
        Definitions.validate_loadable(defs)
        assert defs.resolve_asset_graph().get_all_asset_keys()
    """,
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([str(UV), "build", "--wheel", "-q", "--out-dir", str(out), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    (built,) = out.glob("domino_orchestrate-*.whl")
    return built


def _fresh_env(work: Path) -> dict[str, str]:
    """The environment of a new shell: none of this checkout's paths or Domino settings."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "UV_CACHE_DIR", "XDG_CACHE_HOME")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    return {**env, "PYTHONNOUSERSITE": "1", "TMPDIR": str(work)}


@pytest.mark.parametrize("extra", list(SMOKE), ids=lambda e: e or "no-extra")
def test_the_wheel_installs_alone_with_each_extra_and_works(wheel: Path, tmp_path: Path,
                                                             extra: str) -> None:
    venv, work = tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    env = _fresh_env(work)
    subprocess.run([str(UV), "venv", "-q", "--python", sys.executable, str(venv)], check=True,
                   capture_output=True, env=env, timeout=120)
    python = venv / "bin" / "python"
    requirement = f"domino-orchestrate[{extra}] @ {wheel.as_uri()}" if extra else str(wheel)
    installed = subprocess.run(
        [str(UV), "pip", "install", "-q", "--offline", "--python", str(python),
         "-c", str(ROOT / "constraints.txt"), requirement],
        capture_output=True, text=True, env=env, timeout=240)
    assert installed.returncode == 0, installed.stderr[-3000:]
    checked = subprocess.run([str(UV), "pip", "check", "--python", str(python)],
                             capture_output=True, text=True, env=env, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    program = (f"import os, sys\nVENV, WORK, DOCS_URL = {str(venv)!r}, {str(work)!r}, "
               f"{DOCS_URL!r}\n"
               "import domino_orchestrate\n"
               "assert domino_orchestrate.__file__.startswith(VENV), domino_orchestrate.__file__\n"
               + textwrap.dedent(SMOKE[extra]) + "\nprint('OK')\n")
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run([str(python), "-c", program], cwd=work, capture_output=True, text=True,
                          env=env, timeout=240)
    assert done.returncode == 0 and done.stdout.strip().endswith("OK"), (
        f"[{extra}] {done.stdout[-2000:]}\n{done.stderr[-4000:]}")
