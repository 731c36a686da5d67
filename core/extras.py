"""Optional extras: one clear error naming the extra to install when its packages are missing.

The integrations and sinks live in one distribution; each needs packages only its extra installs
(``pip install 'domino-orchestrate[airflow]'``). Without them Python would report a bare
``ModuleNotFoundError: No module named 'airflow'`` from deep inside our code; this module turns
that into a :class:`MissingExtraError` that says what to run.

It imports nothing optional itself, so anything may use it while being imported.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["EXTRAS", "MissingExtraError", "require_extra", "requires_extra"]

#: The extras and the top-level modules each provides (what a missing one looks like).
EXTRAS: dict[str, tuple[str, ...]] = {
    "airflow": ("airflow",),
    "prefect": ("prefect",),
    "dagster": ("dagster",),
    "lineage": ("openlineage",),
    "mlflow": ("mlflow",),
    "store": ("sqlalchemy", "starlette", "uvicorn", "jinja2", "graphviz"),
    "postgres": ("psycopg",),
    "sandbox": ("starlette", "uvicorn"),
}


class MissingExtraError(ModuleNotFoundError):
    """An optional extra of domino-orchestrate is not installed.

    A ``ModuleNotFoundError`` (so existing ``except ImportError`` fallbacks still work) whose
    message names the extra and the command that installs it.

    Attributes:
        extra: The extra to install, e.g. ``"airflow"``.
        feature: What needed it, e.g. ``"domino_orchestrate.airflow"``.
    """

    def __init__(self, extra: str, feature: str, missing: str) -> None:
        self.extra = extra
        self.feature = feature
        super().__init__(
            f"{feature} needs the '{extra}' extra ({missing!r} is not installed): "
            f"pip install 'domino-orchestrate[{extra}]'",
            name=missing,
        )

    def __reduce__(self) -> tuple[type[MissingExtraError], tuple[str, str, str | None]]:
        return (type(self), (self.extra, self.feature, self.name))


def _top(module: str | None) -> str:
    return (module or "").partition(".")[0]


def require_extra(extra: str, feature: str) -> None:
    """Raise :class:`MissingExtraError` now unless the modules of ``extra`` can be imported.

    Cheap: it finds the modules without importing them, so a package may call it at import time
    (an Airflow DAG file imports ours on every parse).

    Args:
        extra: A key of :data:`EXTRAS`.
        feature: The module or function that needs it, named in the message.
    """
    for module in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a broken or blocked install counts as missing
            found = False
        if not found:
            raise MissingExtraError(extra, feature, module)


@contextmanager
def requires_extra(extra: str, feature: str) -> Iterator[None]:
    """Turn a ``ModuleNotFoundError`` for one of ``extra``'s modules into :class:`MissingExtraError`.

    For lazy imports, where the import happens later than the package import::

        with requires_extra("mlflow", "the MLflow sink"):
            from mlflow import MlflowClient

    A missing module that is not the extra's own (a bug, or another dependency) passes unchanged.
    """
    try:
        yield
    except MissingExtraError:
        raise
    except ModuleNotFoundError as exc:
        if _top(exc.name) in EXTRAS[extra]:
            raise MissingExtraError(extra, feature, exc.name or extra) from exc
        raise
