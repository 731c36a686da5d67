"""Connection settings and credential precedence, exactly as python-domino (domino-api.md §1).

Precedence (§1.2): ``api_proxy``, ``auth_token``, ``domino_token_file``, ``api_key`` arguments,
then env ``DOMINO_API_PROXY``, ``DOMINO_TOKEN_FILE``, ``DOMINO_USER_API_KEY``. If any explicit
credential argument is given, credential env vars are ignored. Two additions python-domino lacks:
a timeout on every request, and a fallback from a rejected token-file token to a configured API key.
Secrets live only in ``Credentials`` whose repr never shows them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigurationError

__all__ = ["REDACTED", "Credentials", "DominoConfig", "redact"]

REDACTED = "***"

_FALSEY = {"false", "f", "n", "no"}  # §1.3: the only values that disable TLS verification
DEFAULT_UI_JOB_URL = "{host}/jobs/{owner}/{project}/{job_id}"


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value in ``text``: a job may echo its own credentials."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def clean_host(url: str, what: str = "host") -> str:
    """Keep ``scheme://netloc`` as python-domino's ``clean_host_url`` does (§1.3)."""
    raw = url.strip()
    if "://" not in raw:
        raw = "http://" + raw if what == "api_proxy" else "https://" + raw
    parts = urlsplit(raw)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigurationError(
            f"Bad {what} URL {url!r}: expected http(s)://host[:port]"
        )
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class Credentials:
    """How each request authenticates. Secret values are hidden from repr and str."""

    kind: str  # "api_key" | "token" | "token_file" | "proxy"
    api_key: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    #: An API key to fall back to when a token-file token is rejected (python-domino #102).
    fallback_api_key: str | None = field(default=None, repr=False)

    def headers(self, *, use_fallback: bool = False) -> dict[str, str]:
        if use_fallback and self.fallback_api_key:
            return {"X-Domino-Api-Key": self.fallback_api_key}
        if self.kind == "api_key" and self.api_key:
            return {"X-Domino-Api-Key": self.api_key}
        if self.kind == "token" and self.token:
            return {"Authorization": f"Bearer {self.token}"}
        if self.kind == "token_file" and self.token_file:
            # Re-read on every request: tokens inside Domino live about 5 minutes (§1.1).
            try:
                lines = Path(self.token_file).read_text().splitlines()
            except OSError as exc:
                raise ConfigurationError(
                    f"Cannot read the Domino token file {self.token_file}: {exc.strerror}"
                ) from None
            token = lines[0].rstrip() if lines else ""
            return {"Authorization": f"Bearer {token}"}
        return {}  # proxy: the sidecar injects credentials itself

    @property
    def can_fall_back(self) -> bool:
        return self.kind == "token_file" and bool(self.fallback_api_key)

    def secrets(self) -> list[str]:
        """Every secret value this object may send; used to scrub text defensively."""
        values = [self.api_key, self.token, self.fallback_api_key]
        return [v for v in values if v and len(v) >= 4]


@dataclass(frozen=True)
class DominoConfig:
    """Where Domino is, how to authenticate, and transport limits. Plain, picklable data."""

    host: str
    credentials: Credentials
    project: str | None = None
    verify: bool = True
    max_retries: int = 4
    timeout: float = 30.0
    api_proxy: str | None = None
    ui_job_url: str = DEFAULT_UI_JOB_URL

    @property
    def base_url(self) -> str:
        """Where requests go: the proxy rewrites scheme and host of every URL (§1.1)."""
        return self.api_proxy or self.host

    @property
    def owner_and_project(self) -> tuple[str, str]:
        if not self.project:
            raise ConfigurationError(
                "No Domino project set: pass project='owner/name' (or --project / "
                "the connection's project extra)."
            )
        return split_project(self.project)

    def job_url(self, job_id: str) -> str:
        owner, project = self.owner_and_project
        return self.ui_job_url.format(host=self.host, owner=owner, project=project, job_id=job_id)

    def with_project(self, project: str | None) -> DominoConfig:
        if project:
            split_project(project)
        return replace(self, project=project)

    @classmethod
    def resolve(
        cls,
        host: str | None = None,
        project: str | None = None,
        *,
        api_key: str | None = None,
        auth_token: str | None = None,
        domino_token_file: str | None = None,
        api_proxy: str | None = None,
        verify: bool | None = None,
        max_retries: int | None = None,
        timeout: float = 30.0,
        ui_job_url: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> DominoConfig:
        """Build a config from arguments, then the Domino environment variables (§1.2, §1.3)."""
        env = os.environ if env is None else env
        explicit = any(v for v in (api_proxy, auth_token, domino_token_file, api_key))
        if explicit:
            credentials, proxy = _explicit_credentials(
                api_proxy, auth_token, domino_token_file, api_key
            )
        else:
            credentials, proxy = _env_credentials(env)
        raw_host = host or env.get("DOMINO_API_HOST")
        if not raw_host and proxy:
            raw_host = proxy
        if not raw_host:
            raise ConfigurationError(
                "No Domino host: pass host='https://your-domino' or set DOMINO_API_HOST."
            )
        if verify is None:
            verify = env.get("DOMINO_VERIFY_CERTIFICATE", "") not in _FALSEY
        if max_retries is None:
            raw = env.get("DOMINO_MAX_RETRIES", "4")
            try:
                max_retries = int(raw)
            except ValueError:
                raise ConfigurationError(
                    f"DOMINO_MAX_RETRIES must be an integer, got {raw!r}"
                ) from None
        if max_retries < 0:
            raise ConfigurationError("max_retries must be >= 0")
        if timeout <= 0:
            raise ConfigurationError("timeout must be > 0 seconds")
        if project:
            split_project(project)
        return cls(
            host=clean_host(raw_host),
            credentials=credentials,
            project=project,
            verify=verify,
            max_retries=max_retries,
            timeout=timeout,
            api_proxy=proxy,
            ui_job_url=ui_job_url or DEFAULT_UI_JOB_URL,
        )


def split_project(project: str) -> tuple[str, str]:
    owner, sep, name = project.partition("/")
    if not sep or not owner or not name or "/" in name:
        raise ConfigurationError(
            f"Domino project must be 'owner/name', got {project!r}"
        )
    return owner, name


def _explicit_credentials(
    api_proxy: str | None, auth_token: str | None, token_file: str | None, api_key: str | None
) -> tuple[Credentials, str | None]:
    if api_proxy:
        return Credentials(kind="proxy"), clean_host(api_proxy, "api_proxy")
    if auth_token:
        return Credentials(kind="token", token=auth_token), None
    if token_file:
        return Credentials(kind="token_file", token_file=token_file, fallback_api_key=api_key), None
    return Credentials(kind="api_key", api_key=api_key), None


def _env_credentials(env: Mapping[str, str]) -> tuple[Credentials, str | None]:
    proxy = env.get("DOMINO_API_PROXY")
    token_file = env.get("DOMINO_TOKEN_FILE")
    api_key = env.get("DOMINO_USER_API_KEY")
    if proxy:
        return Credentials(kind="proxy"), clean_host(proxy, "api_proxy")
    if token_file:
        return Credentials(kind="token_file", token_file=token_file, fallback_api_key=api_key), None
    if api_key:
        return Credentials(kind="api_key", api_key=api_key), None
    raise ConfigurationError(
        "Unable to authenticate: pass api_key, auth_token, domino_token_file or api_proxy, "
        "or set DOMINO_USER_API_KEY, DOMINO_TOKEN_FILE or DOMINO_API_PROXY."
    )
