"""What can go wrong when reading or writing the lineage store, as one tree of typed errors.

::

    LineageStoreError                 .exit_code (the CLI exits with it)
    ├── StoreConfigError      (2)     a store URL/path that cannot be opened as a database
    ├── StoreUnavailableError (4)     the database did not answer (PostgreSQL down, file locked)
    ├── InvalidEventError     (6)     an event that is not an OpenLineage RunEvent (.where, .problem)
    └── NotFoundError         (5)     nothing in the store has that name (LookupError too)
        ├── UnknownRunError           no run with that id (or an ambiguous id prefix)
        ├── UnknownOutputError        no dataset of that name/key, and no run with that id
        └── UnknownComponentError     no runs of that component

Messages say what to fix and never contain a database password (URLs are rendered without it).
"""

from __future__ import annotations

__all__ = [
    "EXIT_BAD_EVENT",
    "EXIT_CONFIG",
    "EXIT_NOT_FOUND",
    "EXIT_UNAVAILABLE",
    "InvalidEventError",
    "LineageStoreError",
    "NotFoundError",
    "StoreConfigError",
    "StoreUnavailableError",
    "UnknownComponentError",
    "UnknownOutputError",
    "UnknownRunError",
]

#: Exit codes of ``domino-orchestrate lineage …``; 2 and 4 mean what they mean for the rest of
#: the CLI (bad input; could not talk to the backend), 5 and 6 are the lineage store's own.
EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 4
EXIT_NOT_FOUND = 5
EXIT_BAD_EVENT = 6


class LineageStoreError(Exception):
    """Root of every lineage store error; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class StoreConfigError(LineageStoreError):
    """The store location cannot be used (not a SQLAlchemy URL, unsupported database...)."""

    exit_code = EXIT_CONFIG


class StoreUnavailableError(LineageStoreError):
    """The store's database did not answer or refused the operation."""

    exit_code = EXIT_UNAVAILABLE


class InvalidEventError(LineageStoreError, ValueError):
    """An event the store cannot read: ``where`` names the field, ``problem`` what is wrong."""

    exit_code = EXIT_BAD_EVENT

    def __init__(self, where: str, problem: str, *, source: str | None = None) -> None:
        self.where, self.problem, self.source = where, problem, source
        prefix = f"{source}: " if source else ""
        super().__init__(f"{prefix}not an OpenLineage RunEvent: {where} {problem}")

    def located(self, source: str) -> InvalidEventError:
        """The same error, saying where the event came from (``file:line``)."""
        return InvalidEventError(self.where, self.problem, source=source)


class NotFoundError(LineageStoreError, LookupError):
    """Nothing in the store answers to that name."""

    exit_code = EXIT_NOT_FOUND

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


class UnknownRunError(NotFoundError):
    """No run with that id (or a prefix matching several runs)."""

    def __init__(self, run_id: str, message: str | None = None) -> None:
        super().__init__(message or f"no run with id {run_id!r} in the lineage store "
                         "(see `domino-orchestrate lineage recent`)", run_id)


class UnknownOutputError(NotFoundError):
    """No dataset of that name or key was produced, and no run has that id."""

    def __init__(self, output: str) -> None:
        super().__init__(
            f"nothing in the lineage store produced {output!r}: give an output dataset's name "
            "or namespace/name, or a run id (see `domino-orchestrate lineage recent`)", output)


class UnknownComponentError(NotFoundError):
    """No runs of that component (OpenLineage job name, or namespace/name)."""

    def __init__(self, component: str) -> None:
        super().__init__(
            f"no runs of component {component!r} in the lineage store: give an OpenLineage job "
            "name or namespace/name (see `domino-orchestrate lineage recent`)", component)
