"""Credential precedence exactly as python-domino (domino-api.md §1.2), plus what it lacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from domino_orchestrate.core import ConfigurationError, DominoConfig

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
