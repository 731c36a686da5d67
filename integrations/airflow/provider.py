"""Airflow provider registration: ``get_provider_info()`` (entry point ``apache_airflow_provider``).

Airflow calls this while discovering providers, so it must import nothing heavy (not even Airflow).
It lists the connection type ``domino`` with its hook, the operators, sensor, trigger and the
"Domino job" extra link, so the UI connection form and ``airflow providers list`` know them.
Airflow takes the provider's documentation URL (``documentation-url``) from the distribution's
``Project-URL: Documentation`` (``[project.urls]`` in pyproject.toml), not from this dict.
"""

from __future__ import annotations

from typing import Any

__all__ = ["get_provider_info"]

INTEGRATION = "Domino Data Lab"

#: Extra fields of the ``domino`` connection form (declarative form, Airflow >= 3.2).
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "project": {
        "label": "Project (owner/name)",
        "schema": {"type": ["string", "null"]},
        "description": "Default Domino project; an operator's project= overrides it.",
    },
    "auth_token": {
        "label": "Auth token",
        "schema": {"type": ["string", "null"]},
        "description": "A Domino bearer token (python-domino's auth_token); used instead of the "
        "token file and the API key.",
    },
    "token_file": {
        "label": "Token file",
        "schema": {"type": ["string", "null"]},
        "description": "Path of a Domino token file (DOMINO_TOKEN_FILE); re-read on every request.",
    },
    "api_proxy": {
        "label": "API proxy",
        "schema": {"type": ["string", "null"]},
        "description": "Domino API proxy URL (DOMINO_API_PROXY), e.g. http://localhost:8899.",
    },
    "verify": {
        "label": "Verify TLS certificates",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
    "ca_bundle": {
        "label": "CA bundle",
        "schema": {"type": ["string", "null"]},
        "description": "Path of a PEM file (or directory) with the CA that signed Domino's "
        "certificate, for a private CA. Needs Verify TLS certificates on.",
    },
}

#: Standard fields: host and the API key in the password field; the rest hidden.
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port", "login"],
    "relabeling": {"host": "Domino URL", "password": "API key"},
    "placeholders": {
        "host": "https://domino.example.com",
        "password": "Domino user API key (or leave empty and use a token file / proxy)",
        "project": "owner/project",
        "token_file": "/var/lib/domino/home/.api/token",
        "api_proxy": "http://localhost:8899",
        "ca_bundle": "/etc/ssl/certs/domino-ca.pem",
    },
}
_PKG = "domino_orchestrate.airflow"


def _version() -> str:
    # The one version string (pyproject reads it from here too); importing the top package is cheap.
    from domino_orchestrate import __version__

    return __version__


def get_provider_info() -> dict[str, Any]:
    """The provider metadata Airflow validates against ``provider_info.schema.json``."""
    return {
        "package-name": "domino-orchestrate",
        "name": "Domino Data Lab",
        "description": "Run Domino Data Lab jobs and runs from Airflow: live stdout in the task log, "
        "kill-safe, retry-safe (no duplicate jobs), deferrable, with lineage.",
        "versions": [_version()],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://docs.dominodatalab.com/",
                "tags": ["service"],
            }
        ],
        "connection-types": [
            {
                "connection-type": "domino",
                "hook-class-name": f"{_PKG}.hooks.DominoHook",
                "hook-name": "Domino",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
        "hooks": [{"integration-name": INTEGRATION, "python-modules": [f"{_PKG}.hooks"]}],
        "operators": [{"integration-name": INTEGRATION, "python-modules": [f"{_PKG}.operators"]}],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": [f"{_PKG}.sensors"]}],
        "triggers": [{"integration-name": INTEGRATION, "python-modules": [f"{_PKG}.triggers"]}],
        "extra-links": [f"{_PKG}.links.DominoJobLink"],
    }
