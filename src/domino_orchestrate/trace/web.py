"""The read-only lineage web page: recent runs, a run, a component's history, the trace of an
output drawn as a graph, stale outputs and flagged outputs with the review ranking.

What lives here: HTTP routing (Starlette), page rendering (Jinja2 templates in ``templates/``,
CSS in ``static/``) and drawing a trace with Graphviz as inline SVG. Every page has a JSON twin
under ``/api/``.

What must not live here: any lineage rule. Each answer comes from the store (``store.py``); this
module only shows it. There are no write endpoints: flagging and tagging stay in the CLI and the
Python API, so serving the page never changes what it shows.

Everything shown is user data (dataset and job names come from whoever emitted the events), so
templates autoescape, Graphviz escapes the SVG's text, links are built with percent-encoding, a
Domino job link is shown as a link only when it is ``http(s)``, and a Content-Security-Policy
forbids scripts outright.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import graphviz
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from . import render
from .errors import LineageStoreError, NotFoundError
from .model import ComponentRun, DatasetRef, TraceNode

if TYPE_CHECKING:
    from .store import LineageStore

__all__ = ["create_app", "run_path", "safe_link", "serve"]

log = logging.getLogger("domino_orchestrate.trace.web")

HERE = Path(__file__).parent
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_DAYS = 36500  # a century: the largest staleness threshold /stale?days= takes
_Number = TypeVar("_Number", int, float)

#: No scripts at all, styles and images only from this server: even a name that slipped past
#: escaping could not run.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

#: The CSS class of each OpenLineage run state.
STATUS_CLASS = {"COMPLETE": "ok", "FAIL": "fail", "ABORT": "aborted", "RUNNING": "running"}
NO_DOT = ("Graphviz's dot program was not found on PATH, so the graph is shown as text below. "
          "Install Graphviz (apt-get install graphviz) to see it drawn.")
DOT_FAILED = "Graphviz's dot program could not draw this graph, so it is shown as text below."


# --- drawing --------------------------------------------------------------------------------


def _inline_svg(root: TraceNode, output: DatasetRef | None) -> str:
    """The trace drawn by Graphviz as SVG to put inside the page, nodes linking to run pages.

    Graphviz escapes every text and attribute it writes; the links are ours (``run_path``).
    """
    graph = render.to_graph(root, link=lambda run: run_path(run.run_id), output=output)
    svg = graph.pipe(format="svg", encoding="utf-8")
    # Inline SVG in HTML needs neither the XML prolog nor the DOCTYPE nor Graphviz's comments.
    return svg[svg.index("<svg"):]


# --- helpers the templates use --------------------------------------------------------------


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def _when(value: datetime | None) -> str:
    return _utc(value).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def _when_short(value: datetime | None) -> str:
    return _utc(value).strftime("%Y-%m-%d %H:%M") if value else "—"


def _duration(run: ComponentRun) -> str:
    if run.start_time is None or run.end_time is None:
        return "—"
    seconds = int((_utc(run.end_time) - _utc(run.start_time)).total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {seconds:02d}s" if hours else f"{minutes}m {seconds:02d}s"


def safe_link(url: str | None) -> str | None:
    """``url`` if it is an http(s) URL, else None: a ``javascript:`` "job URL" stays text."""
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


def run_path(run_id: str) -> str:
    """The page of one run."""
    return "/runs/" + quote(run_id, safe="")


def _query_path(path: str, **params: Any) -> str:
    kept = {key: value for key, value in params.items() if value not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


def _own_tags(tags: Sequence[str]) -> list[str]:
    """Tags minus those our emitter derives from fields a table already shows (job id, URL,
    status, commit, project, orchestrator): what a user tagged or declared stays."""
    return [tag for tag in tags if not tag.startswith(("domino.", "orchestrator="))]


def _status_class(status: str) -> str:
    return STATUS_CLASS.get(status, "unknown")


def _templates() -> Jinja2Templates:
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters.update(when=_when, when_short=_when_short, duration=_duration, status_class=_status_class,
                       safe_link=safe_link, own_tags=_own_tags)
    env.globals.update(
        run_path=run_path,
        history_path=lambda component: _query_path("/history", component=component),
        trace_path=lambda output: _query_path("/trace", output=output),
        stale_path=lambda output=None: _query_path("/stale", output=output),
        recent_path=lambda tag=None: _query_path("/", tag=tag),
    )
    return Jinja2Templates(env=env)


# --- the app --------------------------------------------------------------------------------


def _number(request: Request, name: str, parse: Callable[[str], _Number], kind: str,
            within: Callable[[_Number], bool], bounds: str) -> _Number | None:
    """The query parameter ``name`` read by ``parse`` (None when absent or empty). A value
    ``parse`` rejects, or one outside ``within``, is a 400 saying what to give instead."""
    raw = request.query_params.get(name, "")
    if raw == "":
        return None
    try:
        value = parse(raw)
    except ValueError:
        raise HTTPException(400, f"{name} must be {kind}, got {raw!r}") from None
    if not within(value):  # NaN too: it compares false
        raise HTTPException(400, f"{name} must be {bounds}, got {raw}")
    return value


def _limit(request: Request) -> int:
    limit = _number(request, "limit", int, "a whole number", lambda n: 1 <= n <= MAX_LIMIT,
                    f"between 1 and {MAX_LIMIT}")
    return DEFAULT_LIMIT if limit is None else limit


def _required(request: Request, name: str) -> str:
    value = request.query_params.get(name, "").strip()
    if not value:
        raise HTTPException(400, f"add ?{name}=… to the address")
    return value


def _threshold(request: Request) -> timedelta | None:
    days = _number(request, "days", float, "a number of days", lambda d: 0 < d <= MAX_DAYS,
                   f"more than 0 and at most {MAX_DAYS}")
    return None if days is None else timedelta(days=days)


def _json(items: Any) -> JSONResponse:
    return JSONResponse([item.to_dict() for item in items])


def create_app(store: LineageStore) -> Starlette:
    """The read-only web app over ``store``: HTML pages and their JSON twins under ``/api/``.

    Pages: ``/`` (recent runs, ``?tag=&limit=``), ``/runs/{run_id}``, ``/history?component=``,
    ``/trace?output=`` (dataset name, ``namespace/name`` or run id), ``/stale[?output=&days=]``,
    ``/flagged`` (flagged outputs and the review ranking). Only GET: nothing here writes.

    Args:
        store: the lineage store to read.

    Returns:
        A Starlette app; ``serve`` runs it, or mount it in any ASGI server.
    """
    templates = _templates()

    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def wants_json(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    def recent(request: Request) -> Response:
        tag = request.query_params.get("tag") or None
        limit = _limit(request)
        runs = store.recent(limit=limit, tag=tag)
        if wants_json(request):
            return _json(runs)
        return page(request, "recent.html", runs=runs, tag=tag, limit=limit)

    def run(request: Request) -> Response:
        found = store.inspect(request.path_params["run_id"])
        if wants_json(request):
            return JSONResponse(found.to_dict())
        producers = {ref: producer for ref, producer in store.dependencies(found.run_id)}
        parent = None
        if found.parent_run_id:
            try:
                parent = store.inspect(found.parent_run_id)
            except NotFoundError:  # the orchestrator's run is usually not a component run
                parent = None
        return page(request, "run.html", run=found, parent=parent, producers=producers)

    def history(request: Request) -> Response:
        component = _required(request, "component")
        tag = request.query_params.get("tag") or None
        limit = _limit(request)
        runs = store.history(component, limit=limit, tag=tag)
        if wants_json(request):
            return _json(runs)
        return page(request, "history.html", component=component, runs=runs, limit=limit,
                    tag=tag)

    def trace(request: Request) -> Response:
        output = _required(request, "output")
        root = store.trace(output)
        if wants_json(request):
            return JSONResponse(root.to_dict())
        _, dataset = store.resolve_output(output)
        svg: Markup | None = None
        problem: str | None = None
        try:
            svg = Markup(_inline_svg(root, dataset))  # Graphviz escaped every text in it
        except graphviz.ExecutableNotFound:
            problem = NO_DOT
        except graphviz.CalledProcessError as exc:
            log.warning("dot could not draw the trace of %r: %s", output, exc)
            problem = DOT_FAILED
        gave: dict[str, list[str]] = {root.run.run_id: [dataset.name] if dataset else []}
        for node in root.walk():
            if node.via is not None and node.via.name not in gave.setdefault(node.run.run_id, []):
                gave[node.run.run_id].append(node.via.name)
        return page(request, "trace.html", output=output, runs=root.runs(), gave=gave,
                    svg=svg, problem=problem,
                    dot=render.to_dot(root), mermaid=render.to_mermaid(root))

    def stale(request: Request) -> Response:
        output = request.query_params.get("output") or None
        threshold = _threshold(request)
        findings = (store.stale(output, threshold) if threshold is not None
                    else store.stale(output))
        if wants_json(request):
            return _json(findings)
        return page(request, "stale.html", output=output, findings=findings,
                    days=request.query_params.get("days") or "")

    def flagged(request: Request) -> Response:
        outputs = store.flagged()
        ranking = store.review()
        if wants_json(request):
            return JSONResponse({"flagged": [item.to_dict() for item in outputs],
                                 "review": [item.to_dict() for item in ranking]})
        return page(request, "flagged.html", outputs=outputs, ranking=ranking)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if wants_json(request):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        return page(request, "error.html", status_code=exc.status_code, status=exc.status_code,
                    detail=exc.detail)

    async def store_error(request: Request, exc: Exception) -> Response:
        # The store's errors already say what to fix (and never carry a database password).
        # Anything but an unknown name means the store cannot be read right now (gone, locked,
        # replaced by a file that is not a database): the page is unavailable, not broken.
        status = 404 if isinstance(exc, NotFoundError) else 503
        return await http_error(request, HTTPException(status, str(exc)))

    async def security_headers(request: Request, call_next: RequestResponseEndpoint
                               ) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    routes: list[Route | Mount] = []
    for path, endpoint in (("/", recent), ("/runs/{run_id:path}", run), ("/history", history),
                           ("/trace", trace), ("/stale", stale), ("/flagged", flagged)):
        routes.append(Route(path, endpoint, methods=["GET"]))
        routes.append(Route("/api/recent" if path == "/" else "/api" + path, endpoint,
                            methods=["GET"]))
    routes.append(Mount("/static", StaticFiles(directory=HERE / "static"), name="static"))
    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, LineageStoreError: store_error},
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=security_headers)],
    )


def serve(store: LineageStore, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the lineage page for ``store`` with uvicorn until interrupted (Ctrl-C).

    Args:
        store: the lineage store to show.
        host: the address to listen on; the default keeps the page on this machine.
        port: the TCP port (0 lets the system pick one; uvicorn logs the address).
    """
    import uvicorn

    uvicorn.run(create_app(store), host=host, port=port, log_level="info")
