"""domino_orchestrate.prefect: run Domino Data Lab jobs from Prefect 3 flows.

Blocks (register with ``prefect block register -m domino_orchestrate.prefect``):
``DominoCredentials`` (host, API key / token, project) and ``DominoJob`` (a JobBlock whose
``trigger()`` returns a ``DominoJobRun``).

Tasks: ``start_domino_job``, ``start_domino_run``, ``wait_for_domino_job``, ``stop_domino_job``
— called from async code they return a coroutine (Prefect's ``async_dispatch``); their async
forms are ``astart_domino_job``, ``astart_domino_run``, ``await_for_domino_job``,
``astop_domino_job`` (the ``*_async`` names are deprecated aliases). Subflows, dispatched the
same way: ``run_domino_job``, ``run_domino_run`` (async forms ``arun_domino_job``,
``arun_domino_run``).

Jobs stream stdout to the run logger, leave link and status artifacts, fail the task with the
status and the last lines of output, are stopped when the flow run is cancelled, times out or
crashes — whichever thread, event loop or process-pool worker waits for them — and are started
once per task even across task and flow-run retries (a new flow run starts fresh).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import (
    _extra,  # noqa: F401  (first: names a missing extra before any Prefect import)
    tasks,
)
from .credentials import DominoCredentials
from .jobs import DominoJob, DominoJobRun
from .tasks import (
    astart_domino_job,
    astart_domino_run,
    astop_domino_job,
    await_for_domino_job,
    start_domino_job,
    start_domino_run,
    stop_domino_job,
    wait_for_domino_job,
)

if TYPE_CHECKING:
    from .flows import arun_domino_job, arun_domino_run, run_domino_job, run_domino_run

#: Defined on first use (see ``__getattr__``); the ``*_async`` names are deprecated aliases.
_FLOWS = {"arun_domino_job", "arun_domino_run", "run_domino_job", "run_domino_run",
          "run_domino_job_async", "run_domino_run_async"}

__all__ = [
    "DominoCredentials",
    "DominoJob",
    "DominoJobRun",
    "arun_domino_job",
    "arun_domino_run",
    "astart_domino_job",
    "astart_domino_run",
    "astop_domino_job",
    "await_for_domino_job",
    "run_domino_job",
    "run_domino_run",
    "start_domino_job",
    "start_domino_run",
    "stop_domino_job",
    "wait_for_domino_job",
]


def __getattr__(name: str) -> Any:
    # Prefect builds each flow's parameter schema when the flow is defined (~20 ms apiece), so
    # the subflows are defined on first use, keeping this import cheap for DAG-style parsing.
    if name in _FLOWS:
        from . import flows

        return getattr(flows, name)
    if name in tasks.DEPRECATED_ALIASES:  # the *_async task names, with their warning
        return getattr(tasks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
