"""The sandbox's HTTP routes: the Domino API subset of domino-api.md §2 plus `/__sandbox__/`.

What lives here: `SandboxContext` (everything one sandbox owns) and `build_app`, which returns
the ASGI app (stats -> faults -> auth -> Starlette routes). Handlers validate input, create
executions and hand them to the supervisor; they never touch processes. Every error is a 4xx with
a JSON body `{"message": ..., "status": ...}`; nothing a client sends may cause a 500.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import views
from .faults import ConnectionRegistry, FaultInjector, FaultMiddleware
from .middleware import AuthMiddleware, RequestStats, StatsMiddleware, TokenStore
from .processes import Supervisor, resolve_v1_command, resolve_v4_command
from .state import (
    ALL_STATUSES,
    ENVIRONMENTS,
    TERMINAL_STATUSES,
    Execution,
    ExecutionStore,
    Project,
    find_tier,
)
from .stdout import render_setup, render_stdout


@dataclass
class SandboxContext:
    """What the routes of one sandbox share: executions, the process supervisor, fault injection,
    request counts, accepted tokens and live connections."""

    store: ExecutionStore
    supervisor: Supervisor
    faults: FaultInjector
    stats: RequestStats
    tokens: TokenStore
    registry: ConnectionRegistry

    def stats_snapshot(self) -> dict[str, Any]:
        """Request counts plus starts per title, executions per status and injected faults."""
        snap = self.stats.snapshot()
        with self.store.lock:
            snap["starts_by_title"] = dict(self.store.starts_by_title)
        snap["executions"] = self.store.status_counts()
        snap["faults"] = self.faults.snapshot()["injected"]
        return snap

    def reset_stats(self) -> None:
        """Zero the request, fault and start counts (executions stay)."""
        self.stats.reset()
        self.faults.reset_counts()
        with self.store.lock:
            self.store.starts_by_title.clear()


class ApiError(Exception):
    """Raised by a route to answer with Domino's error JSON (``message``, ``status``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message, "status": status}, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = json.loads(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"Malformed JSON body: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return data


def _opt(body: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(key)
    if value is not None and not isinstance(value, kind):
        raise ApiError(400, f"Field '{key}' has the wrong type")
    return value


def _required_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"Missing required field '{key}' (non-empty string)")
    return value


def _start_record(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """The start request as received (body, and which auth header carried the credential: never
    its value), so tests can check that every parameter reached Domino."""
    headers = request.headers
    auth = ("Authorization: Bearer" if headers.get("authorization", "").lower().startswith("bearer ")
            else "X-Domino-Api-Key" if "x-domino-api-key" in headers else None)
    return {"startRequest": body, "startAuth": auth}


def build_app(ctx: SandboxContext) -> Any:
    """The Starlette app serving ``ctx``: the Domino v1/v4 routes the client uses and the sandbox's
    own ``/__sandbox__/`` control routes."""
    store, supervisor = ctx.store, ctx.supervisor

    def project_from_path(request: Request) -> Project:
        owner, name = request.path_params["owner"], request.path_params["project"]
        project = store.find_project(owner, name)
        if project is None:
            raise ApiError(404, f"Project {owner}/{name} not found")
        return project

    def project_by_id(project_id: str) -> Project:
        project = store.project_by_id(project_id)
        if project is None:
            raise ApiError(404, f"Project {project_id} not found")
        return project

    def execution(exec_id: str, project: Project | None = None) -> Execution:
        ex = store.get(exec_id)
        if ex is None or (project is not None and ex.project is not project):
            raise ApiError(404, f"Run or job {exec_id} not found")
        return ex

    def start(project: Project, **kwargs: Any) -> Execution:
        ex = store.create(project, **kwargs)
        supervisor.submit(ex)
        return ex

    # -- general ------------------------------------------------------------------------------
    async def version(request: Request) -> Response:
        return JSONResponse(views.VERSION)

    async def find_project(request: Request) -> Response:
        owner = request.query_params.get("ownerName")
        name = request.query_params.get("projectName")
        if not owner or not name:
            raise ApiError(400, "Query parameters ownerName and projectName are required")
        project = store.find_project(owner, name)
        if project is None:
            raise ApiError(404, f"Project {owner}/{name} not found")
        return JSONResponse(views.project_json(store, project))

    # -- v1 runs (domino-api.md §2.2) ---------------------------------------------------------
    async def v1_runs(request: Request) -> Response:
        project = project_from_path(request)
        if request.method == "GET":
            data = [views.run_json(store, ex) for ex in store.list_project(project.id)]
            return JSONResponse({"objectType": "list", "uri": request.url.path, "data": data})
        body = await _body(request)
        command = body.get("command")
        if (
            not isinstance(command, list)
            or not command
            or not all(isinstance(c, str) for c in command)
            or not command[0].strip()
        ):
            raise ApiError(400, "Field 'command' must be a non-empty list of strings")
        is_direct = bool(_opt(body, "isDirect", bool))
        title = _opt(body, "title", str)
        commit_id = _opt(body, "commitId", str)
        _opt(body, "publishApiEndpoint", bool)
        tier = find_tier(_opt(body, "tier", str))
        if tier is None:
            raise ApiError(400, f"Hardware tier {body.get('tier')!r} not found")
        argv, use_shell = resolve_v1_command(command, is_direct)
        ex = start(
            project,
            api="v1",
            command_display=" ".join(command),
            argv=argv,
            use_shell=use_shell,
            title=title,
            hardware_tier=tier,
            environment_id=None,
            commit_id=commit_id,
            extra={"isDirect": is_direct, **_start_record(request, body)},
        )
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "runId": ex.id,
                "id": ex.id,
                "message": f"Run for project {project.full_name} started. You can view progress "
                f"here: {base}/{project.full_name}#r/{ex.id}",
            }
        )

    async def v1_run(request: Request) -> Response:
        ex = execution(request.path_params["runId"], project_from_path(request))
        return JSONResponse(views.run_json(store, ex))

    async def v1_stdout(request: Request) -> Response:
        ex = execution(request.path_params["runId"], project_from_path(request))
        with store.lock:
            size, setup_lines = ex.log_size, ex.setup_lines
        stdout = await run_in_threadpool(render_stdout, ex.log_path, size)
        return JSONResponse({"setup": render_setup(setup_lines), "stdout": stdout})

    async def v1_commits(request: Request) -> Response:
        project = project_from_path(request)
        with store.lock:
            return JSONResponse(list(project.commits))

    # -- v4 jobs (domino-api.md §2.3) ---------------------------------------------------------
    async def v4_start(request: Request) -> Response:
        body = await _body(request)
        project_id = _required_str(body, "projectId")
        command = _required_str(body, "commandToRun")
        project = project_by_id(project_id)
        title = _opt(body, "title", str)
        commit_id = _opt(body, "commitId", str)
        tier = find_tier(_opt(body, "overrideHardwareTierId", str))
        if tier is None:
            raise ApiError(400, f"Hardware tier {body.get('overrideHardwareTierId')!r} not found")
        env_id = _opt(body, "environmentId", str)
        if env_id is not None and env_id not in dict(ENVIRONMENTS):
            raise ApiError(400, f"Environment {env_id!r} not found")
        git_ref = _opt(body, "mainRepoGitRef", dict)
        for key in ("onDemandSparkClusterProperties", "computeClusterProperties"):
            _opt(body, key, dict)
        _opt(body, "externalVolumeMounts", list)
        argv, use_shell = resolve_v4_command(command)
        ex = start(
            project,
            api="v4",
            command_display=command,
            argv=argv,
            use_shell=use_shell,
            title=title,
            hardware_tier=tier,
            environment_id=env_id,
            commit_id=commit_id,
            extra={"mainRepoGitRef": git_ref, **_start_record(request, body)},
        )
        return JSONResponse(views.job_json(store, ex))

    async def v4_stop(request: Request) -> Response:
        body = await _body(request)
        ex = execution(_required_str(body, "jobId"))
        project_id = _opt(body, "projectId", str)
        if project_id is not None and project_by_id(project_id) is not ex.project:
            raise ApiError(404, f"Job {ex.id} not found in project {project_id}")
        _opt(body, "commitResults", bool)
        # Idempotent: stopping a finished job is a no-op 200 so a retried stop never fails.
        supervisor.request_stop(ex)
        return JSONResponse(views.job_json(store, ex))

    async def v4_restart(request: Request) -> Response:
        body = await _body(request)
        old = execution(_required_str(body, "jobId"))
        original_commit = _opt(body, "shouldUseOriginalInputCommit", bool)
        ex = start(
            old.project,
            api=old.api,
            command_display=old.command_display,
            argv=list(old.argv),
            use_shell=old.use_shell,
            title=old.title,
            hardware_tier=old.hardware_tier,
            environment_id=old.environment_id,
            commit_id=old.input_commit_id if original_commit in (None, True) else None,
            extra={**old.extra, "restartedFrom": old.id},
        )
        return JSONResponse(views.job_json(store, ex))

    async def v4_job(request: Request) -> Response:
        job_id = request.path_params["jobId"]
        if job_id in ("start", "stop", "restart"):
            raise ApiError(405, f"Method {request.method} not allowed on /v4/jobs/{job_id}")
        return JSONResponse(views.job_json(store, execution(job_id)))

    async def v4_jobs(request: Request) -> Response:
        return JSONResponse(list_jobs(request.query_params))

    def list_jobs(query: Any) -> dict[str, Any]:
        project_id = query.get("projectId")
        if not project_id:
            raise ApiError(400, "Query parameter projectId is required")
        project = project_by_id(project_id)
        wanted = _status_filter(query.get("status") or "all")
        try:
            page_size = int(query["page_size"]) if query.get("page_size") else None
            page_no = int(query.get("page_no") or 1)
        except ValueError:
            raise ApiError(400, "page_size and page_no must be integers") from None
        if page_no < 1 or (page_size is not None and page_size < 1):
            raise ApiError(400, "page_size and page_no must be positive")
        jobs = [views.job_json(store, ex) for ex in store.list_project(project.id)]
        jobs = [j for j in jobs if wanted is None or j["statuses"]["executionStatus"] in wanted]
        order_by = query.get("order_by") or "number"
        sort_key = {
            "title": lambda j: j["title"] or "",
            "status": lambda j: j["statuses"]["executionStatus"],
            "submissionTime": lambda j: j["stageTime"]["submissionTime"],
        }.get(order_by, lambda j: j["number"])
        jobs.sort(key=sort_key, reverse=(query.get("sort_by") or "desc").lower() != "asc")
        total = len(jobs)
        if page_size is not None:
            jobs = jobs[(page_no - 1) * page_size : page_no * page_size]
        return {"jobs": jobs, "totalCount": total}

    async def runtime_details(request: Request) -> Response:
        ex = execution(request.path_params["jobId"])
        return JSONResponse(views.runtime_details_json(store, ex))

    async def hardware_tiers(request: Request) -> Response:
        project_by_id(request.path_params["projectId"])
        return JSONResponse(views.tiers_json())

    async def environments(request: Request) -> Response:
        project_by_id(request.path_params["projectId"])
        return JSONResponse(views.environments_json())

    async def spark_settings(request: Request) -> Response:
        project_by_id(request.path_params["projectId"])
        return JSONResponse(views.spark_settings_json())

    # -- out-of-band (never faulted, no auth) -------------------------------------------------
    async def oob_faults(request: Request) -> Response:
        if request.method == "POST":
            body = await _body(request)
            try:
                return JSONResponse(
                    ctx.faults.configure(
                        rate=body.get("rate"),
                        kinds=body.get("kinds"),
                        seed=body.get("seed"),
                        slow_seconds=body.get("slow_seconds"),
                    )
                )
            except (TypeError, ValueError) as exc:
                raise ApiError(400, str(exc)) from None
        return JSONResponse(ctx.faults.snapshot())

    async def oob_stats(request: Request) -> Response:
        return JSONResponse(ctx.stats_snapshot())

    async def oob_stats_reset(request: Request) -> Response:
        ctx.reset_stats()
        return JSONResponse({"ok": True})

    async def oob_tokens(request: Request) -> Response:
        body = await _body(request)
        token = _required_str(body, "token")
        action = body.get("action", "add")
        actions = {"add": ctx.tokens.add, "expire": ctx.tokens.expire, "revoke": ctx.tokens.revoke}
        if action not in actions:
            raise ApiError(400, "action must be one of add, expire, revoke")
        actions[action](token)
        return JSONResponse({"ok": True, "token": token, "action": action})

    async def oob_config(request: Request) -> Response:
        if request.method == "POST":
            body = await _body(request)
            delay = _opt(body, "phase_delay", (int, float))
            if delay is not None:
                store.phase_delay = max(0.0, float(delay))
        return JSONResponse({"phase_delay": store.phase_delay})

    async def oob_execution(request: Request) -> Response:
        ex = execution(request.path_params["execId"])
        with store.lock:
            info = {
                "id": ex.id,
                "status": ex.status,
                "pid": ex.pid,
                "exitCode": ex.exit_code,
                "workdir": str(ex.workdir),
                "argv": ex.argv,
                "useShell": ex.use_shell,
                "stdoutUnterminated": ex.stdout_unterminated,
                "stderrUnterminated": ex.stderr_unterminated,
                "failureMessage": ex.failure_message,
                # What the start request carried (body, auth header name), for tests.
                "startRequest": ex.extra.get("startRequest"),
                "startAuth": ex.extra.get("startAuth"),
            }
        return JSONResponse(info)

    async def oob_output(request: Request) -> Response:
        ex = execution(request.path_params["execId"])
        stream = request.query_params.get("stream", "stdout")
        if stream not in ("stdout", "stderr"):
            raise ApiError(400, "stream must be stdout or stderr")
        data = await run_in_threadpool(read_raw, ex, stream)
        return Response(data, media_type="application/octet-stream")

    routes = [
        Route("/version", version, methods=["GET"]),
        Route("/v4/gateway/projects/findProjectByOwnerAndName", find_project, methods=["GET"]),
        Route("/v1/projects/{owner}/{project}/runs", v1_runs, methods=["GET", "POST"]),
        Route("/v1/projects/{owner}/{project}/runs/{runId}", v1_run, methods=["GET"]),
        Route("/v1/projects/{owner}/{project}/run/{runId}/stdout", v1_stdout, methods=["GET"]),
        Route("/v1/projects/{owner}/{project}/commits", v1_commits, methods=["GET"]),
        Route("/v4/jobs/start", v4_start, methods=["POST"]),
        Route("/v4/jobs/stop", v4_stop, methods=["POST"]),
        Route("/v4/jobs/restart", v4_restart, methods=["POST"]),
        Route("/v4/jobs", v4_jobs, methods=["GET"]),
        Route("/v4/jobs/{jobId}", v4_job, methods=["GET"]),
        Route("/v4/jobs/{jobId}/runtimeExecutionDetails", runtime_details, methods=["GET"]),
        Route("/v4/projects/{projectId}/hardwareTiers", hardware_tiers, methods=["GET"]),
        Route("/v4/projects/{projectId}/useableEnvironments", environments, methods=["GET"]),
        Route("/v4/jobs/project/{projectId}/defaultSparkSettings", spark_settings, methods=["GET"]),
        Route("/__sandbox__/faults", oob_faults, methods=["GET", "POST"]),
        Route("/__sandbox__/stats", oob_stats, methods=["GET"]),
        Route("/__sandbox__/stats/reset", oob_stats_reset, methods=["POST"]),
        Route("/__sandbox__/tokens", oob_tokens, methods=["POST"]),
        Route("/__sandbox__/config", oob_config, methods=["GET", "POST"]),
        Route("/__sandbox__/executions/{execId}", oob_execution, methods=["GET"]),
        Route("/__sandbox__/executions/{execId}/output", oob_output, methods=["GET"]),
    ]

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return _error(exc.status, exc.message)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, str(exc.detail))

    async def server_error(request: Request, exc: Exception) -> Response:
        return _error(500, f"Internal sandbox error: {type(exc).__name__}: {exc}")

    app = Starlette(
        routes=routes,
        exception_handlers={
            ApiError: api_error,
            HTTPException: http_error,
            Exception: server_error,
        },
    )
    inner = AuthMiddleware(app, ctx.tokens)
    faulted = FaultMiddleware(inner, ctx.faults, ctx.registry)
    return StatsMiddleware(faulted, ctx.stats, app.routes)


def _status_filter(value: str) -> set[str] | None:
    """`jobs_list(status=...)` sends a lower-case value (domino-api.md §2.4)."""
    value = value.lower()
    if value == "all":
        return None
    if value == "completed":
        return set(TERMINAL_STATUSES)
    if value == "active":
        return {s for s in ALL_STATUSES if s not in TERMINAL_STATUSES}
    if value == "running":
        return {s for s in ALL_STATUSES if s not in TERMINAL_STATUSES and s != "Queued"}
    exact = {s for s in ALL_STATUSES if s.lower() == value}
    if not exact:
        raise ApiError(400, f"Unknown status filter {value!r}")
    return exact


def read_raw(ex: Execution, stream: str) -> bytes:
    """The raw bytes the execution wrote to ``stream`` so far (empty before it wrote any)."""
    try:
        return ex.raw_path(stream).read_bytes()
    except FileNotFoundError:
        return b""
