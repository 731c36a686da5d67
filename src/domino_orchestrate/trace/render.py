"""A trace drawn as text: Graphviz DOT (built with the ``graphviz`` library), Mermaid, and a rich
tree for the terminal.

Each run is one graph node (a run that fed two inputs is drawn once); each edge goes from the
producing run to the run that read its output, labelled with that dataset. Names are user data:
DOT escaping is the graphviz library's; Mermaid labels are quoted with ``"`` replaced by
``#quot;`` (Mermaid's entity), and node ids are derived from run ids, never from names.

What must not live here: queries (``store.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .model import ComponentRun, DatasetRef, TraceNode

if TYPE_CHECKING:
    import graphviz

__all__ = ["edges", "format_time", "to_dot", "to_graph", "to_mermaid", "to_rich_tree"]

_FILL = {"COMPLETE": "#d4edda", "FAIL": "#f8d7da", "ABORT": "#fde2c8", "RUNNING": "#d6e4f0"}


def edges(root: TraceNode) -> Iterator[tuple[ComponentRun, ComponentRun, DatasetRef]]:
    """``(producer, consumer, dataset)`` for every edge of the tree, each once."""
    seen: set[tuple[str, str, str]] = set()
    for node in root.walk():
        for up in node.upstream:
            assert up.via is not None
            key = (up.run.run_id, node.run.run_id, up.via.key)
            if key not in seen:
                seen.add(key)
                yield up.run, node.run, up.via


def _when(run: ComponentRun) -> str:
    when = run.end_time or run.start_time
    if when is None:
        return ""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _label(run: ComponentRun) -> str:
    lines = [run.component, f"{run.status} {_when(run)}".strip(), f"run {run.run_id[:8]}"]
    if run.code_version:
        lines.append(f"code {run.code_version[:12]}")
    return "\n".join(lines)


def _node_id(run: ComponentRun) -> str:
    return "r_" + re.sub(r"[^A-Za-z0-9_]", "_", run.run_id)


def _job_link(run: ComponentRun) -> str | None:
    url = run.domino_job_url
    return url if url and url.startswith(("http://", "https://")) else None


def to_graph(root: TraceNode, link: Callable[[ComponentRun], str | None] = _job_link,
             output: DatasetRef | None = None) -> graphviz.Digraph:
    """The trace as a ``graphviz.Digraph``: each run a node linking to ``link(run)`` (default:
    its Domino job, when http(s)); with ``output``, that dataset as a last node after the root.

    Every name goes through ``graphviz.escape``: a backslash stays a backslash and a name like
    ``<script>…</script>`` is text, not an HTML-like label (which ``dot`` would refuse).
    """
    import graphviz

    graph = graphviz.Digraph("trace", graph_attr={"rankdir": "LR"},
                             node_attr={"shape": "box", "style": "rounded,filled",
                                        "fontname": "Helvetica"},
                             edge_attr={"fontname": "Helvetica", "fontsize": "10"})
    for run in root.runs():
        attrs = {"fillcolor": _FILL.get(run.status, "#eeeeee")}
        url = link(run)
        if url:
            attrs.update(URL=url, target="_top",
                         tooltip=graphviz.escape(f"{run.component} run {run.run_id}"))
        graph.node(_node_id(run), graphviz.escape(_label(run)), **attrs)
    for producer, consumer, dataset in edges(root):
        graph.edge(_node_id(producer), _node_id(consumer), label=graphviz.escape(dataset.name))
    if output is not None:
        graph.node("output", graphviz.escape(output.name), shape="note", style="filled",
                   fillcolor="#ffffff")
        graph.edge(_node_id(root.run), "output")
    return graph


def to_dot(root: TraceNode) -> str:
    """Graphviz DOT source of the trace (``dot -Tsvg`` draws it)."""
    return to_graph(root).source


def _mermaid_text(text: str) -> str:
    return (text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;")
            .replace(">", "#gt;").replace("\n", "<br/>"))


def to_mermaid(root: TraceNode) -> str:
    """Mermaid ``flowchart`` source of the trace (GitHub and most wikis render it)."""
    lines = ["flowchart LR"]
    for run in root.runs():
        lines.append(f'    {_node_id(run)}["{_mermaid_text(_label(run))}"]')
        lines.append(f"    class {_node_id(run)} {run.status.lower()}")
    for producer, consumer, dataset in edges(root):
        lines.append(f'    {_node_id(producer)} -->|"{_mermaid_text(dataset.name)}"| '
                     f"{_node_id(consumer)}")
    for status, fill in _FILL.items():
        lines.append(f"    classDef {status.lower()} fill:{fill}")
    return "\n".join(lines) + "\n"


def _rich_label(node: TraceNode) -> str:
    from rich.markup import escape

    run = node.run
    colour = {"COMPLETE": "green", "FAIL": "red", "ABORT": "yellow"}.get(run.status, "blue")
    parts = [f"[bold]{escape(run.component)}[/bold]", f"[{colour}]{run.status}[/{colour}]",
             escape(_when(run)), f"run {escape(run.run_id)}"]
    if run.code_version:
        parts.append(f"code {escape(run.code_version[:12])}")
    if run.domino_job_url:
        parts.append(escape(run.domino_job_url))
    label = "  ".join(p for p in parts if p)
    if node.via is not None:
        label = f"[dim]{escape(node.via.name)} ←[/dim] {label}"
    if node.repeated:
        label += "  [dim](its inputs are shown above)[/dim]"
    return label


def to_rich_tree(root: TraceNode, title: str | None = None) -> object:
    """A ``rich.tree.Tree`` of the trace for the terminal."""
    from rich.markup import escape
    from rich.tree import Tree

    tree = Tree(escape(title) if title else _rich_label(root))

    def add(branch: Tree, node: TraceNode) -> None:
        for up in node.upstream:
            add(branch.add(_rich_label(up)), up)

    if title:
        add(tree.add(_rich_label(root)), root)
    else:
        add(tree, root)
    return tree


def format_time(when: datetime | None) -> str:
    """A run time for tables: ``YYYY-MM-DD HH:MM:SS`` UTC, or empty."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if when else ""
