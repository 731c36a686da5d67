"""Factories for the common case: one asset (or op) that runs one Domino job.

What the job is told about the Dagster step (both ways are available, pick per command):

* **command template** — ``{partition_key}``, ``{partition_key_range_start}`` and
  ``{partition_key_range_end}`` in the command are replaced by the shell-quoted value. Any other
  brace (``${HOME}``, ``{a,b}``) is left alone; the template is not ``str.format``.
* **environment variables**, only when asked for (otherwise Domino runs the command exactly as
  written): with ``export_step_env=True`` an ``export …;`` prefix sets ``DAGSTER_RUN_ID``,
  ``DAGSTER_JOB_NAME``, ``DAGSTER_STEP_KEY``, ``DAGSTER_ASSET_KEY`` (assets) and
  ``DAGSTER_PARTITION_KEY`` (partitioned steps, unless ``pass_partition_key=False``); with
  ``pass_upstream=True`` it sets ``DAGSTER_UPSTREAM``: JSON ``{upstream asset key: {"job_id",
  "url", "status", "output_commit_id", "partition"}}`` read from each upstream asset's latest
  materialization (for ops: the upstream ops' output values).

The template and partition are part of the idempotency key, the per-run variables are not, so a
retry or a from-failure re-execution reattaches to the job the first attempt started.

Dagster conventions ``domino_job_asset`` follows:

* the asset is a name (``@asset``) or one or several ``AssetSpec`` (``@multi_asset``: one Domino
  job materializes them all; their attributes come from the specs);
* ``check_specs`` are asset checks that **pass or fail with the job**: a Succeeded job passes them
  (metadata: job id, URL, status), a job that ended Failed/Error/Stopped or timed out records them
  failed with its status before the step fails. For checks the job computes itself, run it through
  ``PipesDominoClient`` in your own asset and report them with ``report_asset_check``;
* ``pool``, ``automation_condition`` and ``backfill_policy`` are passed to Dagster as written;
* the run config (``DominoJobConfig``) overrides at launch: arguments appended to the command,
  hardware tier, title, environment. An override changes the job's spec, so it starts a fresh job.
"""


import json
import shlex
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from graphlib import TopologicalSorter
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    AssetsDefinition,
    AssetSpec,
    AutomationCondition,
    BackfillPolicy,
    Config,
    Failure,
    In,
    MaterializeResult,
    Nothing,
    OpDefinition,
    OpExecutionContext,
    Out,
    Output,
    PartitionsDefinition,
    RetryPolicy,
    asset,
    multi_asset,
    op,
)
from pydantic import Field

from domino_orchestrate.core import ConfigurationError, JobSpec
from domino_orchestrate.core.messages import with_arguments

from .resource import Context, DominoResource, step_identity

__all__ = [
    "PLACEHOLDERS",
    "DominoJobConfig",
    "domino_job_asset",
    "domino_job_op",
    "render_command",
    "step_env",
]

#: Placeholders replaced in a command template.
PLACEHOLDERS = ("{partition_key}", "{partition_key_range_start}", "{partition_key_range_end}")
_UPSTREAM_META = {
    "domino_job_id": "job_id", "domino_job_url": "url", "domino_status": "status",
    "domino_output_commit_id": "output_commit_id",
}


def _partition_values(context: Context) -> dict[str, str]:
    ctx = context.op_execution_context if isinstance(context, AssetExecutionContext) else context
    values: dict[str, str] = {}
    if ctx.has_partition_key:
        values["{partition_key}"] = str(ctx.partition_key)
    if ctx.has_partition_key_range:
        rng = ctx.partition_key_range
        values["{partition_key_range_start}"] = str(rng.start)
        values["{partition_key_range_end}"] = str(rng.end)
        values.setdefault("{partition_key}", str(rng.start) if rng.start == rng.end
                          else f"{rng.start}...{rng.end}")
    return values


def render_command(template: str, context: Context, pass_partition_key: bool = True) -> str:
    """Replace the partition placeholders in ``template`` with shell-quoted values."""
    used = [p for p in PLACEHOLDERS if p in template]
    if not used:
        return template
    if not pass_partition_key:
        raise ConfigurationError(
            f"The command uses {', '.join(used)} but pass_partition_key=False")
    values = _partition_values(context)
    missing = [p for p in used if p not in values]
    if missing:
        raise ConfigurationError(
            f"The command uses {', '.join(missing)} but this step has no partition")
    for placeholder in used:
        template = template.replace(placeholder, shlex.quote(values[placeholder]))
    return template


def _upstream_assets(context: AssetExecutionContext, keys: Iterable[str],
                     partition: str | None) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key in keys:
        asset_key = AssetKey.from_user_string(key)
        record = None
        if partition is not None:
            records = context.instance.fetch_materializations(
                AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]), limit=1
            ).records
            record = records[0] if records else None
        if record is None:
            records = context.instance.fetch_materializations(asset_key, limit=1).records
            record = records[0] if records else None
        entry: dict[str, Any] = {}
        materialization = record.asset_materialization if record else None
        if materialization is not None:
            entry["partition"] = materialization.partition
            for meta_key, name in _UPSTREAM_META.items():
                value = materialization.metadata.get(meta_key)
                if value is not None:
                    entry[name] = getattr(value, "value", value)
        found[key] = entry
    return found


def step_env(context: Context, *, pass_partition_key: bool = True,
             upstream: Mapping[str, Any] | None = None, export_step_env: bool = True
             ) -> dict[str, str]:
    """The ``DAGSTER_*`` variables exported before a factory-built job's command: the step's
    with ``export_step_env``, ``DAGSTER_UPSTREAM`` when ``upstream`` is given."""
    env: dict[str, str] = {}
    if upstream is not None:
        env["DAGSTER_UPSTREAM"] = json.dumps(upstream, sort_keys=True, default=str)
    if not export_step_env:
        return env
    ident = step_identity(context)
    env |= {
        "DAGSTER_RUN_ID": ident.run_id,
        "DAGSTER_JOB_NAME": ident.job_name,
        "DAGSTER_STEP_KEY": ident.step_key,
    }
    if ident.asset_keys:
        env["DAGSTER_ASSET_KEY"] = ",".join(ident.asset_keys)
    if pass_partition_key and ident.partition_key is not None:
        env["DAGSTER_PARTITION_KEY"] = ident.partition_key
    return env


def _spec(command: str | JobSpec, fields: Mapping[str, Any]) -> JobSpec:
    spec = command if isinstance(command, JobSpec) else JobSpec(command=command)
    return replace(spec, **fields) if fields else spec


def _check_template(spec: JobSpec, pass_partition_key: bool,
                    partitions_def: PartitionsDefinition[str] | None) -> None:
    used = [p for p in PLACEHOLDERS if p in spec.command]
    if used and not pass_partition_key:
        raise ConfigurationError(f"The command uses {', '.join(used)} but pass_partition_key=False")
    if used and partitions_def is None:
        raise ConfigurationError(f"The command uses {', '.join(used)} but no partitions_def is set")


class DominoJobConfig(Config):
    """Launch-time overrides of a ``domino_job_asset``'s job (the run config of its step, e.g.
    ``{"ops": {"orders": {"config": {"command_args": ["--full"]}}}}`` or the launchpad).

    Every field left unset keeps what the asset was defined with. An override changes the spec
    sent to Domino, so it starts a fresh job (never the result of a job with other settings).
    """

    command_args: list[str] = Field(
        default_factory=list,
        description="Arguments appended to the command, each passed as one shell word.")
    hardware_tier_name: str | None = Field(
        default=None, description="Hardware tier name for this launch, e.g. 'Large'.")
    title: str | None = Field(default=None, description="Domino job title for this launch.")
    environment_id: str | None = Field(
        default=None, description="Compute environment id for this launch.")

    def apply(self, spec: JobSpec) -> JobSpec:
        """``spec`` with this launch's overrides."""
        fields: dict[str, Any] = {
            name: value for name in ("hardware_tier_name", "title", "environment_id")
            if (value := getattr(self, name)) is not None
        }
        if self.command_args:
            fields["command"] = with_arguments(spec.command, self.command_args)
        return replace(spec, **fields) if fields else spec


#: Asset attributes that an ``AssetSpec`` carries itself: given with specs, they are an error.
_SPEC_ATTRIBUTES = ("key_prefix", "deps", "group_name", "description", "metadata", "tags",
                    "owners", "code_version")


def _asset_specs(assets: AssetSpec | Sequence[AssetSpec], given: Mapping[str, Any]
                 ) -> list[AssetSpec]:
    specs = [assets] if isinstance(assets, AssetSpec) else list(assets)
    if not specs or not all(isinstance(spec, AssetSpec) for spec in specs):
        raise ConfigurationError(
            "domino_job_asset takes an asset name, an AssetSpec or a non-empty list of AssetSpec")
    clashing = [name for name in _SPEC_ATTRIBUTES if given.get(name) is not None]
    if clashing:
        raise ConfigurationError(
            f"{', '.join(clashing)} given with AssetSpec input: set them on the AssetSpec instead")
    return specs


def _check_results(context: AssetExecutionContext, check_specs: Sequence[AssetCheckSpec],
                   passed: bool, metadata: Mapping[str, Any]) -> Iterator[AssetCheckResult]:
    selected = context.selected_asset_check_keys
    for check in check_specs:
        if check.key not in selected:
            continue
        yield AssetCheckResult(
            asset_key=check.asset_key, check_name=check.name, passed=passed,
            severity=AssetCheckSeverity.ERROR, metadata=dict(metadata))


def domino_job_asset(
    name: str | AssetSpec | Sequence[AssetSpec],
    command: str | JobSpec,
    *,
    op_name: str | None = None,
    key_prefix: str | Sequence[str] | None = None,
    deps: Iterable[Any] | None = None,
    partitions_def: PartitionsDefinition[str] | None = None,
    pass_partition_key: bool = True,
    pass_upstream: bool = False,
    export_step_env: bool = False,
    resource_key: str = "domino",
    group_name: str | None = None,
    description: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    op_tags: Mapping[str, Any] | None = None,
    owners: Sequence[str] | None = None,
    retry_policy: RetryPolicy | None = None,
    code_version: str | None = None,
    check_specs: Sequence[AssetCheckSpec] | None = None,
    pool: str | None = None,
    automation_condition: AutomationCondition[Any] | None = None,
    backfill_policy: BackfillPolicy | None = None,
    poll_overrides: Mapping[str, Any] | None = None,
    **job_fields: Any,
) -> AssetsDefinition:
    """An asset (or, given several ``AssetSpec``, a multi-asset) materialized by one Domino job
    (``job_fields`` are ``JobSpec`` fields, e.g. ``title``, ``hardware_tier_name``,
    ``environment_id``).

    >>> daily = domino_job_asset("model", "python train.py --date {partition_key}",
    ...     deps=["features"], partitions_def=DailyPartitionsDefinition("2024-01-01"),
    ...     check_specs=[AssetCheckSpec("job_succeeded", asset="model")], pool="domino")
    >>> both = domino_job_asset([AssetSpec(["orders", "daily"]), AssetSpec(["orders", "summary"])],
    ...                         "python orders.py", op_name="orders")

    ``name`` is the asset's name, or the ``AssetSpec``(s) it materializes (then ``op_name``
    names the step; the default comes from the asset keys, and asset attributes belong on the
    specs; ``automation_condition`` applies to each spec that sets none). ``check_specs`` pass or fail with the job (see the module docstring); ``pool``,
    ``automation_condition`` and ``backfill_policy`` go to Dagster as written. The step takes
    a ``DominoJobConfig`` run config for launch-time overrides. Without a ``title`` the Domino
    job is titled after the asset key(s), e.g. ``dagster: orders/daily``.

    Each materialization carries the job id, URL, status, duration and hardware tier as metadata.
    """
    spec = _spec(command, job_fields)
    _check_template(spec, pass_partition_key, partitions_def)
    checks = list(check_specs or ())
    kwargs: dict[str, Any] = dict(
        partitions_def=partitions_def, required_resource_keys={resource_key},
        op_tags=op_tags, retry_policy=retry_policy, check_specs=checks or None, pool=pool,
        backfill_policy=backfill_policy,
    )
    order: list[AssetKey] = []  # a multi-asset yields its assets upstream first (Dagster's rule)
    if isinstance(name, str):
        decorator = asset(
            name=name, key_prefix=key_prefix, deps=deps, group_name=group_name,
            description=description or f"Runs the Domino job `{spec.command}`.",
            metadata=metadata, tags=tags, owners=owners, code_version=code_version,
            kinds={"domino"}, automation_condition=automation_condition, **kwargs,
        )
    else:
        given = dict(key_prefix=key_prefix, deps=deps, group_name=group_name,
                     description=description, metadata=metadata, tags=tags, owners=owners,
                     code_version=code_version)
        specs = [s if s.kinds else s.merge_attributes(kinds={"domino"})
                 for s in _asset_specs(name, given)]
        if automation_condition is not None:  # for every spec that has none of its own
            specs = [s if s.automation_condition is not None
                     else s.replace_attributes(automation_condition=automation_condition)
                     for s in specs]
        keys = {s.key for s in specs}
        order = list(TopologicalSorter(
            {s.key: [d.asset_key for d in s.deps if d.asset_key in keys] for s in specs}
        ).static_order())
        decorator = multi_asset(
            specs=specs, name=op_name or "__".join(s.key.to_python_identifier() for s in specs),
            description=f"Runs the Domino job `{spec.command}`.", **kwargs,
        )

    def _domino_asset(context: AssetExecutionContext, config: DominoJobConfig
                      ) -> Iterator[MaterializeResult | AssetCheckResult]:
        domino: DominoResource = getattr(context.resources, resource_key)
        ident = step_identity(context)
        upstream = (_upstream_assets(context, ident.upstream_asset_keys, ident.partition_key)
                    if pass_upstream else None)
        launched = config.apply(spec)
        rendered = replace(launched, command=render_command(launched.command, context,
                                                            pass_partition_key))
        env = step_env(context, pass_partition_key=pass_partition_key, upstream=upstream,
                       export_step_env=export_step_env)
        try:
            result = domino.run_job(context, rendered, env=env, poll_overrides=poll_overrides)
        except Failure as failure:
            # The checks fail with the job: recorded with its status before the step fails.
            yield from _check_results(context, checks, False, {
                key: value for key, value in (failure.metadata or {}).items()
                if key != "domino_stdout_tail"})
            raise
        selected = context.selected_asset_keys
        for key in [k for k in order if k in selected] or selected:
            yield result.materialize_result(asset_key=key)
        yield from _check_results(context, checks, True, result.metadata)

    return decorator(_domino_asset)


def domino_job_op(
    name: str,
    command: str | JobSpec,
    *,
    upstream: Sequence[str] = (),
    pass_partition_key: bool = True,
    pass_upstream: bool = False,
    export_step_env: bool = False,
    resource_key: str = "domino",
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    retry_policy: RetryPolicy | None = None,
    poll_overrides: Mapping[str, Any] | None = None,
    **job_fields: Any,
) -> OpDefinition:
    """An op that runs one Domino job and outputs its ``DominoJobResult.to_dict()``.

    ``upstream`` names inputs to wire other ops to: ``Nothing`` inputs (ordering only), or, with
    ``pass_upstream=True``, value inputs whose values are passed as ``DAGSTER_UPSTREAM`` JSON
    (e.g. the result dicts of upstream ``domino_job_op``s).
    """
    spec = _spec(command, job_fields)
    if not pass_partition_key and any(p in spec.command for p in PLACEHOLDERS):
        raise ConfigurationError("The command uses a partition placeholder but "
                                 "pass_partition_key=False")
    ins = {
        up: In(dagster_type=Any) if pass_upstream else In(dagster_type=Nothing) for up in upstream
    }

    @op(
        name=name, ins=ins, out=Out(dict), required_resource_keys={resource_key},
        description=description or f"Runs the Domino job `{spec.command}`.",
        tags=tags, retry_policy=retry_policy,
    )
    def _domino_op(context: OpExecutionContext, **inputs: Any) -> Output[dict[str, Any]]:
        domino: DominoResource = getattr(context.resources, resource_key)
        rendered = replace(spec, command=render_command(spec.command, context, pass_partition_key))
        env = step_env(context, pass_partition_key=pass_partition_key,
                       upstream=dict(inputs) if pass_upstream else None,
                       export_step_env=export_step_env)
        result = domino.run_job(context, rendered, env=env, poll_overrides=poll_overrides)
        return result.output()

    return _domino_op
