"""Apache Airflow provider for Domino Data Lab (``domino_orchestrate.airflow``).

Public names, loaded lazily so that importing this package (DAG files are parsed often) costs
almost nothing: ``DominoHook`` (hooks), ``DominoJobOperator`` and ``DominoRunOperator``
(operators), ``DominoJobSensor`` (sensors), ``DominoJobTrigger`` (triggers), ``DominoJobLink``
(links) and ``get_provider_info`` (provider). The HTTP clients are imported only when a task runs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from domino_orchestrate.core.extras import require_extra, requires_extra

# Without the extra, say which one to install (finding Airflow does not import it: still cheap).
require_extra("airflow", __name__)

if TYPE_CHECKING:
    from .hooks import DominoHook
    from .links import DominoJobLink
    from .operators import DominoJobOperator, DominoRunOperator
    from .provider import get_provider_info
    from .sensors import DominoJobSensor
    from .triggers import DominoJobTrigger

__all__ = [
    "DominoHook",
    "DominoJobLink",
    "DominoJobOperator",
    "DominoJobSensor",
    "DominoJobTrigger",
    "DominoRunOperator",
    "get_provider_info",
]

_WHERE = {
    "DominoHook": ".hooks",
    "DominoJobLink": ".links",
    "DominoJobOperator": ".operators",
    "DominoRunOperator": ".operators",
    "DominoJobSensor": ".sensors",
    "DominoJobTrigger": ".triggers",
    "get_provider_info": ".provider",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with requires_extra("airflow", f"{__name__}.{name}"):  # e.g. the OpenLineage provider
        value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
