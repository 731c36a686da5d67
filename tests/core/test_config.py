"""Credential precedence exactly as python-domino (domino-api.md §1.2), plus what it lacks."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from domino_orchestrate.core import ConfigurationError, DominoConfig
from domino_orchestrate.core.config import proxy_for, tls_verify, without_userinfo

ENV = {
    "DOMINO_API_HOST": "https://env.example.com/some/path",
    "DOMINO_USER_API_KEY": "env-key-123",
    "DOMINO_TOKEN_FILE": "/nonexistent/token",
    "DOMINO_API_PROXY": "localhost:8899",
}


def test_host_keeps_only_scheme_and_netloc() -> None:
    config = DominoConfig.resolve(env={"DOMINO_API_HOST": "http://127.0.0.1:9/x/y", "DOMINO_USER_API_KEY": "k"})
    assert config.host == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("kwargs", "env", "kind"),
    [
        ({"api_proxy": "p:1", "auth_token": "t", "api_key": "k"}, {}, "proxy"),
        ({"auth_token": "t", "domino_token_file": "/f", "api_key": "k"}, {}, "token"),
        ({"domino_token_file": "/f", "api_key": "k"}, {}, "token_file"),
        ({"api_key": "k"}, ENV, "api_key"),  # any explicit credential ignores the env
        ({}, ENV, "proxy"),
        ({}, {k: v for k, v in ENV.items() if k != "DOMINO_API_PROXY"}, "token_file"),
        ({}, {"DOMINO_USER_API_KEY": "k"}, "api_key"),
    ],
)
def test_precedence(kwargs: dict, env: dict, kind: str) -> None:
    config = DominoConfig.resolve("https://h.example.com", env=env, **kwargs)
    assert config.credentials.kind == kind


def test_proxy_without_scheme_uses_http_and_becomes_the_base_url() -> None:
    config = DominoConfig.resolve(env={"DOMINO_API_PROXY": "localhost:8899"})
    assert config.base_url == "http://localhost:8899"
    assert config.credentials.headers() == {}


def test_bad_proxy_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="Bad api_proxy URL"):
        DominoConfig.resolve("https://h", api_proxy="ftp://x:1")


def test_no_credentials_says_what_to_set() -> None:
    with pytest.raises(ConfigurationError, match="DOMINO_USER_API_KEY"):
        DominoConfig.resolve("https://h", env={})


def test_no_host_says_what_to_set() -> None:
    with pytest.raises(ConfigurationError, match="DOMINO_API_HOST"):
        DominoConfig.resolve(api_key="k", env={})


def test_token_file_is_reread_on_every_request(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first  \nignored\n")
    config = DominoConfig.resolve("https://h", domino_token_file=str(token), env={})
    assert config.credentials.headers() == {"Authorization": "Bearer first"}
    token.write_text("second\n")
    assert config.credentials.headers() == {"Authorization": "Bearer second"}


def test_token_file_from_env_falls_back_to_env_api_key() -> None:
    config = DominoConfig.resolve("https://h", env={"DOMINO_TOKEN_FILE": "/f", "DOMINO_USER_API_KEY": "key-xyz"})
    assert config.credentials.can_fall_back
    assert config.credentials.headers(use_fallback=True) == {"X-Domino-Api-Key": "key-xyz"}


@pytest.mark.parametrize(("value", "verify"), [("false", False), ("no", False), ("False", True), ("0", True)])
def test_verify_certificate_only_exact_lowercase_values_disable(value: str, verify: bool) -> None:
    config = DominoConfig.resolve("https://h", api_key="k", env={"DOMINO_VERIFY_CERTIFICATE": value})
    assert config.verify is verify


def test_secrets_are_not_in_repr() -> None:
    config = DominoConfig.resolve("https://h", "o/p", api_key="super-secret-key", env={})
    assert "super-secret-key" not in repr(config)
    config = DominoConfig.resolve("https://h", auth_token="tok-secret-999", env={})
    assert "tok-secret-999" not in repr(config)


@pytest.mark.parametrize("project", ["nope", "a/b/c", "/x", "x/"])
def test_bad_project_names(project: str) -> None:
    with pytest.raises(ConfigurationError, match="owner/name"):
        DominoConfig.resolve("https://h", project, api_key="k", env={})


def test_bad_max_retries_env() -> None:
    with pytest.raises(ConfigurationError, match="DOMINO_MAX_RETRIES"):
        DominoConfig.resolve("https://h", api_key="k", env={"DOMINO_MAX_RETRIES": "many"})


# --- issue 13: TLS, proxies, credentials in URLs, keys with whitespace, log level ----------------


def test_verify_accepts_a_ca_bundle_path(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert DominoConfig.resolve("https://h", api_key="k", verify=str(bundle), env={}).verify == str(bundle)
    env = {"DOMINO_VERIFY_CERTIFICATE": str(bundle)}
    assert DominoConfig.resolve("https://h", api_key="k", env=env).verify == str(bundle)


@pytest.mark.parametrize("where", ["argument", "env"])
def test_a_missing_ca_bundle_says_so(where: str) -> None:
    kwargs = {"verify": "/no/such/ca.pem"} if where == "argument" else {}
    env = {"DOMINO_VERIFY_CERTIFICATE": "/no/such/ca.pem"} if where == "env" else {}
    with pytest.raises(ConfigurationError, match="CA bundle that does not exist"):
        DominoConfig.resolve("https://h", api_key="k", env=env, **kwargs)


@pytest.mark.parametrize(("verify", "env", "expected"), [
    (True, {}, True),
    (True, {"REQUESTS_CA_BUNDLE": "/r.pem", "SSL_CERT_FILE": "/s.pem"}, "/r.pem"),
    (True, {"CURL_CA_BUNDLE": "/c.pem", "SSL_CERT_FILE": "/s.pem"}, "/c.pem"),
    (True, {"SSL_CERT_FILE": "/s.pem"}, "/s.pem"),
    (False, {"REQUESTS_CA_BUNDLE": "/r.pem"}, False),  # an explicit choice wins
    ("/mine.pem", {"REQUESTS_CA_BUNDLE": "/r.pem"}, "/mine.pem"),
])
def test_tls_verify_follows_requests(verify: bool | str, env: dict, expected: bool | str) -> None:
    assert tls_verify(verify, env) == expected


@pytest.mark.parametrize(("url", "env", "proxy"), [
    ("https://d.example.com", {}, None),
    ("https://d.example.com", {"HTTPS_PROXY": "proxy:3128"}, "http://proxy:3128"),
    ("https://d.example.com", {"https_proxy": "http://low:1", "HTTPS_PROXY": "http://up:1"}, "http://low:1"),
    ("http://d.example.com", {"HTTPS_PROXY": "http://p:1"}, None),
    ("http://d.example.com", {"ALL_PROXY": "http://all:1"}, "http://all:1"),
    ("https://d.example.com", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.com"}, None),
    ("https://d.example.com", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": ".example.com"}, None),
    ("https://d.example.com", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "ample.com"}, "http://p:1"),
    ("https://d.example.com", {"HTTPS_PROXY": "http://p:1", "no_proxy": "*"}, None),
    ("http://10.1.2.3:8080", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8"}, None),
    ("http://10.1.2.3:8080", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "10.1.2.3:8080"}, None),
])
def test_proxy_for_reads_the_standard_variables(url: str, env: dict, proxy: str | None) -> None:
    assert proxy_for(url, env) == proxy


def test_credentials_in_the_host_url_are_kept_apart() -> None:
    config = DominoConfig.resolve("https://alice:pa%3Ass-w0rd@d.example.com:8443/x", "o/p",
                                  api_key="k-123", env={})
    assert config.host == "https://d.example.com:8443"
    assert config.base_url == "https://alice:pa%3Ass-w0rd@d.example.com:8443"
    assert config.job_url("j1") == "https://d.example.com:8443/jobs/o/p/j1"
    assert "w0rd" not in repr(config)
    assert {"pa%3Ass-w0rd", "pa:ss-w0rd"} <= set(config.secrets())
    assert without_userinfo("http://u:p@h:1/x?q") == "http://h:1/x?q"


@pytest.mark.parametrize("key", ["key-123\n", " key-123", "key-123\r\n", "key\x00123", "key-123\t"])
def test_api_key_with_whitespace_or_control_characters(key: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        DominoConfig.resolve("https://h", api_key=key, env={})
    assert "key-123" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="environment variable"):
        DominoConfig.resolve("https://h", env={"DOMINO_USER_API_KEY": key})
    with pytest.raises(ConfigurationError):
        DominoConfig.resolve("https://h", auth_token=key, env={})


@pytest.mark.parametrize(("value", "level"), [("DEBUG", logging.DEBUG), ("warn", logging.WARNING),
                                              ("error", logging.ERROR)])
def test_domino_log_level(value: str, level: int) -> None:
    logger = logging.getLogger("domino_orchestrate")
    before = logger.level
    try:
        DominoConfig.resolve("https://h", api_key="k", env={"DOMINO_LOG_LEVEL": value})
        assert logger.level == level
    finally:
        logger.setLevel(before)
    with pytest.raises(ConfigurationError, match="DOMINO_LOG_LEVEL must be one of"):
        DominoConfig.resolve("https://h", api_key="k", env={"DOMINO_LOG_LEVEL": "chatty"})


def test_a_token_file_with_a_control_character_says_which_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("abc\x07def-token\n")
    config = DominoConfig.resolve("https://h", domino_token_file=str(token), env={})
    with pytest.raises(ConfigurationError, match=f"token in {token}.*control character"):
        config.credentials.headers()
