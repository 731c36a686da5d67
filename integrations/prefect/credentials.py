"""``DominoCredentials``: the Prefect block holding where Domino is and how to authenticate.

Register it with ``prefect block register -m domino_orchestrate.prefect``. Every field is optional:
what is left empty falls back to the Domino environment variables (``DOMINO_API_HOST``,
``DOMINO_USER_API_KEY``, ``DOMINO_TOKEN_FILE``, ``DOMINO_API_PROXY``), exactly as python-domino
does. Secrets are ``SecretStr`` fields: Prefect stores them encrypted and never shows them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from prefect.blocks.abstract import CredentialsBlock
from prefect.blocks.core import schema_extra as _block_schema_extra
from pydantic import ConfigDict, Field, SecretStr

from domino_orchestrate.core import DominoConfig

if TYPE_CHECKING:
    from domino_orchestrate.core import AsyncDominoClient, DominoClient

__all__ = ["DominoCredentials"]


def _closed_schema(schema: dict[str, Any], model: type[Any]) -> None:
    _block_schema_extra(schema, model)  # type: ignore[arg-type]
    # Prefect checks a flow parameter against oneOf[this schema, {"$ref": saved block}]. With
    # every field optional this schema also matched the reference (the UI's "select block"), so
    # the server rejected it as ambiguous: an inline block never carries "$ref".
    schema["not"] = {"required": ["$ref"]}


class DominoCredentials(CredentialsBlock):
    """Connection to a Domino deployment (host, credentials, default project).

    Example:
        ```python
        from domino_orchestrate.prefect import DominoCredentials

        creds = DominoCredentials(host="https://domino.example.com", api_key="…",
                                  project="alice/churn")
        creds.save("domino")                    # once
        client = DominoCredentials.load("domino").get_client()
        ```
    """

    model_config = ConfigDict(extra="allow", json_schema_extra=_closed_schema)

    _block_type_name = "Domino Credentials"
    _block_type_slug = "domino-credentials"
    _logo_url = "https://www.dominodatalab.com/favicon.ico"  # type: ignore[assignment]
    _documentation_url = "https://docs.dominodatalab.com/en/latest/api_guide/"  # type: ignore[assignment]
    _description = (
        "Host, credentials and default project of a Domino Data Lab deployment. Empty fields "
        "fall back to DOMINO_API_HOST, DOMINO_USER_API_KEY, DOMINO_TOKEN_FILE, DOMINO_API_PROXY."
    )

    host: str | None = Field(
        default=None, description="Domino URL, e.g. https://domino.example.com (DOMINO_API_HOST)."
    )
    # Optional[...], not "X | None": Prefect 3.4 and older look for secret fields only inside
    # typing.Union, and would show a "SecretStr | None" key in the UI and block documents.
    api_key: Optional[SecretStr] = Field(  # noqa: UP045
        default=None, description="Domino user API key (DOMINO_USER_API_KEY)."
    )
    auth_token: Optional[SecretStr] = Field(  # noqa: UP045
        default=None, description="A bearer token; takes precedence over the API key."
    )
    domino_token_file: str | None = Field(
        default=None,
        description="Path of a file holding a short-lived token, re-read on every request "
        "(DOMINO_TOKEN_FILE; set inside Domino).",
    )
    api_proxy: str | None = Field(
        default=None,
        description="Address of the Domino API proxy sidecar, which injects credentials "
        "(DOMINO_API_PROXY).",
    )
    verify: bool | str | None = Field(
        default=None,
        description="Verify TLS certificates: true, false, or the path of a CA bundle (PEM) for a "
        "private CA; empty follows DOMINO_VERIFY_CERTIFICATE (default on).",
    )
    project: str | None = Field(
        default=None, description="Default project as 'owner/name'; tasks may override it."
    )
    max_retries: int | None = Field(
        default=None, description="Retries of a failed HTTP request (DOMINO_MAX_RETRIES, default 4)."
    )
    timeout: float = Field(default=30.0, description="Timeout of one HTTP request, seconds.")

    def get_config(self, project: str | None = None) -> DominoConfig:
        """The core configuration; ``project`` overrides the block's default project."""
        return DominoConfig.resolve(
            self.host,
            project or self.project,
            api_key=self.api_key.get_secret_value() if self.api_key else None,
            auth_token=self.auth_token.get_secret_value() if self.auth_token else None,
            domino_token_file=self.domino_token_file,
            api_proxy=self.api_proxy,
            verify=self.verify,
            max_retries=self.max_retries,
            timeout=self.timeout,
        )

    def get_client(self, project: str | None = None, **kwargs: Any) -> DominoClient:
        """A synchronous ``DominoClient``; close it (or use ``with``) when done."""
        from domino_orchestrate.core import DominoClient

        return DominoClient(config=self.get_config(project), **kwargs)

    def get_async_client(self, project: str | None = None, **kwargs: Any) -> AsyncDominoClient:
        """An ``AsyncDominoClient``; ``await client.aclose()`` (or ``async with``) when done."""
        from domino_orchestrate.core import AsyncDominoClient

        return AsyncDominoClient(config=self.get_config(project), **kwargs)
