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
from .assets import PLACEHOLDERS, domino_job_asset, domino_job_op, render_command, step_env
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
