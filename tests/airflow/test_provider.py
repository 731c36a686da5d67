"""Provider registration, connection form, hook configuration and the cost of importing the package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_provider_info_validates_against_airflows_schema() -> None:
    import airflow
    import jsonschema

    from domino_orchestrate.airflow.provider import get_provider_info

    info = get_provider_info()
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(info, schema)
    assert info["package-name"] == "domino-orchestrate"
    assert info["connection-types"][0]["connection-type"] == "domino"
    assert info["connection-types"][0]["hook-class-name"] == "domino_orchestrate.airflow.hooks.DominoHook"
    assert info["extra-links"] == ["domino_orchestrate.airflow.links.DominoJobLink"]
    for section in ("hooks", "operators", "sensors", "triggers"):
        for module in info[section][0]["python-modules"]:
            __import__(module)  # every listed module imports


def test_providers_manager_discovers_the_provider() -> None:
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    assert "domino-orchestrate" in pm.providers
    assert "domino" in pm.hooks
    hook = pm.hooks["domino"]
    assert hook is not None and hook.hook_class_name.endswith("DominoHook")
    assert "domino_orchestrate.airflow.links.DominoJobLink" in pm.extra_links_class_names
    widgets = pm.connection_form_widgets
    assert {"extra__domino__project", "extra__domino__auth_token", "extra__domino__token_file",
            "extra__domino__api_proxy", "extra__domino__verify",
            "extra__domino__ca_bundle"} <= set(widgets)
    behaviour = pm.field_behaviours["domino"]
    assert behaviour["relabeling"]["password"] == "API key"
    assert "login" in behaviour["hidden_fields"]


def test_hook_form_methods_match_the_declarative_form() -> None:
    from domino_orchestrate.airflow.hooks import DominoHook
    from domino_orchestrate.airflow.provider import CONN_FIELDS

    behaviour = DominoHook.get_ui_field_behaviour()
    assert behaviour["relabeling"] == {"host": "Domino URL", "password": "API key"}
    assert set(CONN_FIELDS) == {"project", "auth_token", "token_file", "api_proxy", "verify",
                                "ca_bundle"}
    assert isinstance(DominoHook.get_connection_form_widgets(), dict)


def _conn(monkeypatch: pytest.MonkeyPatch, **fields: Any) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_DOMINO_DEFAULT", json.dumps({"conn_type": "domino", **fields}))


def test_hook_builds_config_from_json_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    from domino_orchestrate.airflow.hooks import DominoHook

    for name in ("DOMINO_API_HOST", "DOMINO_USER_API_KEY", "DOMINO_TOKEN_FILE", "DOMINO_API_PROXY"):
        monkeypatch.delenv(name, raising=False)
    _conn(monkeypatch, host="https://domino.example.com", password="s3cr3t-key-123",
          extra={"project": "alice/churn", "verify": "false"})
    hook = DominoHook()
    config = hook.config
    assert config.host == "https://domino.example.com"
    assert config.project == "alice/churn"
    assert config.verify is False
    assert config.credentials.kind == "api_key"
    assert config.credentials.api_key == "s3cr3t-key-123"
    assert "s3cr3t" not in repr(config) and "s3cr3t" not in repr(hook.client)
    # operator-level project overrides the extra
    assert DominoHook(project="bob/other").config.project == "bob/other"


def test_hook_token_file_and_proxy_extras(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from domino_orchestrate.airflow.hooks import DominoHook

    token = tmp_path / "token"
    token.write_text("tok-abc\n")
    _conn(monkeypatch, host="domino.example.com", extra={"extra__domino__token_file": str(token),
                                                          "project": "a/b"})
    config = DominoHook().config
    assert config.credentials.kind == "token_file" and config.credentials.token_file == str(token)
    assert config.host == "https://domino.example.com"
    _conn(monkeypatch, extra={"api_proxy": "http://localhost:8899", "project": "a/b"})
    config = DominoHook().config
    assert config.credentials.kind == "proxy" and config.api_proxy == "http://localhost:8899"


def test_hook_ca_bundle_extra_is_the_verify_path(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    """A private CA: the connection's ca_bundle reaches the core as ``verify``; a bundle with
    verify=false, or one that does not exist, is one clear error naming what to fix."""
    from domino_orchestrate.airflow.hooks import DominoHook
    from domino_orchestrate.core import ConfigurationError

    for name in ("DOMINO_API_HOST", "DOMINO_USER_API_KEY", "DOMINO_TOKEN_FILE", "DOMINO_API_PROXY",
                 "DOMINO_VERIFY_CERTIFICATE"):
        monkeypatch.delenv(name, raising=False)
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    _conn(monkeypatch, host="https://domino.example.com", password="k",
          extra={"project": "a/b", "ca_bundle": str(bundle)})
    assert DominoHook().config.verify == str(bundle)
    _conn(monkeypatch, host="https://domino.example.com", password="k",
          extra={"project": "a/b", "ca_bundle": str(bundle), "verify": "false"})
    with pytest.raises(ConfigurationError, match="cannot be combined with verify=false"):
        _ = DominoHook().config
    _conn(monkeypatch, host="https://domino.example.com", password="k",
          extra={"project": "a/b", "extra__domino__ca_bundle": str(tmp_path / "missing.pem")})
    with pytest.raises(ConfigurationError, match="does not exist"):
        _ = DominoHook().config


def test_hook_falls_back_to_domino_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    from domino_orchestrate.airflow.hooks import DominoHook

    monkeypatch.delenv("AIRFLOW_CONN_DOMINO_DEFAULT", raising=False)
    monkeypatch.setenv("DOMINO_API_HOST", "https://env-domino.example.com")
    monkeypatch.setenv("DOMINO_USER_API_KEY", "env-key-456")
    monkeypatch.setenv("DOMINO_PROJECT", "env/project")
    config = DominoHook("domino_missing_conn").config
    assert config.host == "https://env-domino.example.com"
    assert config.credentials.api_key == "env-key-456"
    assert config.project == "env/project"
    # a connection that lacks the key falls back to the env key
    _conn(monkeypatch, host="https://conn-domino.example.com")
    config = DominoHook().config
    assert config.host == "https://conn-domino.example.com"
    assert config.credentials.api_key == "env-key-456"


def test_test_connection_against_sandbox(domino_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from domino_orchestrate.airflow.hooks import DominoHook

    ok, message = DominoHook().test_connection()
    assert ok, message
    assert "quick-start" in message and domino_conn.url in message
    _conn(monkeypatch, host=domino_conn.url, password="wrong-key-789",
          extra={"project": "demo/quick-start"})
    ok, message = DominoHook().test_connection()
    assert not ok and "wrong-key-789" not in message
    _conn(monkeypatch, host=domino_conn.url, password=domino_conn.api_key,
          extra={"project": "demo/no-such-project"})
    ok, message = DominoHook().test_connection()
    assert not ok and "no-such-project" in message


def test_importing_the_package_is_cheap() -> None:
    code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "from domino_orchestrate.airflow import DominoJobOperator, DominoRunOperator, DominoJobSensor\n"
        "import domino_orchestrate.airflow\n"
        "bad = [m for m in ('tenacity', 'httpx', 'requests', 'openlineage', 'domino_orchestrate.core.client')"
        " if m in sys.modules and m not in before]\n"
        "print(bad)\n"
    )
    # Airflow itself may load httpx/requests: measure what *our* import adds on top of airflow.sdk.
    prelude = "import sys\nimport airflow.sdk\nfrom airflow.sdk import BaseOperator, BaseSensorOperator\nbefore = set(sys.modules)\n"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
    bare = subprocess.run(
        [sys.executable, "-c", "import sys, domino_orchestrate.airflow as m; "
         "print(sorted(x for x in ('airflow', 'tenacity', 'httpx', 'requests') if x in sys.modules))"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
    )
    assert bare.stdout.strip().splitlines()[-1] == "[]"  # the package itself imports nothing heavy
