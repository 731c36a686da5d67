"""``DominoJobComponent``: a Domino job as a Dagster Component, declared in a ``dg`` project's
``defs.yaml``::

    type: domino_orchestrate.dagster.DominoJobComponent
    attributes:
      command: python orders.py --date 2026-01-01
      assets:
        - key: orders/daily
          group_name: sales
        - key: orders/summary
          deps: [orders/daily]
      checks:
        - name: job_succeeded
          asset: orders/daily
      hardware_tier_name: Medium
      pool: domino
      domino:                    # optional: a DominoResource for this component
        project: alice/churn     # unset fields (host, API key…) come from the DOMINO_* variables

The asset(s) are built by ``domino_job_asset``, the same factory Python definitions use (same
idempotent start, reattach, titles, checks that pass or fail with the job, run config
overrides): the component only translates YAML into its arguments. Without ``domino`` the
definitions expect a ``DominoResource`` under ``resource_key`` (default ``"domino"``) from
elsewhere in the project. Keep credentials out of the YAML: leave them to the ``DOMINO_*``
variables the resource reads.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from dagster import Definitions
from dagster.components import (
    Component,
    ComponentLoadContext,
    Model,
    Resolvable,
    ResolvedAssetCheckSpec,
    ResolvedAssetSpec,
)
from pydantic import Field

from .assets import domino_job_asset
from .resource import DominoResource

__all__ = ["DominoJobComponent"]


class DominoJobComponent(Component, Resolvable, Model):
    """One Domino job that materializes the assets it lists (and evaluates its checks)."""

    command: str = Field(description="The command Domino runs, sent as written.")
    assets: Sequence[ResolvedAssetSpec] = Field(
        description="The assets the job materializes (Dagster asset specs: key, deps, group…).")
    checks: Sequence[ResolvedAssetCheckSpec] | None = Field(
        default=None, description="Asset checks that pass or fail with the job.")
    op_name: str | None = Field(
        default=None, description="The step's name; defaults to one made of the asset keys.")
    title: str | None = Field(
        default=None, description="Domino job title; defaults to 'dagster: <asset keys>'.")
    hardware_tier_name: str | None = Field(default=None, description="Hardware tier name.")
    environment_id: str | None = Field(default=None, description="Compute environment id.")
    pool: str | None = Field(default=None, description="Dagster concurrency pool of the step.")
    resource_key: str = Field(
        default="domino", description="The key of the DominoResource the step uses.")
    domino: Mapping[str, Any] | None = Field(
        default=None, description="DominoResource settings (project, host, poll_freq…) to "
        "provide under resource_key; unset fields come from the DOMINO_* variables.")
    poll_overrides: Mapping[str, Any] | None = Field(
        default=None, description="PollOptions fields for this job (e.g. max_poll_time).")

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        """The multi-asset ``domino_job_asset`` builds, and the resource when configured."""
        job_fields = {name: value for name in ("title", "hardware_tier_name", "environment_id")
                      if (value := getattr(self, name)) is not None}
        assets_def = domino_job_asset(
            list(self.assets), self.command, op_name=self.op_name,
            check_specs=list(self.checks or ()), pool=self.pool,
            resource_key=self.resource_key, poll_overrides=self.poll_overrides, **job_fields,
        )
        resources = ({self.resource_key: DominoResource(**dict(self.domino))}
                     if self.domino is not None else None)
        return Definitions(assets=[assets_def], resources=resources)
