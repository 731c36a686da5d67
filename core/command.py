"""Shell command helpers shared by every integration (no I/O)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

__all__ = ["with_env_prefix"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def with_env_prefix(command: str, env: Mapping[str, str]) -> str:
    """``"export K=V K2=V2; <command>"`` with shell-quoted values; ``command`` if ``env`` is empty.

    Raises:
        ValueError: a name is not a valid shell variable name.
    """
    if not env:
        return command
    parts = []
    for key, value in env.items():
        if not _ENV_NAME.match(key):
            raise ValueError(f"Not a valid environment variable name: {key!r}")
        parts.append(f"{key}={shlex.quote(str(value))}")
    return f"export {' '.join(parts)}; {command}"
