"""Connection settings and credential precedence, exactly as python-domino (domino-api.md §1).

Precedence (§1.2): ``api_proxy``, ``auth_token``, ``domino_token_file``, ``api_key`` arguments,
then env ``DOMINO_API_PROXY``, ``DOMINO_TOKEN_FILE``, ``DOMINO_USER_API_KEY``. If any explicit
credential argument is given, credential env vars are ignored. Two additions python-domino lacks:
a timeout on every request, and a fallback from a rejected token-file token to a configured API key.
Secrets live only in ``Credentials`` whose repr never shows them; credentials written into a host
URL (``https://user:secret@host``) are split off into a hidden field, so ``host`` is safe to print.

TLS and proxies follow plain ``requests`` (what python-domino uses), decided here once for both
transports: ``verify`` is ``True``, ``False`` or a CA bundle path; with ``True`` the standard
variables ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE`` and ``SSL_CERT_FILE`` name the bundle
(``tls_verify``); ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``/``NO_PROXY`` pick the proxy
(``proxy_for``). ``.netrc`` is never read: it would add credentials the user did not give us.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .errors import ConfigurationError

__all__ = ["REDACTED", "Credentials", "DominoConfig", "proxy_for", "redact", "tls_verify",
           "without_userinfo"]

REDACTED = "***"

_FALSEY = {"false", "f", "n", "no"}  # §1.3: the only values that disable TLS verification
DEFAULT_UI_JOB_URL = "{host}/jobs/{owner}/{project}/{job_id}"


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value in ``text``: a job may echo its own credentials."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def without_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` removed: safe to print."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _split_userinfo(url: str | None) -> tuple[str | None, str | None]:
    if not url or "@" not in urlsplit(url).netloc:
        return url, None
    userinfo = urlsplit(url).netloc.rpartition("@")[0]
    return without_userinfo(url), userinfo


def _with_userinfo(url: str, userinfo: str | None) -> str:
    if not userinfo:
        return url
    parts = urlsplit(url)
    return parts._replace(netloc=f"{userinfo}@{parts.netloc}").geturl()


def _userinfo_secrets(userinfo: str | None) -> list[str]:
    if not userinfo:
        return []
    _user, _sep, password = userinfo.partition(":")
    values = {userinfo, unquote(userinfo), password, unquote(password)}
    return [v for v in values if v and len(v) >= 4]


def tls_verify(verify: bool | str, env: Mapping[str, str] | None = None) -> bool | str:
    """What to verify Domino's certificate against, as ``requests`` decides it: an explicit CA
    bundle path or ``False`` wins; with ``True``, ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, then
    ``SSL_CERT_FILE`` name the bundle; otherwise the default trust store."""
    if verify is not True:
        return verify
    env = os.environ if env is None else env
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        if env.get(name):
            return env[name]
    return True


def proxy_for(url: str, env: Mapping[str, str] | None = None) -> str | None:
    """The proxy the standard variables choose for ``url`` (``NO_PROXY`` honoured), or None."""
    env = os.environ if env is None else env
    scheme = urlsplit(url).scheme
    lowered: dict[str, str] = {}
    for name, value in env.items():
        key = name.lower()
        if key.endswith("_proxy") and value and (key not in lowered or name == key):
            lowered[key] = value  # the lower-case spelling wins, as in urllib and requests
    proxy = lowered.get(f"{scheme}_proxy") or lowered.get("all_proxy")
    if not proxy:
        return None
    if _bypasses_proxy(url, lowered.get("no_proxy", "")):
        return None
    return proxy if "://" in proxy else "http://" + proxy


def _bypasses_proxy(url: str, no_proxy: str) -> bool:
    """``NO_PROXY`` as requests reads it: ``*``, host suffixes, ``host:port``, IP networks."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        name = entry.lstrip(".")
        if host == name or host.endswith("." + name) or f"{host}:{parts.port}" == name:
            return True
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(name, strict=False):
                return True
        except ValueError:
            continue
    return False


def _check_secret(value: str | None, what: str) -> None:
    """A pasted key often carries a newline; as a header value it fails far from its cause."""
    if not value:
        return
    if value != value.strip():
        raise ConfigurationError(
            f"The Domino {what} starts or ends with whitespace or a newline: strip it "
            "(e.g. `$(tr -d '\\n' < keyfile)`), then try again."
        )
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ConfigurationError(
            f"The Domino {what} contains a control character: copy it again without it."
        )


def _check_verify(verify: bool | str, what: str) -> bool | str:
    if isinstance(verify, bool):
        return verify
    if not isinstance(verify, str) or not verify.strip():
        raise ConfigurationError(f"{what} must be true, false or a CA bundle path, got {verify!r}")
    if not Path(verify).exists():
        raise ConfigurationError(
            f"{what} names a CA bundle that does not exist: {verify!r}. Give the path of a PEM "
            "file (or directory) holding the CA certificate that signed Domino's certificate."
        )
    return verify


def _verify_from_env(raw: str) -> bool | str:
    """``DOMINO_VERIFY_CERTIFICATE``: python-domino's false values (§1.3), or a CA bundle path."""
    if raw in _FALSEY:
        return False
    if not raw or raw.lower() in {"true", "t", "y", "yes", "1"}:
        return True
    if "/" in raw or "\\" in raw or Path(raw).exists():
        return _check_verify(raw, "DOMINO_VERIFY_CERTIFICATE")
    return True  # python-domino treats every other value as "verify"


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def apply_log_level(env: Mapping[str, str] | None = None) -> None:
    """``DOMINO_LOG_LEVEL`` (python-domino's variable) sets the ``domino_orchestrate`` logger."""
    env = os.environ if env is None else env
    raw = env.get("DOMINO_LOG_LEVEL", "").strip()
    if not raw:
        return
    level = raw.upper()
    if level == "WARN":
        level = "WARNING"
    if level not in _LOG_LEVELS:
        raise ConfigurationError(
            f"DOMINO_LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}, got {raw!r}"
        )
    logging.getLogger("domino_orchestrate").setLevel(level)


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
        """The authentication headers of the next request (a token file is re-read each time).

        Args:
            use_fallback: Use the API key that backs up an unreadable token file.
        """
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
            _check_secret(token, f"token in {self.token_file}")
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
    #: True, False, or the path of a CA bundle (file or directory) to trust.
    verify: bool | str = True
    max_retries: int = 4
    #: Bounds each request as a whole (connect, headers and body), not each read.
    timeout: float = 30.0
    api_proxy: str | None = None
    ui_job_url: str = DEFAULT_UI_JOB_URL
    #: ``user:password`` split off ``host`` / ``api_proxy``: sent, never shown.
    host_userinfo: str | None = field(default=None, repr=False)
    proxy_userinfo: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        host, userinfo = _split_userinfo(self.host)
        if userinfo:
            object.__setattr__(self, "host", host)
            object.__setattr__(self, "host_userinfo", userinfo)
        proxy, userinfo = _split_userinfo(self.api_proxy)
        if userinfo:
            object.__setattr__(self, "api_proxy", proxy)
            object.__setattr__(self, "proxy_userinfo", userinfo)

    @property
    def base_url(self) -> str:
        """Where requests go: the proxy rewrites scheme and host of every URL (§1.1). Holds the
        URL's credentials, if any: never print it (``host`` is safe)."""
        if self.api_proxy:
            return _with_userinfo(self.api_proxy, self.proxy_userinfo)
        return _with_userinfo(self.host, self.host_userinfo)

    def secrets(self) -> list[str]:
        """Every secret this configuration may send: to scrub from any text we show."""
        return [*self.credentials.secrets(), *_userinfo_secrets(self.host_userinfo),
                *_userinfo_secrets(self.proxy_userinfo)]

    @property
    def owner_and_project(self) -> tuple[str, str]:
        if not self.project:
            raise ConfigurationError(
                "No Domino project set: pass project='owner/name' (or --project / "
                "the connection's project extra)."
            )
        return split_project(self.project)

    def job_url(self, job_id: str) -> str:
        """The URL of a job's page in Domino's UI."""
        owner, project = self.owner_and_project
        return self.ui_job_url.format(host=self.host, owner=owner, project=project, job_id=job_id)

    def with_project(self, project: str | None) -> DominoConfig:
        """A copy of this configuration for another project (``owner/name``); unchanged if ``None``."""
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
        verify: bool | str | None = None,
        max_retries: int | None = None,
        timeout: float = 30.0,
        ui_job_url: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> DominoConfig:
        """Build a config from arguments, then the Domino environment variables (§1.2, §1.3).

        ``verify`` is True, False or a CA bundle path; unset, ``DOMINO_VERIFY_CERTIFICATE``
        decides (python-domino's false values, or a path). ``DOMINO_LOG_LEVEL`` sets the
        ``domino_orchestrate`` logger's level.

        Raises:
            ConfigurationError: what to fix (a missing host or credential, a key with a trailing
                newline, a CA bundle path that does not exist, a bad number).
        """
        env = os.environ if env is None else env
        apply_log_level(env)
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
            verify = _verify_from_env(env.get("DOMINO_VERIFY_CERTIFICATE", ""))
        else:
            verify = _check_verify(verify, "verify")
        where = "argument" if explicit else "environment variable"
        _check_secret(credentials.api_key, f"API key ({where})")
        _check_secret(credentials.fallback_api_key, f"API key ({where})")
        _check_secret(credentials.token, "auth token")
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
