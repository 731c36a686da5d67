"""Lineage settings read from the environment: is lineage on, where it goes, how things are named.

What lives here: the environment variable names, the "is OpenLineage configured at all?" test
(so that an unconfigured install emits nothing and prints nothing), the Databand and MLflow
switches, the spool directory and the job namespace. Pure functions of ``env`` and ``cwd``; no
``openlineage`` or ``mlflow`` import, so integrations may import this while parsing DAG files.

What must not live here: event building (``events.py``), sending (``transports.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DATABAND_TOKEN_ENV",
    "DATABAND_URL_ENV",
    "LINEAGE_ENV_SWITCH",
    "MLFLOW_EXPERIMENT_ENV",
    "MLFLOW_SWITCH_ENV",
    "MLFLOW_URI_ENV",
    "NAMESPACE_ENV",
    "SPOOL_ENV",
    "STORE_ENV",
    "LineageSettings",
    "job_namespace",
    "mlflow_experiment_name",
    "openlineage_configured",
    "register_client_config",
]

NAMESPACE_ENV = "OPENLINEAGE_NAMESPACE"
DATABAND_URL_ENV = "DOMINO_ORCHESTRATE_DATABAND_URL"
#: The lineage store (``domino_orchestrate.trace``): a path or SQLAlchemy URL; when set, job
#: events are also written there (``lineage recent``/``trace``/… read it).
STORE_ENV = "DOMINO_ORCHESTRATE_LINEAGE_STORE"
DATABAND_TOKEN_ENV = "DOMINO_ORCHESTRATE_DATABAND_TOKEN"
SPOOL_ENV = "DOMINO_ORCHESTRATE_LINEAGE_SPOOL"
MLFLOW_URI_ENV = "DOMINO_ORCHESTRATE_MLFLOW_TRACKING_URI"
MLFLOW_SWITCH_ENV = "DOMINO_ORCHESTRATE_MLFLOW"
MLFLOW_EXPERIMENT_ENV = "DOMINO_ORCHESTRATE_MLFLOW_EXPERIMENT"
DEFAULT_MLFLOW_EXPERIMENT = "domino-orchestrate"
#: Opt-in: prefix the job command with ``export OPENLINEAGE_PARENT_ID=…;`` (off by default: the
#: user's command reaches Domino as written; the job derives its links from ``DOMINO_RUN_ID``).
LINEAGE_ENV_SWITCH = "DOMINO_ORCHESTRATE_LINEAGE_ENV"
_TRUE = {"1", "true", "yes", "on", "y", "t"}


def _openlineage_config_file(env: Mapping[str, str], cwd: Path) -> Path | None:
    """The openlineage.yml that openlineage-python would read (same search order)."""
    candidates = [
        env.get("OPENLINEAGE_CONFIG"),
        str(cwd / "openlineage.yml"),
        str(Path(env.get("HOME") or Path.home()) / ".openlineage" / "openlineage.yml"),
    ]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate):
            return Path(candidate)
    return None


def openlineage_configured(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> bool:
    """True when the user configured OpenLineage delivery in any of the usual ways.

    openlineage-python falls back to printing events on the console (with a warning) when
    nothing is configured; we treat "nothing configured" as "lineage off" instead.
    ``OPENLINEAGE_DISABLED=true`` turns everything off, as in openlineage-python.
    """
    env = os.environ if env is None else env
    if env.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return False
    if env.get(DATABAND_URL_ENV) or env.get("OPENLINEAGE_URL") or env.get(STORE_ENV):
        return True
    if any(key.startswith("OPENLINEAGE__TRANSPORT") for key in env):
        return True
    return _openlineage_config_file(env, cwd or Path.cwd()) is not None


def _uses_openlineage_client_config(env: Mapping[str, str], cwd: Path) -> bool:
    """True when openlineage-python's own configuration (file or env) names a transport."""
    if env.get("OPENLINEAGE_URL") or any(k.startswith("OPENLINEAGE__TRANSPORT") for k in env):
        return True
    return _openlineage_config_file(env, cwd) is not None


def _client_config_key(env: Mapping[str, str], cwd: Path) -> str:
    import hashlib

    parts = sorted(f"{k}={v}" for k, v in env.items() if k.startswith("OPENLINEAGE"))
    path = _openlineage_config_file(env, cwd)
    if path is not None:
        try:
            parts.append(f"{path}:{path.stat().st_mtime_ns}")
        except OSError:
            parts.append(str(path))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


#: Sources of an openlineage-python client configuration other than its own file/env, e.g. the
#: Airflow provider's ``[openlineage]`` section (registered by the Airflow integration).
_client_config_sources: list[Callable[[], Mapping[str, Any] | None]] = []


def register_client_config(source: Callable[[], Mapping[str, Any] | None]) -> None:
    """Add a source of openlineage-python client configuration (``{"transport": {...}}``).

    An orchestrator integration registers how *its* users configure OpenLineage (Airflow:
    ``[openlineage] transport`` / ``config_path`` / ``config_conn_id``), so Domino-job events go
    wherever the orchestrator's own events go. The first source returning a configuration with a
    ``transport`` wins over openlineage-python's file/env lookup; sources must not raise.
    """
    if source not in _client_config_sources:
        _client_config_sources.append(source)


def _registered_client_config() -> dict[str, Any] | None:
    for source in list(_client_config_sources):
        try:
            found = source()
        except Exception:
            continue
        if found and isinstance(found, Mapping) and found.get("transport"):
            return dict(found)
    return None


def _digest(config: Mapping[str, Any]) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def _default_spool_dir(env: Mapping[str, str]) -> Path:
    if env.get(SPOOL_ENV):
        return Path(env[SPOOL_ENV]).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "domino-orchestrate" / "lineage-spool"


def mlflow_experiment_name(name: str, tracking_uri: str | None) -> str:
    """The experiment name as the tracking server wants it: Databricks-hosted MLflow names
    experiments by absolute workspace path (``/Shared/…``, ``/Users/…``), a bare name fails."""
    databricks = bool(tracking_uri) and str(tracking_uri).split(":", 1)[0] in {
        "databricks", "databricks-uc"}
    return f"/Shared/{name}" if databricks and not name.startswith("/") else name


def job_namespace(config: Any = None, env: Mapping[str, str] | None = None) -> str:
    """The OpenLineage job namespace of Domino jobs.

    ``OPENLINEAGE_NAMESPACE`` when set; else ``domino.<owner>.<project>`` from the Domino config;
    else ``domino``. No ``/`` by default: ``OPENLINEAGE_PARENT_ID`` is ``namespace/name/run_id``
    and readers (dbt-ol, Spark) split it on ``/``.
    """
    env = os.environ if env is None else env
    if env.get(NAMESPACE_ENV):
        return env[NAMESPACE_ENV]
    project = getattr(config, "project", None)
    if isinstance(project, str) and "/" in project:
        owner, _, name = project.partition("/")
        return f"domino.{owner}.{name}"
    return "domino"


@dataclass(frozen=True)
class LineageSettings:
    """Everything lineage reads from the environment, resolved once. Secrets hidden from repr."""

    openlineage: bool = False
    #: openlineage-python's own config (openlineage.yml, OPENLINEAGE_URL, OPENLINEAGE__TRANSPORT__*)
    openlineage_client: bool = False
    databand_url: str | None = None
    #: The lineage store to write to (``STORE_ENV``); may hold a database password.
    store: str | None = field(default=None, repr=False)
    databand_token: str | None = field(default=None, repr=False)
    spool_dir: Path = field(default_factory=lambda: _default_spool_dir(os.environ))
    mlflow_tracking_uri: str | None = None
    mlflow_experiment: str = DEFAULT_MLFLOW_EXPERIMENT
    #: ``lineage_env()`` returns variables only when the user opted in (``LINEAGE_ENV_SWITCH``).
    inject_env: bool = False
    #: Seconds a destination is skipped (events go straight to the spool) after a failure.
    cooldown_s: float = 30.0
    #: Per-request timeout for our own HTTP transports.
    timeout_s: float = 5.0
    #: Changes whenever openlineage-python's configuration (file or env) changes.
    client_config_key: str = field(default="", repr=False)
    #: An explicit openlineage-python client configuration (``register_client_config``).
    client_config: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> LineageSettings:
        """Read the settings from ``env`` (default ``os.environ``), resolving defaults once.

        ``cwd`` is where an ``openlineage.yml`` is looked for (default: the current directory).
        """
        env = os.environ if env is None else env
        cwd = cwd or Path.cwd()
        disabled = env.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true"
        client_config = None if disabled else _registered_client_config()
        enabled = client_config is not None or openlineage_configured(env, cwd)
        mlflow_uri = env.get(MLFLOW_URI_ENV) or None
        if not mlflow_uri and env.get(MLFLOW_SWITCH_ENV, "").strip().lower() in _TRUE:
            mlflow_uri = env.get("MLFLOW_TRACKING_URI") or None
        return cls(
            openlineage=enabled,
            openlineage_client=client_config is not None
            or (enabled and _uses_openlineage_client_config(env, cwd)),
            databand_url=(env.get(DATABAND_URL_ENV) or None) if enabled else None,
            store=(env.get(STORE_ENV) or None) if enabled else None,
            databand_token=env.get(DATABAND_TOKEN_ENV) or None,
            spool_dir=_default_spool_dir(env),
            mlflow_tracking_uri=mlflow_uri,
            mlflow_experiment=mlflow_experiment_name(
                env.get(MLFLOW_EXPERIMENT_ENV) or DEFAULT_MLFLOW_EXPERIMENT, mlflow_uri),
            inject_env=env.get(LINEAGE_ENV_SWITCH, "").strip().lower() in _TRUE,
            client_config_key=_client_config_key(env, cwd) + (
                "" if client_config is None else _digest(client_config)),
            client_config=client_config,
        )

    def fingerprint(self) -> tuple[Any, ...]:
        """Identity of the delivery setup, for caching emitters per configuration."""
        return (
            self.openlineage, self.openlineage_client, self.databand_url, self.store,
            hash(self.databand_token), str(self.spool_dir), self.cooldown_s, self.timeout_s,
            self.client_config_key,
        )
