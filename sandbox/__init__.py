"""A local Domino-compatible API server (the "sandbox") whose jobs are real local processes.

What lives here: the public names only. `SandboxServer` runs in-process (a background thread);
`SandboxProcess` / `spawn_sandbox_subprocess` run it as a separate OS process; `main` is the CLI
(`python -m domino_orchestrate.sandbox`, wired as `domino-orchestrate sandbox`). Modules:
`state` (records and store), `processes` (supervisor), `stdout` (HTML log), `views` (JSON
shapes), `faults` and `middleware` (ASGI layers), `app` (routes), `server` (wiring), and
`pytest_plugin` (fixtures `domino_sandbox`, `domino_sandbox_session`).

Importing this package does not import starlette or uvicorn; `SandboxServer.start()` does.
"""

from .server import SandboxProcess, SandboxServer, main, spawn_sandbox_subprocess

__all__ = ["SandboxProcess", "SandboxServer", "main", "spawn_sandbox_subprocess"]
