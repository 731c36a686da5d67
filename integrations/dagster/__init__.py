"""Dagster integration: ``DominoResource`` and the ``domino_job_asset`` / ``domino_job_op``
factories (installed as ``domino_orchestrate.dagster``).

>>> from dagster import Definitions, EnvVar
>>> from domino_orchestrate.dagster import DominoResource, domino_job_asset
>>> defs = Definitions(
...     assets=[domino_job_asset("model", "python train.py")],
...     resources={"domino": DominoResource(project="alice/churn",
...                                         api_key=EnvVar("DOMINO_USER_API_KEY"))},
... )
"""

from __future__ import annotations

from . import _extra  # noqa: F401  (first: names a missing extra before any Dagster import)
from .assets import (
    PLACEHOLDERS,
    DominoJobConfig,
    domino_job_asset,
    domino_job_op,
    render_command,
    step_env,
)
from .components import DominoJobComponent
from .lineage import domino_lineage_sensors
from .pipes import PipesDominoClient, PipesDominoMessageReader
from .resource import (
    CLIENT_NAME,
    DominoJobResult,
    DominoResource,
    StepIdentity,
    continues_parent,
    step_identity,
)

__all__ = [
    "CLIENT_NAME",
    "PLACEHOLDERS",
    "DominoJobComponent",
    "DominoJobConfig",
    "DominoJobResult",
    "DominoResource",
    "PipesDominoClient",
    "PipesDominoMessageReader",
    "StepIdentity",
    "continues_parent",
    "domino_job_asset",
    "domino_job_op",
    "domino_lineage_sensors",
    "render_command",
    "step_env",
    "step_identity",
]


def _register_library() -> None:
    # Listed with the Dagster libraries in use (telemetry, version reports), as dagster-*
    # integrations do; not a dagster-* package, so no version lock-step check. (Imported here:
    # the _extra check above must run before any Dagster import.)
    from dagster import DagsterLibraryRegistry

    from domino_orchestrate import __version__

    DagsterLibraryRegistry.register("domino-orchestrate", __version__, is_dagster_package=False)


_register_library()
