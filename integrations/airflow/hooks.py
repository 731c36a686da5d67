"""``DominoHook``: the ``domino`` Airflow connection → core ``DominoConfig`` and (lazy) clients.

Connection fields: host = Domino URL, password = API key; extras ``project``, ``auth_token`` (a
bearer token, python-domino's ``auth_token``: it wins over the token file and the API key),
``token_file``, ``api_proxy``, ``verify`` (true/false), ``ca_bundle`` (CA bundle path for a private
CA; plain keys or the ``extra__domino__*`` form). Anything the connection
lacks, or the whole connection when it does not exist, falls back to the Domino environment
variables (``DOMINO_API_HOST``, ``DOMINO_USER_API_KEY``, ``DOMINO_TOKEN_FILE``,
``DOMINO_API_PROXY``, ``DOMINO_PROJECT``). The HTTP clients (requests/httpx) are imported only
when first used.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

from domino_orchestrate.core.config import DominoConfig
from domino_orchestrate.core.errors import ConfigurationError, DominoError

try:
    from airflow.sdk import BaseHook
except ImportError:  # pragma: no cover - Airflow 2.x
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]

from .provider import CONN_FIELDS, UI_FIELD_BEHAVIOUR

if TYPE_CHECKING:
    from domino_orchestrate.core.client import AsyncDominoClient, DominoClient

__all__ = ["DominoHook"]

_FALSEY = {"false", "f", "n", "no", "0", "off"}


def _as_bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in _FALSEY


class DominoHook(BaseHook):
    """Connect to Domino through an Airflow connection of type ``domino``.

    :param domino_conn_id: the connection id (default ``domino_default``).
    :param project: ``owner/name``; overrides the connection's ``project`` extra.
    """

    conn_name_attr = "domino_conn_id"
    default_conn_name = "domino_default"
    conn_type = "domino"
    hook_name = "Domino"

    def __init__(self, domino_conn_id: str = default_conn_name, project: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.domino_conn_id = domino_conn_id
        self.project = project

    # --- connection form (Airflow < 3.2 reads these; newer Airflow reads provider info) -------
    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form's relabelled, hidden and placeholder fields (Airflow's classic hook API)."""
        return {
            "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
            "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
            "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
        }

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """wtforms widgets for the classic UI; empty when flask-appbuilder/wtforms are absent."""
        try:
            from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
            from flask_babel import lazy_gettext
            from wtforms import BooleanField, StringField
        except ImportError:
            return {}
        widgets: dict[str, Any] = {}
        for name, spec in CONN_FIELDS.items():
            label = lazy_gettext(spec["label"])
            if "boolean" in spec["schema"]["type"]:
                widgets[name] = BooleanField(label, default=spec["schema"].get("default", False))
            else:
                widgets[name] = StringField(label, widget=BS3TextFieldWidget(),
                                            description=spec.get("description", ""))
        return widgets

    # --- configuration -----------------------------------------------------------------------
    def _connection(self) -> Any | None:
        try:
            return self.get_connection(self.domino_conn_id)
        except Exception as exc:  # AirflowNotFoundException and friends: fall back to env
            if type(exc).__name__ not in {"AirflowNotFoundException", "AirflowRuntimeError"}:
                raise
            self.log.info("Connection %r not found; using the Domino environment variables",
                          self.domino_conn_id)
            return None

    def config_from_connection(self, conn: Any | None) -> DominoConfig:
        """Build the core config from a connection object (or None: env vars only)."""
        extras: dict[str, Any] = dict(conn.extra_dejson) if conn is not None else {}

        def extra(name: str) -> Any:
            value = extras.get(name)
            if value in (None, ""):
                value = extras.get(f"extra__domino__{name}")
            return None if value in (None, "") else value

        host = None
        api_key = None
        if conn is not None:
            host = conn.host or None
            if host and "://" not in host and conn.schema in {"http", "https"}:
                host = f"{conn.schema}://{host}"
            if host and conn.port and host.count(":") < 2:
                host = f"{host.rstrip('/')}:{conn.port}"
            api_key = conn.password or None
        project = self.project or extra("project") or os.environ.get("DOMINO_PROJECT") or None
        verify: bool | str | None = _as_bool(extra("verify"))
        ca_bundle = extra("ca_bundle")
        if ca_bundle is not None:
            if verify is False:
                raise ConfigurationError(
                    f"Airflow connection {self.domino_conn_id!r}: ca_bundle verifies Domino's "
                    "certificate, so it cannot be combined with verify=false; remove one of them."
                )
            verify = str(ca_bundle)
        return DominoConfig.resolve(
            host=host,
            project=project,
            api_key=api_key,
            auth_token=extra("auth_token"),
            domino_token_file=extra("token_file"),
            api_proxy=extra("api_proxy"),
            verify=verify,
            max_retries=int(extra("max_retries")) if extra("max_retries") is not None else None,
            timeout=float(extra("timeout") or 30.0),
        )

    @cached_property
    def config(self) -> DominoConfig:
        return self.config_from_connection(self._connection())

    async def aget_config(self) -> DominoConfig:
        """The config, reading the connection without blocking an event loop (triggers)."""
        try:
            conn = await self.aget_connection(self.domino_conn_id)
        except Exception as exc:
            if type(exc).__name__ not in {"AirflowNotFoundException", "AirflowRuntimeError"}:
                raise
            conn = None
        return self.config_from_connection(conn)

    @cached_property
    def client(self) -> DominoClient:
        from domino_orchestrate.core.client import DominoClient

        return DominoClient(config=self.config)

    def get_conn(self) -> DominoClient:
        """The synchronous ``DominoClient`` for this connection (Airflow's standard hook method)."""
        return self.client

    def new_client(self) -> DominoClient:
        """A fresh sync client (e.g. for ``on_kill``, which may interrupt the cached one)."""
        from domino_orchestrate.core.client import DominoClient

        return DominoClient(config=self.config)

    def async_client(self, config: DominoConfig | None = None) -> AsyncDominoClient:
        """A new async client (one per event loop; close it with ``await client.aclose()``)."""
        from domino_orchestrate.core.client import AsyncDominoClient

        return AsyncDominoClient(config=config or self.config)

    def test_connection(self) -> tuple[bool, str]:
        """``GET /version``, then look the project up when one is configured."""
        try:
            client = self.client
            version = client.version().get("version", "?")
            message = f"Connected to Domino {version} at {client.config.host}"
            if client.config.project:
                project_id = client.project_id()
                message += f"; project {client.config.project} found (id {project_id})"
            return True, message
        except DominoError as exc:
            return False, f"{type(exc).__name__}: {exc}"
