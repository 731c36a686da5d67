"""Drop-in replacements for python-domino's Airflow operators: change one import line.

``from domino.airflow import DominoOperator`` no longer imports on Airflow 3 (``apply_defaults``
is gone). ``from domino_orchestrate.airflow.compat import DominoOperator, DominoSparkOperator``
accepts the same parameters, spelled the same way (``isDirect``, ``commitId``,
``publishApiEndpoint``…), with the same defaults (``startup_delay=10``, ``include_setup_log=True``
for ``DominoOperator``), and runs on ``DominoRunOperator`` / ``DominoJobOperator``.

What each seed parameter does here:

==================================  =============================================================
``project``                         ``owner/name``; overrides the connection's ``project`` extra.
``command``                         v1: list of strings, sent as written; v4: one string.
``host``, ``api_key``,              credentials as python-domino takes them, with its precedence
``domino_token_file``               (``api_proxy``, ``auth_token``, ``domino_token_file``,
(+ ``auth_token``, ``api_proxy``)   ``api_key``, then ``DOMINO_*``). Unset: the ``domino``
                                    connection (``domino_conn_id``), then the environment.
``isDirect``, ``commitId``,         sent in the v1 start body as ``isDirect``, ``commitId``,
``title``, ``tier``,                ``title`` (plus the ``[do:…]`` retry key), ``tier``,
``publishApiEndpoint``              ``publishApiEndpoint``. ``tier`` is checked against the
                                    project's hardware tier names first (``ValueError``), as the
                                    official operator does.
``commit_id``, ``hardware_tier_``   the v4 start body's ``commitId``, ``overrideHardwareTierId``
``name``, ``environment_id``,       (resolved from the name), ``environmentId``,
``on_demand_spark_cluster_``        ``onDemandSparkClusterProperties``,
``properties``,                     ``computeClusterProperties`` (tier ids wrapped as
``compute_cluster_properties``      ``{"value": id}``); every other ``job_start`` field
                                    (``title``, ``external_volume_mounts``, ``branch``,
                                    ``hardware_tier_id``…) is accepted too.
``poll_freq``, ``max_poll_time``    seconds between polls (short jobs are seen sooner: the first
                                    polls come after 1, 2, 4 s) and the limit of the wait; at the
                                    limit the job is **stopped** and the task fails.
``startup_delay``                   seconds to wait *before* starting the job (v1 default 10, v4
                                    default None = 0), as python-domino does.
``include_setup_log``               stream Domino's setup log before stdout (v1 default True).
==================================  =============================================================

Where behaviour is deliberately better than python-domino's: stdout streams into the task log
while the job runs (not once at the end); ``Failed``, ``Error`` and ``Stopped`` all fail the task
(python-domino lets ``Error``/``Stopped`` pass, and waits out ``max_poll_time`` on a v1 run that
ended without an output commit); killing, clearing or timing out the task stops the job; an
automatic retry reattaches to the job it started instead of starting a duplicate. The XCom
``return_value`` keeps python-domino's keys (``runId``; the v4 job JSON) next to ours (``job_id``,
``status``, ``url``, ``duration_s``…).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .operators import DominoJobOperator, DominoRunOperator

if TYPE_CHECKING:
    from domino_orchestrate.core import DominoConfig

    from .hooks import DominoHook

__all__ = ["DominoOperator", "DominoSparkOperator"]


class _SeedConnection:
    """python-domino's connection arguments on an operator: they win over the Airflow connection,
    which in turn fills in what they leave out (then the ``DOMINO_*`` variables)."""

    domino_conn_id: str
    project: str | None
    deferrable: bool

    def _keep_connection_args(self, host: str | None, api_key: str | None,
                              domino_token_file: str | None, auth_token: str | None,
                              api_proxy: str | None) -> None:
        from domino_orchestrate.core import ConfigurationError

        self._seed_host = host
        self._seed_credentials = {"api_key": api_key, "auth_token": auth_token,
                                  "domino_token_file": domino_token_file, "api_proxy": api_proxy}
        if self.deferrable and (host or any(self._seed_credentials.values())):
            # The triggerer rebuilds its client from the connection id alone: a key given here
            # would never reach it (and must not be serialized into the trigger).
            raise ConfigurationError(
                "deferrable=True needs the credentials in an Airflow connection (domino_conn_id): "
                "move host/api_key/domino_token_file/auth_token there, or set deferrable=False."
            )

    @property
    def hook(self) -> DominoHook:
        hook = self.__dict__.get("_domino_hook")
        if hook is None:
            from .hooks import DominoHook

            hook = DominoHook(self.domino_conn_id, project=self.project)
            if self._seed_host or any(self._seed_credentials.values()):
                hook.__dict__["config"] = self._seed_config(hook)  # the hook's cached config
            self.__dict__["_domino_hook"] = hook
        return hook

    def _seed_config(self, hook: DominoHook) -> DominoConfig:
        from dataclasses import replace

        from domino_orchestrate.core import ConfigurationError, DominoConfig
        from domino_orchestrate.core.config import clean_host

        try:
            base: DominoConfig | None = hook.config_from_connection(hook._connection())
        except ConfigurationError:  # no connection and no DOMINO_* variables: the args decide
            base = None
        if any(self._seed_credentials.values()):
            return DominoConfig.resolve(
                self._seed_host or (base.host if base else None), self.project,
                **self._seed_credentials,
                verify=base.verify if base else None,
                max_retries=base.max_retries if base else None,
                timeout=base.timeout if base else 30.0,
            )
        if base is not None:
            return replace(base, host=clean_host(str(self._seed_host)))
        return DominoConfig.resolve(self._seed_host, self.project)


class DominoOperator(_SeedConnection, DominoRunOperator):
    """python-domino's ``DominoOperator`` (a v1 run, ``runs_start`` parameters), on Airflow 3.

    Same parameters and defaults as ``domino.airflow.DominoOperator``; see the module docstring
    for what each does here. Also takes ``auth_token``, ``api_proxy`` and every
    ``DominoRunOperator`` keyword (``domino_conn_id``, ``retry_count``, ``deferrable``…). Returns
    the run's summary plus python-domino's ``runId``.
    """

    ui_color = "#5188c7"

    def __init__(
        self,
        *,
        project: str,
        command: Sequence[str],
        host: str | None = None,
        api_key: str | None = None,
        domino_token_file: str | None = None,
        isDirect: bool | None = None,  # python-domino's camelCase names, kept
        commitId: str | None = None,
        title: str | None = None,
        tier: str | None = None,
        publishApiEndpoint: bool | None = None,
        poll_freq: float | None = 5,
        max_poll_time: float | None = 6000,
        startup_delay: float | None = 10,
        include_setup_log: bool | None = True,
        auth_token: str | None = None,
        api_proxy: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            project=project, command=command, is_direct=isDirect, commit_id=commitId,
            title=title, tier=tier, publish_api_endpoint=publishApiEndpoint,
            poll_freq=5 if poll_freq is None else poll_freq,
            max_poll_time=6000 if max_poll_time is None else max_poll_time,
            startup_delay=startup_delay or 0, include_setup_log=bool(include_setup_log),
            **kwargs,
        )
        self._keep_connection_args(host, api_key, domino_token_file, auth_token, api_proxy)

    def execute(self, context: Any) -> Any:
        """Run the v1 run as ``DominoRunOperator`` does; the summary also carries ``runId``."""
        return _with_run_id(super().execute(context))

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        """Finish after deferral as ``DominoRunOperator`` does; the summary also carries
        ``runId``."""
        return _with_run_id(super().execute_complete(context, event))


class DominoSparkOperator(_SeedConnection, DominoJobOperator):
    """python-domino's ``DominoSparkOperator`` (a v4 job, ``job_start`` parameters), on Airflow 3.

    Same parameters and defaults as ``domino.airflow.DominoSparkOperator``; every other
    ``job_start`` field (``title``, ``external_volume_mounts``, ``hardware_tier_id``, ``branch``,
    ``main_repo_git_ref``) and ``DominoJobOperator`` keyword is accepted too. Returns the final v4
    job JSON (as python-domino's ``job_start_blocking``) merged with the job's summary.
    """

    ui_color = "#6C50AD"

    def __init__(
        self,
        *,
        project: str,
        command: str,
        host: str | None = None,
        api_key: str | None = None,
        domino_token_file: str | None = None,
        poll_freq: float = 5,
        max_poll_time: float = 6000,
        startup_delay: float | None = None,
        commit_id: str | None = None,
        hardware_tier_name: str | None = None,
        environment_id: str | None = None,
        on_demand_spark_cluster_properties: dict[str, Any] | None = None,
        compute_cluster_properties: dict[str, Any] | None = None,
        auth_token: str | None = None,
        api_proxy: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            project=project, command=command, poll_freq=poll_freq, max_poll_time=max_poll_time,
            startup_delay=startup_delay or 0, commit_id=commit_id,
            hardware_tier_name=hardware_tier_name, environment_id=environment_id,
            on_demand_spark_cluster_properties=on_demand_spark_cluster_properties,
            compute_cluster_properties=compute_cluster_properties, **kwargs,
        )
        self._keep_connection_args(host, api_key, domino_token_file, auth_token, api_proxy)

    def execute(self, context: Any) -> Any:
        """Run the job as ``DominoJobOperator`` does; return its summary merged with the final
        v4 job JSON."""
        return self._with_job_json(super().execute(context))

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        """Finish after deferral as ``DominoJobOperator`` does; return the summary merged with
        the final v4 job JSON."""
        return self._with_job_json(super().execute_complete(context, event))

    def _with_job_json(self, summary: Any) -> Any:
        if not isinstance(summary, dict) or not summary.get("job_id"):
            return summary
        from domino_orchestrate.compat import raw_job

        return {**summary, **raw_job(self.hook.client, str(summary["job_id"]))}


def _with_run_id(summary: Any) -> Any:
    if isinstance(summary, dict) and summary.get("job_id"):
        return {**summary, "runId": summary["job_id"]}
    return summary
