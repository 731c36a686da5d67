"""Domino's REST surface as plain data: request builders and response interpretation. No I/O.

Paths, bodies and field names follow domino-api.md §2 exactly. ``interpret`` turns a status code
and body into a value or one typed error; both transports (sync and async) call it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .errors import (
    AuthenticationError,
    BadRequestError,
    DominoAPIError,
    InvalidResponseError,
    NotFoundError,
    RateLimitedError,
    ServerError,
)
from .models import JobSpec, RunSpec

__all__ = ["ApiRequest", "Sleep", "interpret"]


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    body: Any = None
    #: Safe to re-send on a transient failure. Starts are not (see flows.start_flow).
    retry: bool = True
    #: Expect an empty or non-JSON success body (stop and restart return no useful JSON).
    empty_ok: bool = False
    not_found: type[NotFoundError] = NotFoundError


@dataclass(frozen=True)
class Sleep:
    seconds: float


def _seg(value: str) -> str:
    # python-domino concatenates unescaped (§2); we escape so an odd id can never change the path.
    return quote(str(value), safe="")


def p1(owner: str, project: str) -> str:
    return f"/v1/projects/{_seg(owner)}/{_seg(project)}"


def version() -> ApiRequest:
    return ApiRequest("GET", "/version")


def find_project(owner: str, project: str) -> ApiRequest:
    from .errors import ProjectNotFoundError

    return ApiRequest(
        "GET",
        "/v4/gateway/projects/findProjectByOwnerAndName",
        (("ownerName", owner), ("projectName", project)),
        not_found=ProjectNotFoundError,
    )


def job_start(project_id: str, spec: JobSpec, title: str | None, tier_id: str | None) -> ApiRequest:
    git_ref = spec.main_repo_git_ref
    if spec.branch:
        git_ref = {"type": "branches", "value": spec.branch}
    cluster = spec.compute_cluster_properties
    if cluster:
        # §2.3: the hardware tier ids inside compute cluster properties are wrapped as {"value": id}
        cluster = dict(cluster)
        for key in ("masterHardwareTierId", "workerHardwareTierId"):
            if isinstance(cluster.get(key), str):
                cluster[key] = {"value": cluster[key]}
    body = {
        "projectId": project_id,
        "commandToRun": spec.command,
        "commitId": spec.commit_id,
        "mainRepoGitRef": git_ref,
        "overrideHardwareTierId": tier_id,
        "onDemandSparkClusterProperties": spec.on_demand_spark_cluster_properties,
        "computeClusterProperties": cluster,
        "environmentId": spec.environment_id,
        "externalVolumeMounts": spec.external_volume_mounts,
        "title": title,
    }
    return ApiRequest("POST", "/v4/jobs/start", body=body, retry=False)


def run_start(owner: str, project: str, spec: RunSpec, title: str | None) -> ApiRequest:
    body = {
        "command": list(spec.command),
        "isDirect": spec.is_direct,
        "commitId": spec.commit_id,
        "title": title,
        "tier": spec.tier,
        "publishApiEndpoint": spec.publish_api_endpoint,
    }
    return ApiRequest("POST", p1(owner, project) + "/runs", body=body, retry=False)


def job_get(job_id: str) -> ApiRequest:
    from .errors import JobNotFoundError

    return ApiRequest("GET", f"/v4/jobs/{_seg(job_id)}", not_found=JobNotFoundError)


def run_get(owner: str, project: str, run_id: str) -> ApiRequest:
    from .errors import JobNotFoundError

    return ApiRequest("GET", f"{p1(owner, project)}/runs/{_seg(run_id)}", not_found=JobNotFoundError)


def runs_list(owner: str, project: str) -> ApiRequest:
    return ApiRequest("GET", p1(owner, project) + "/runs")


def stdout(owner: str, project: str, job_id: str) -> ApiRequest:
    from .errors import JobNotFoundError

    # Singular "run"; job ids and run ids are the same ids (§2.1).
    return ApiRequest(
        "GET", f"{p1(owner, project)}/run/{_seg(job_id)}/stdout", not_found=JobNotFoundError
    )


def commits(owner: str, project: str) -> ApiRequest:
    return ApiRequest("GET", p1(owner, project) + "/commits")


def job_stop(project_id: str, job_id: str, commit_results: bool) -> ApiRequest:
    from .errors import JobNotFoundError

    body = {"projectId": project_id, "jobId": job_id, "commitResults": commit_results}
    # Stopping twice is harmless, so a stop may be retried.
    return ApiRequest(
        "POST", "/v4/jobs/stop", body=body, empty_ok=True, not_found=JobNotFoundError
    )


def job_restart(job_id: str, use_original_input_commit: bool) -> ApiRequest:
    body = {"jobId": job_id, "shouldUseOriginalInputCommit": use_original_input_commit}
    return ApiRequest("POST", "/v4/jobs/restart", body=body, retry=False, empty_ok=True)


def jobs_list(
    project_id: str,
    *,
    order_by: str = "number",
    sort_by: str = "desc",
    page_size: int | None = None,
    page_no: int = 1,
    show_archived: bool = False,
    status: str = "all",
    tag: str | None = None,
) -> ApiRequest:
    # Parameter order and snake_case names as python-domino sends them (§2.1).
    params: list[tuple[str, str]] = [
        ("projectId", project_id),
        ("order_by", order_by),
        ("sort_by", sort_by),
    ]
    if page_size is not None:
        params.append(("page_size", str(page_size)))
    params += [
        ("page_no", str(page_no)),
        ("show_archived", str(show_archived).lower()),
        ("status", status.lower()),
    ]
    if tag:
        params.append(("tag", tag))
    return ApiRequest("GET", "/v4/jobs", tuple(params))


def runtime_details(job_id: str) -> ApiRequest:
    from .errors import JobNotFoundError

    return ApiRequest(
        "GET", f"/v4/jobs/{_seg(job_id)}/runtimeExecutionDetails", not_found=JobNotFoundError
    )


def hardware_tiers(project_id: str) -> ApiRequest:
    return ApiRequest("GET", f"/v4/projects/{_seg(project_id)}/hardwareTiers")


def environments(project_id: str) -> ApiRequest:
    return ApiRequest("GET", f"/v4/projects/{_seg(project_id)}/useableEnvironments")


def spark_defaults(project_id: str) -> ApiRequest:
    return ApiRequest("GET", f"/v4/jobs/project/{_seg(project_id)}/defaultSparkSettings")


# --- responses ---------------------------------------------------------------------------------

_EXCERPT = 200


def excerpt(content: bytes | str) -> str:
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    text = " ".join(text.split())
    return text[:_EXCERPT] + ("…" if len(text) > _EXCERPT else "")


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from datetime import datetime, timezone
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def interpret(req: ApiRequest, status: int, headers: Mapping[str, str], content: bytes) -> Any:
    """Decode a response or raise the one typed error that says what happened."""
    where = {"method": req.method, "path": req.path}
    if 200 <= status < 300:
        if not content.strip():
            if req.empty_ok:
                return None
            raise InvalidResponseError(
                f"Domino returned an empty body for {req.method} {req.path} (HTTP {status})",
                status_code=status, excerpt="", **where,
            )
        try:
            return json.loads(content)
        except ValueError:
            if req.empty_ok:
                return None
            snippet = excerpt(content)
            raise InvalidResponseError(
                f"Domino returned unreadable JSON for {req.method} {req.path} (HTTP {status}): "
                f"{snippet!r}. A proxy or load balancer may be answering instead of Domino.",
                status_code=status, excerpt=snippet, **where,
            ) from None
    snippet = excerpt(content)
    detail = _error_detail(content) or snippet
    label = f"{req.method} {req.path} → HTTP {status}"
    if status in (401, 403, 409):
        hint = (
            "temporary credentials expired; re-read the token or use an API key"
            if status == 409
            else "check the API key / token and that it can access this project"
        )
        raise AuthenticationError(
            f"{label}: {detail} ({hint})", status_code=status, excerpt=snippet, **where
        )
    if status == 404:
        raise req.not_found(
            f"{label}: not found — {detail}. Check the project (owner/name) and the job id.",
            status_code=status, excerpt=snippet, **where,
        )
    if status == 429:
        wait = retry_after_seconds(headers.get("retry-after"))
        raise RateLimitedError(
            f"{label}: rate limited by Domino" + (f"; retry after {wait:.0f}s" if wait else ""),
            retry_after=wait, status_code=status, excerpt=snippet, **where,
        )
    if status >= 500 or status == 408:
        kind = "an HTML error page" if "<html" in snippet.lower() else "a server error"
        raise ServerError(
            f"{label}: Domino returned {kind}: {snippet!r}",
            status_code=status, excerpt=snippet, **where,
        )
    if 400 <= status < 500:
        raise BadRequestError(
            f"{label}: Domino rejected the request: {detail}",
            status_code=status, excerpt=snippet, **where,
        )
    raise DominoAPIError(f"{label}: unexpected status", status_code=status, excerpt=snippet, **where)


def _error_detail(content: bytes) -> str | None:
    try:
        data = json.loads(content)
    except ValueError:
        return None
    if isinstance(data, dict):
        for key in ("message", "error", "errors", "detail"):
            if data.get(key):
                return excerpt(str(data[key]))
    return None
