"""python-domino's blocking calls on top of domino-orchestrate's core: change one import line.

``from domino import Domino`` → ``from domino_orchestrate.compat import Domino``. The methods
scripts use to start and follow executions keep python-domino's names, signatures and return
shapes (``runs_start_blocking`` returns ``{"runId", "id", "message"}``, ``job_start_blocking``
the final v4 job JSON, ``runs_list``/``jobs_list``/``job_status``/``runs_status`` Domino's JSON as it came,
``runs_stdout`` the text), with the core's behaviour underneath:

* stdout is logged line by line while the execution runs (logger ``domino_orchestrate.compat``;
  python-domino logs it once, at the end);
* ``Failed``, ``Error`` and ``Stopped`` raise ``RunFailedException`` (= ``JobFailedError``, with
  the status and the last lines of output); python-domino lets ``Error``/``Stopped`` pass on v4
  and waits out ``max_poll_time`` on a v1 run that ended without an output commit;
* at ``max_poll_time`` the execution is **stopped** (confirmed) and ``PollTimeoutError`` raised;
  Ctrl-C stops it too;
* errors are typed (``ConfigurationError``, ``AuthenticationError``, ``NotFoundError``…), never a
  404 retried until the timeout; transient errors are retried with a budget;
* ``job_stop`` confirms the stop and returns a response-like object (``status_code``, ``ok``,
  ``json()`` = the stopped job's JSON).

Credentials, ``DOMINO_*`` variables and their precedence are python-domino's (``core/config.py``);
``DOMINO_LOG_LEVEL`` sets the log level.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from domino_orchestrate.core import (
    ConfigurationError,
    DominoClient,
    JobFailedError,
    JobSpec,
    LogLine,
    PollOptions,
    PollTimeoutError,
    RunSpec,
)

__all__ = ["Domino", "PollTimeoutError", "RunFailedException", "StopResponse", "raw_job"]

log = logging.getLogger("domino_orchestrate.compat")

#: python-domino's name for a failed execution; here every Failed, Error or Stopped end.
RunFailedException = JobFailedError

_UNSET: Any = object()

#: ``job_start`` keyword arguments (python-domino 2.2.0) and the JobSpec field each fills.
_JOB_START_FIELDS = (
    "command", "commit_id", "hardware_tier_id", "hardware_tier_name", "environment_id",
    "on_demand_spark_cluster_properties", "compute_cluster_properties", "external_volume_mounts",
    "title", "main_repo_git_ref", "branch",
)


def raw_job(client: DominoClient, job_id: str) -> dict[str, Any]:
    """The v4 job JSON as Domino sent it (``GET /v4/jobs/{id}``), checked to be an object."""
    from domino_orchestrate.core import api, flows

    return dict(client._drive(flows.object_flow(api.job_get(job_id), "a job")))


def _renamed(value: Any, old_name: str, new_name: str, kwargs: dict[str, Any],
             default: Any) -> Any:
    """python-domino's camelCase spelling (``isDirect``) accepted next to the snake_case one."""
    if old_name in kwargs:
        if value is not _UNSET:
            raise ValueError(f"Pass {new_name} or {old_name}, not both")
        return kwargs.pop(old_name)
    return default if value is _UNSET else value


def _no_more(kwargs: dict[str, Any], method: str) -> None:
    if kwargs:
        raise TypeError(f"{method}() got unexpected keyword argument(s): {', '.join(kwargs)}")


def _log_line(line: LogLine) -> None:
    (log.warning if line.stream == "stderr" else log.info)("%s", line.text)


class StopResponse:
    """What ``job_stop`` returns: python-domino returns the ``requests.Response`` of the stop
    request; this has the parts scripts read (``status_code``, ``ok``, ``json()``), and ``json()``
    is the job once its stop was confirmed."""

    status_code = 200
    ok = True

    def __init__(self, job: dict[str, Any]) -> None:
        self._job = job

    def json(self) -> dict[str, Any]:
        """The stopped job's v4 JSON (its ``statuses.executionStatus`` is terminal)."""
        return self._job

    def __repr__(self) -> str:
        return "<StopResponse [200]>"


class Domino:
    """python-domino's ``Domino`` for starting and following executions.

    >>> domino = Domino("alice/churn")        # DOMINO_API_HOST, DOMINO_USER_API_KEY, …
    >>> domino.runs_start_blocking(["main.py", "a"], title="nightly")
    {'runId': '…', 'message': 'Run for project alice/churn started. …'}

    Arguments and precedence as python-domino: ``api_proxy``, ``auth_token``,
    ``domino_token_file``, ``api_key``, then ``DOMINO_API_PROXY``, ``DOMINO_TOKEN_FILE``,
    ``DOMINO_USER_API_KEY``; ``host`` or ``DOMINO_API_HOST``. A bad project, host or credential
    raises ``ConfigurationError`` (a ``ValueError``) at once.
    """

    def __init__(self, project: str, api_key: str | None = None, host: str | None = None,
                 domino_token_file: str | None = None, auth_token: str | None = None,
                 api_proxy: str | None = None) -> None:
        if "/" not in str(project):
            raise ConfigurationError(f"Domino project must be 'owner/name', got {project!r}")
        self._client = DominoClient(host, project, api_key=api_key, auth_token=auth_token,
                                    domino_token_file=domino_token_file, api_proxy=api_proxy)
        self.project = project
        if not logging.getLogger().handlers:
            # python-domino configures logging (level DOMINO_LOG_LEVEL, default INFO) so that a
            # plain script shows the job's output; do the same for scripts that did not.
            logging.basicConfig(level=os.environ.get("DOMINO_LOG_LEVEL", "INFO").strip().upper()
                                or "INFO")
            logging.getLogger("domino_orchestrate").setLevel(
                os.environ.get("DOMINO_LOG_LEVEL", "INFO").strip().upper() or "INFO")

    def __repr__(self) -> str:
        return f"Domino({self.project!r}, host={self._client.config.host!r})"

    @property
    def client(self) -> DominoClient:
        """The core client underneath (everything else domino-orchestrate offers)."""
        return self._client

    @property
    def project_id(self) -> str:
        """The project's id (``GET /v4/gateway/projects/findProjectByOwnerAndName``)."""
        return self._client.project_id()

    def _raw(self, request: Any, what: str = "an object") -> dict[str, Any]:
        from domino_orchestrate.core import flows

        return dict(self._client._drive(flows.object_flow(request, what)))

    # --- v1 runs ---------------------------------------------------------------------------
    def runs_list(self) -> dict[str, Any]:
        """The project's runs, most recently queued first: ``{"objectType", "uri", "data"}``."""
        from domino_orchestrate.core import api

        owner, name = self._client.config.owner_and_project
        return self._raw(api.runs_list(owner, name), "a list of runs")

    def runs_status(self, run_id: Any = _UNSET, **kwargs: Any) -> dict[str, Any]:
        """One run's JSON (``GET …/runs/{runId}``)."""
        from domino_orchestrate.core import api

        run_id = _renamed(run_id, "runId", "run_id", kwargs, None)
        _no_more(kwargs, "runs_status")
        owner, name = self._client.config.owner_and_project
        return self._raw(api.run_get(owner, name, str(run_id)), "a run")

    def _run_spec(self, command: Sequence[str] | str, is_direct: Any, commit_id: Any,
                  title: str | None, tier: str | None, publish_api_endpoint: Any,
                  kwargs: dict[str, Any], method: str) -> RunSpec:
        is_direct = _renamed(is_direct, "isDirect", "is_direct", kwargs, False)
        commit_id = _renamed(commit_id, "commitId", "commit_id", kwargs, None)
        publish = _renamed(publish_api_endpoint, "publishApiEndpoint", "publish_api_endpoint",
                           kwargs, None)
        _no_more(kwargs, method)
        parts = (command,) if isinstance(command, str) else tuple(command)
        # python-domino sends what it was given: None as JSON null
        return RunSpec(command=parts, is_direct=is_direct, commit_id=commit_id, title=title,
                       tier=tier, publish_api_endpoint=publish)

    def _started_message(self, run_id: str) -> dict[str, Any]:
        url = self._client.job_url(run_id)
        return {"runId": run_id, "id": run_id,
                "message": f"Run for project {self.project} started. You can view progress "
                           f"here: {url}"}

    def runs_start(self, command: Sequence[str] | str, is_direct: Any = _UNSET,
                   commit_id: Any = _UNSET, title: str | None = None, tier: str | None = None,
                   publish_api_endpoint: Any = _UNSET, **kwargs: Any) -> dict[str, Any]:
        """Start a v1 run (``command`` = file and arguments); returns ``{"runId", "id",
        "message"}``."""
        spec = self._run_spec(command, is_direct, commit_id, title, tier, publish_api_endpoint,
                              kwargs, "runs_start")
        return self._started_message(self._client.start_run(spec).job_id)

    def runs_start_blocking(self, command: Sequence[str] | str, is_direct: Any = _UNSET,
                            commit_id: Any = _UNSET, title: str | None = None,
                            tier: str | None = None, publish_api_endpoint: Any = _UNSET,
                            poll_freq: float = 5, max_poll_time: float = 6000,
                            retry_count: int = 5, **kwargs: Any) -> dict[str, Any]:
        """Start a v1 run and follow it to its end, logging stdout as it comes.

        Returns Domino's start answer as python-domino does: ``{"runId", "id", "message"}``.
        Raises ``RunFailedException`` on Failed/Error/Stopped, ``PollTimeoutError`` after
        ``max_poll_time`` (the run is stopped first).
        """
        spec = self._run_spec(command, is_direct, commit_id, title, tier, publish_api_endpoint,
                              kwargs, "runs_start_blocking")
        options = PollOptions(poll_freq=poll_freq, max_poll_time=max_poll_time,
                              retry_count=retry_count)
        handle = self._client.start_run(spec)
        self._client.wait(handle, options, on_line=_log_line)
        return self._started_message(handle.job_id)

    def runs_stdout(self, run_id: Any = _UNSET, **kwargs: Any) -> str:
        """The run's (or job's) stdout as text, Domino's HTML wrapping removed."""
        run_id = _renamed(run_id, "runId", "run_id", kwargs, None)
        _no_more(kwargs, "runs_stdout")
        lines = self._client.stdout(str(run_id))
        return "".join(line.text + "\n" for line in lines)

    def get_run_log(self, run_id: Any = _UNSET, include_setup_log: Any = _UNSET,
                    **kwargs: Any) -> str:
        """Setup log (unless ``include_setup_log=False``) and stdout, as text."""
        run_id = _renamed(run_id, "runId", "run_id", kwargs, None)
        setup = _renamed(include_setup_log, "includeSetupLog", "include_setup_log", kwargs, True)
        _no_more(kwargs, "get_run_log")
        lines = self._client.stdout(str(run_id), include_setup_log=bool(setup))
        return "".join(line.text + "\n" for line in lines)

    def run_stop(self, run_id: Any = _UNSET, save_changes: Any = _UNSET,
                 **kwargs: Any) -> StopResponse:
        """Stop a run (python-domino: the same as ``job_stop``)."""
        run_id = _renamed(run_id, "runId", "run_id", kwargs, None)
        save = _renamed(save_changes, "saveChanges", "save_changes", kwargs, True)
        _no_more(kwargs, "run_stop")
        if not run_id:
            raise ValueError("run_id is required")
        return self.job_stop(str(run_id), commit_results=bool(save))

    # --- v4 jobs ---------------------------------------------------------------------------
    @staticmethod
    def _job_spec(kwargs: dict[str, Any], method: str) -> JobSpec:
        fields = {name: kwargs.pop(name) for name in _JOB_START_FIELDS if name in kwargs}
        _no_more(kwargs, method)
        if "command" not in fields:
            raise TypeError(f"{method}() missing required argument: 'command'")
        return JobSpec(**fields)

    def job_start(self, command: str, **kwargs: Any) -> dict[str, Any]:
        """Start a v4 job (every python-domino ``job_start`` argument); returns the job JSON."""
        handle = self._client.start_job(self._job_spec({"command": command, **kwargs},
                                                       "job_start"))
        return raw_job(self._client, handle.job_id)

    def job_start_blocking(self, poll_freq: float = 5, max_poll_time: float = 6000,
                           ignore_exceptions: Any = None, **kwargs: Any) -> dict[str, Any]:
        """Start a v4 job (``job_start`` arguments) and follow it to its end, logging stdout as
        it comes; returns the final job JSON.

        ``ignore_exceptions`` is accepted and not needed: transient errors are retried with a
        budget and the rest raise at once, typed. Raises ``RunFailedException`` on
        Failed/Error/Stopped and ``PollTimeoutError`` after ``max_poll_time`` (job stopped).
        """
        spec = self._job_spec(dict(kwargs), "job_start_blocking")
        options = PollOptions(poll_freq=poll_freq, max_poll_time=max_poll_time)
        handle = self._client.start_job(spec)
        self._client.wait(handle, options, on_line=_log_line)
        return raw_job(self._client, handle.job_id)

    def job_status(self, job_id: str) -> dict[str, Any]:
        """The job's v4 JSON (``statuses.isCompleted``, ``statuses.executionStatus``, …)."""
        return raw_job(self._client, job_id)

    def job_stop(self, job_id: str, commit_results: bool = True) -> StopResponse:
        """Stop the job and wait (up to 60 s) until Domino confirms it ended."""
        self._client.stop_job(job_id, commit_results=commit_results)
        return StopResponse(raw_job(self._client, job_id))

    def jobs_list(self, project_id: str, order_by: str = "number", sort_by: str = "desc",
                  page_size: int | None = None, page_no: int = 1, show_archived: str = "false",
                  status: str = "all", tag: str | None = None) -> dict[str, Any]:
        """One page of the project's jobs as Domino sends it: ``{"jobs": [...], …}``."""
        from domino_orchestrate.core import api

        archived = str(show_archived).strip().lower() in {"true", "t", "yes", "1"}
        return self._raw(api.jobs_list(project_id, order_by=order_by, sort_by=sort_by,
                                       page_size=page_size, page_no=page_no,
                                       show_archived=archived, status=status, tag=tag),
                         "a list of jobs")

    def hardware_tiers_list(self) -> list[dict[str, Any]]:
        """The project's hardware tiers as Domino sends them."""
        from domino_orchestrate.core import api, flows

        pid = self._client.project_id()
        return list(self._client._drive(flows.list_flow(api.hardware_tiers(pid),
                                                        "a list of hardware tiers")))
