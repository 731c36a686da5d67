"""``domino-orchestrate lineage …``: the lineage store's questions on the command line.

``lineage_app`` is a typer app; the main CLI mounts it as ``domino-orchestrate lineage``. Every
command takes ``--store`` (a path or SQLAlchemy URL; default ``$DOMINO_ORCHESTRATE_LINEAGE_STORE``,
else ``$XDG_DATA_HOME/domino-orchestrate/lineage.db``) and ``--json`` (machine-readable output:
each answer's ``to_dict()``). Human output uses rich tables and trees.

Exit codes: 0 done; 2 bad input (options, store location, unreadable file); 4 the store's
database did not answer; 5 unknown run, output or component; 6 an import file with an event that
is not an OpenLineage RunEvent (nothing from that file is stored unless ``--skip-invalid``).

What must not live here: any lineage rule (``store.py``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from .errors import EXIT_CONFIG, LineageStoreError

__all__ = ["lineage_app"]

lineage_app = typer.Typer(
    name="lineage",
    help="Ask the lineage store: recent runs, a component's history, the trace of an output, "
         "what is stale, and which runs flagged outputs share (mltrace's questions).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

StoreOption = Annotated[str | None, typer.Option(
    "--store", metavar="URL_OR_PATH", envvar="DOMINO_ORCHESTRATE_LINEAGE_STORE",
    help="the lineage store: a SQLite file path or a SQLAlchemy URL "
         "(postgresql+psycopg://user@host/db); default ~/.local/share/domino-orchestrate/"
         "lineage.db", show_default=False)]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON (each answer's to_dict())")]
LimitOption = Annotated[int, typer.Option("--limit", "-n", min=1, help="at most this many runs")]
TagOption = Annotated[str | None, typer.Option("--tag", help="only runs with this tag")]

#: Characters of a run id shown in tables (a unique prefix of 6+ is accepted everywhere).
ID_WIDTH = 13


def _stdout() -> Any:
    from rich.console import Console

    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


def _fail(message: str, code: int) -> typer.Exit:
    from rich.console import Console
    from rich.markup import escape

    # soft_wrap: a message is one line, whatever the terminal's width (greppable, copyable).
    Console(file=sys.stderr, highlight=False, soft_wrap=True).print(
        f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


@contextmanager
def _store(location: str | None) -> Iterator[Any]:
    """The store, with every lineage error turned into its message and exit code."""
    from .store import LineageStore

    try:
        with LineageStore(location) as store:
            yield store
    except LineageStoreError as exc:
        raise _fail(str(exc), exc.exit_code) from None


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _runs_table(runs: Sequence[Any], title: str) -> Any:
    from rich.markup import escape
    from rich.table import Table

    from .render import format_time

    table = Table(title=title, title_justify="left")
    # A run id prefix is enough for inspect/tag/trace (--json has the whole ids).
    table.add_column("run id", no_wrap=True)
    table.add_column("component", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("started (UTC)", no_wrap=True)
    table.add_column("took", no_wrap=True, justify="right")
    for column in ("Domino job", "outputs"):
        table.add_column(column, overflow="fold")
    colours = {"COMPLETE": "green", "FAIL": "red", "ABORT": "yellow"}
    for run in runs:
        colour = colours.get(run.status, "blue")
        took = ""
        if run.start_time and run.end_time:
            seconds = (run.end_time - run.start_time).total_seconds()
            took = f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m"
        table.add_row(
            escape(run.run_id[:ID_WIDTH]), escape(run.component),
            f"[{colour}]{run.status}[/{colour}]", format_time(run.start_time), took,
            escape(run.domino_job_id or ""), escape(", ".join(o.name for o in run.outputs)))
    return table


def _show_runs(runs: Sequence[Any], title: str, as_json: bool) -> None:
    if as_json:
        _print_json([run.to_dict() for run in runs])
    elif not runs:
        typer.echo(f"{title}: none")
    else:
        _stdout().print(_runs_table(runs, title))


@lineage_app.command("import")
def import_(
    files: Annotated[list[Path], typer.Argument(
        help="OpenLineage JSON-lines files (what the file transport writes)", show_default=False)],
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help="store the valid events, list the bad lines (default: a file "
                               "with a bad line stores nothing)")] = False,
    store: StoreOption = None, as_json: JsonOption = False,
) -> None:
    """Import OpenLineage JSON-lines files into the store (importing twice changes nothing)."""
    for path in files:
        if not path.is_file():
            raise _fail(f"{path}: no such file", EXIT_CONFIG)
    with _store(store) as lineage:
        try:
            result = lineage.import_files(files, skip_invalid=skip_invalid)
        except OSError as exc:
            raise _fail(f"{exc.filename or ''}: {exc.strerror or exc}", EXIT_CONFIG) from None
        if as_json:
            _print_json({**result.to_dict(), "store": lineage.url})
            return
        typer.echo(f"imported {result.new} new event(s) of {result.runs} run(s) into "
                   f"{lineage.url}; {result.duplicates} already there, {result.ignored} "
                   f"without a run ignored")
        for problem in result.invalid:
            typer.echo(f"skipped: {problem}", err=True)


@lineage_app.command()
def recent(limit: LimitOption = 20, tag: TagOption = None, store: StoreOption = None,
           as_json: JsonOption = False) -> None:
    """The most recent component runs, newest first."""
    with _store(store) as lineage:
        _show_runs(lineage.recent(limit, tag=tag), "recent runs", as_json)


@lineage_app.command()
def history(
    component: Annotated[str, typer.Argument(
        help="an OpenLineage job name, or namespace/name", show_default=False)],
    limit: LimitOption = 20, tag: TagOption = None, store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """The runs of one component, newest first."""
    with _store(store) as lineage:
        _show_runs(lineage.history(component, limit, tag=tag), f"runs of {component}", as_json)


@lineage_app.command()
def inspect(
    run_id: Annotated[str, typer.Argument(help="a run id (or a unique prefix of 6+ characters)",
                                          show_default=False)],
    store: StoreOption = None, as_json: JsonOption = False,
) -> None:
    """Everything the store knows about one run, and the runs it read its inputs from."""
    with _store(store) as lineage:
        run = lineage.inspect(run_id)
        deps = lineage.dependencies(run.run_id)
    if as_json:
        _print_json({**run.to_dict(), "dependencies": [
            {"via": via.to_dict(), "run_id": dep.run_id, "component": dep.component,
             "status": dep.status} for via, dep in deps]})
        return
    from rich.markup import escape
    from rich.table import Table

    from .render import format_time

    table = Table(show_header=False, title=f"run {escape(run.run_id)}", title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    fields: list[tuple[str, Any]] = [
        ("component", run.key), ("status", run.status), ("Domino status", run.domino_status),
        ("started (UTC)", format_time(run.start_time)), ("ended (UTC)", format_time(run.end_time)),
        ("code version", run.code_version), ("Domino job", run.domino_job_id),
        ("job URL", run.domino_job_url), ("orchestrator", run.orchestrator),
        ("parent run", f"{run.parent_name or ''} {run.parent_run_id or ''}".strip()),
        ("inputs", "\n".join(r.key + (f" @ {r.version}" if r.version else "")
                             for r in run.inputs)),
        ("outputs", "\n".join(r.key + (f" @ {r.version}" if r.version else "")
                              for r in run.outputs)),
        ("read from", "\n".join(f"{via.name} ← {dep.component} {dep.run_id} ({dep.status})"
                                for via, dep in deps)),
        ("tags", ", ".join(run.tags)), ("error", run.error_message),
        ("events", run.event_count),
    ]
    for name, value in fields:
        if value not in (None, ""):
            table.add_row(name, escape(str(value)))
    _stdout().print(table)


class TraceFormat(str, Enum):
    """How ``trace`` prints the tree."""

    tree = "tree"
    dot = "dot"
    mermaid = "mermaid"


@lineage_app.command()
def trace(
    output: Annotated[str, typer.Argument(
        help="an output dataset (name or namespace/name) or a run id", show_default=False)],
    fmt: Annotated[TraceFormat, typer.Option(
        "--format", "-f", help="tree (terminal), dot (Graphviz) or mermaid")] = TraceFormat.tree,
    store: StoreOption = None, as_json: JsonOption = False,
) -> None:
    """The runs that led to an output, as a tree, DOT or Mermaid.

    For each input of a run, the most recent earlier run that produced it, back to the start.
    """
    from . import render

    with _store(store) as lineage:
        root = lineage.trace(output)
    if as_json:
        _print_json(root.to_dict())
    elif fmt is TraceFormat.dot:
        typer.echo(render.to_dot(root), nl=False)
    elif fmt is TraceFormat.mermaid:
        typer.echo(render.to_mermaid(root), nl=False)
    else:
        _stdout().print(render.to_rich_tree(root, title=f"trace of {output}"))


@lineage_app.command()
def stale(
    output: Annotated[str | None, typer.Argument(
        help="check this output's trace (default: the latest run of every component)",
        show_default=False)] = None,
    days: Annotated[float, typer.Option(
        "--days", min=0, help="a dependency older than this many days is stale")] = 30,
    store: StoreOption = None, as_json: JsonOption = False,
) -> None:
    """Runs that may need a rerun, each with the reason.

    A dependency older than --days (mltrace), a dependency whose component has completed
    fresher runs since (mltrace), or a dependency run that failed (Domino Failed, Error or
    Stopped).
    """
    with _store(store) as lineage:
        findings = lineage.stale(output, threshold=timedelta(days=days))
    if as_json:
        _print_json([finding.to_dict() for finding in findings])
        return
    if not findings:
        typer.echo("nothing stale")
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="stale runs", title_justify="left")
    for column in ("run", "rule", "reason"):
        table.add_column(column, overflow="fold")
    for finding in findings:
        table.add_row(escape(f"{finding.run.component} {finding.run.run_id[:ID_WIDTH]}"),
                      finding.rule, escape(finding.reason))
    _stdout().print(table)


def _flag_command(name: str, action: Callable[[Any, str], Any], verb: str) -> None:
    def command(
        output: Annotated[str, typer.Argument(
            help="an output dataset (name or namespace/name)", show_default=False)],
        store: StoreOption = None, as_json: JsonOption = False,
    ) -> None:
        with _store(store) as lineage:
            dataset = action(lineage, output)
        if as_json:
            _print_json({**dataset.to_dict(), "flagged": name == "flag"})
        else:
            typer.echo(f"{verb} {dataset.key}")

    command.__doc__ = ("Flag an output for review (see lineage review)." if name == "flag"
                       else "Remove an output's review flag.")
    lineage_app.command(name)(command)


_flag_command("flag", lambda store, output: store.flag(output), "flagged")
_flag_command("unflag", lambda store, output: store.unflag(output), "unflagged")


@lineage_app.command()
def review(limit: Annotated[int | None, typer.Option(
               "--limit", "-n", min=1, help="at most this many runs (default: all)")] = None,
           store: StoreOption = None, as_json: JsonOption = False) -> None:
    """Rank the runs behind flagged outputs: start debugging at the top.

    Runs in the most flagged outputs' traces come first (mltrace's coverage); ties, newest first.
    """
    with _store(store) as lineage:
        flagged = lineage.flagged()
        ranking = lineage.review(limit)
    if as_json:
        _print_json({"flagged": [item.to_dict() for item in flagged],
                     "review": [entry.to_dict() for entry in ranking]})
        return
    if not flagged:
        typer.echo("no flagged outputs: flag one with `lineage flag OUTPUT`")
        return
    from rich.markup import escape
    from rich.table import Table

    from .render import format_time

    typer.echo("flagged outputs: " + ", ".join(item.dataset.key for item in flagged))
    table = Table(title="runs behind the flagged outputs", title_justify="left")
    for column in ("coverage", "component", "run id", "status", "started (UTC)"):
        table.add_column(column, overflow="fold")
    for entry in ranking:
        table.add_row(f"{entry.count}/{entry.total} ({entry.coverage:.0%})",
                      escape(entry.run.component), escape(entry.run.run_id[:ID_WIDTH]),
                      entry.run.status,
                      format_time(entry.run.start_time))
    _stdout().print(table)


@lineage_app.command()
def tag(
    run_id: Annotated[str, typer.Argument(help="a run id (or a unique prefix)",
                                          show_default=False)],
    tags: Annotated[list[str], typer.Argument(help="tags to add", show_default=False)],
    store: StoreOption = None, as_json: JsonOption = False,
) -> None:
    """Tag a run (filter with lineage recent --tag or lineage history --tag)."""
    with _store(store) as lineage:
        try:
            run = lineage.tag(run_id, *tags)
        except ValueError as exc:
            raise _fail(str(exc), EXIT_CONFIG) from None
    if as_json:
        _print_json(run.to_dict())
    else:
        typer.echo(f"{run.run_id}: {', '.join(run.tags)}")


@lineage_app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port (0: any free port)")] = 8765,
    store: StoreOption = None,
) -> None:
    """Serve a read-only web page of the store (runs, traces, stale and flagged outputs)."""
    from .web import serve as serve_page

    with _store(store) as lineage:
        serve_page(lineage, host, port)
