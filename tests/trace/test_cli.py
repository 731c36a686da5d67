"""``domino-orchestrate lineage …``: each command through typer's runner on a store fed by
``lineage import``, its exit codes, and once through the real entry point after real CLI runs."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from domino_orchestrate.trace.cli import lineage_app

from .pipeline import DATA, churn_pipeline

ENTRY_POINT = Path(sys.executable).with_name("domino-orchestrate")


@pytest.fixture
def cli(tmp_path: Path) -> Any:
    """``cli(*args)`` runs a lineage command on this test's store; returns (code, out, err)."""
    store = tmp_path / "cli.db"
    runner = CliRunner()

    def invoke(*args: str, store_arg: bool = True) -> tuple[int, str, str]:
        extra = ["--store", str(store)] if store_arg else []
        result = runner.invoke(lineage_app, [*args, *extra], catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    pipeline = churn_pipeline()
    path = pipeline.write(tmp_path / "lineage.jsonl")
    code, out, _ = invoke("import", str(path))
    assert code == 0 and "imported 24 new event(s) of 8 run(s)" in out
    code, out, _ = invoke("import", str(path))
    assert code == 0 and "imported 0 new event(s)" in out and "24 already there" in out
    invoke.ids = pipeline.ids  # type: ignore[attr-defined]
    return invoke


def test_recent_history_inspect_and_tags(cli: Any) -> None:
    code, out, _ = cli("recent", "--limit", "2", "--json")
    recent = json.loads(out)
    assert code == 0 and [r["component"] for r in recent] == ["report", "features"]
    code, out, _ = cli("recent")
    assert code == 0 and "recent runs" in out and "COMPLETE" in out
    train1 = cli.ids["train"][0]
    code, out, _ = cli("tag", train1[:8], "suspect")
    assert code == 0 and "suspect" in out
    code, out, _ = cli("recent", "--tag", "suspect", "--json")
    assert [r["run_id"] for r in json.loads(out)] == [train1]
    code, out, _ = cli("history", "train", "--json")
    assert [r["run_id"] for r in json.loads(out)] == cli.ids["train"][::-1]
    code, out, _ = cli("inspect", train1, "--json")
    data = json.loads(out)
    assert data["code_version"] == "c0ffee1" and data["dependencies"][0]["component"] == "features"
    code, out, _ = cli("inspect", train1)
    assert code == 0 and "read from" in out and "features.parquet" in out


def test_trace_as_tree_dot_and_mermaid(cli: Any, tmp_path: Path) -> None:
    code, out, _ = cli("trace", "report.html")
    assert code == 0 and all(name in out for name in ("report", "train", "features", "FAIL"))
    code, out, _ = cli("trace", "report.html", "--json")
    assert json.loads(out)["run"]["run_id"] == cli.ids["report"][2]
    code, dot, _ = cli("trace", "report.html", "--format", "dot")
    assert code == 0 and dot.startswith("digraph trace {")
    svg = subprocess.run([shutil.which("dot") or "dot", "-Tsvg"], input=dot, text=True,
                         capture_output=True, check=True).stdout  # real Graphviz draws it
    assert svg.count('class="node"') == 4 and svg.count('class="edge"') == 3
    code, mermaid, _ = cli("trace", "report.html", "-f", "mermaid")
    assert mermaid.startswith("flowchart LR") and mermaid.count("-->") == 3


def test_stale_flag_unflag_review(cli: Any) -> None:
    code, out, _ = cli("stale", "--json")
    (finding,) = json.loads(out)
    assert code == 0 and finding["rule"] == "failed"
    code, out, _ = cli("stale", cli.ids["report"][0], "--days", "0.01")
    assert code == 0 and "fresher" in out and "old" in out
    code, out, _ = cli("stale", cli.ids["train"][1])
    assert code == 0 and out.strip() == "nothing stale"
    code, out, _ = cli("review")
    assert code == 0 and "no flagged outputs" in out
    assert cli("flag", "report.html")[0] == 0
    code, out, _ = cli("flag", "model.pkl")
    assert code == 0 and out.strip() == f"flagged {DATA}/model.pkl"
    code, out, _ = cli("review", "--json")
    review = json.loads(out)
    assert [e["run"]["run_id"] for e in review["review"][:2]] == [
        cli.ids["train"][1], cli.ids["features"][1]]
    assert review["review"][0]["coverage"] == 1.0 and len(review["flagged"]) == 2
    code, out, _ = cli("review")
    assert code == 0 and "2/2 (100%)" in out
    assert cli("unflag", "model.pkl")[0] == 0
    code, out, _ = cli("review", "--json")
    assert len(json.loads(out)["flagged"]) == 1


@pytest.mark.parametrize(("args", "code", "message"), [
    (("inspect", "0000000000"), 5, "no run with id '0000000000'"),
    (("trace", "nothing.csv"), 5, "nothing in the lineage store produced 'nothing.csv'"),
    (("history", "nobody"), 5, "no runs of component 'nobody'"),
    (("flag", "nothing.csv"), 5, "nothing in the lineage store produced"),
    (("tag", "0000000000", "x"), 5, "no run with id"),
    (("import", "/nonexistent/lineage.jsonl"), 2, "no such file"),
])
def test_unknown_names_and_bad_input_have_distinct_exit_codes(
        cli: Any, args: tuple[str, ...], code: int, message: str) -> None:
    got, out, err = cli(*args)
    assert (got, out) == (code, "") and message in " ".join(err.split())


def test_bad_store_location_and_unreachable_database(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(lineage_app, ["recent", "--store", "mysql://u:hunter2@db/x"])
    assert result.exit_code == 2 and "SQLite or PostgreSQL" in result.stderr
    assert "hunter2" not in result.stderr  # the password never reaches a message
    result = runner.invoke(lineage_app, ["recent", "--store", "postgresql+pg8000://u:hunter2@db/x"])
    assert result.exit_code == 2 and "No module named 'pg8000'" in result.stderr
    assert "u:***@db" in result.stderr and "hunter2" not in result.stderr
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = runner.invoke(lineage_app, [
        "recent", "--store", f"postgresql://u:hunter2@127.0.0.1:{port}/x"])
    assert result.exit_code == 4 and "did not answer: connection failed" in result.stderr
    assert "hunter2" not in result.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"eventType": "START"}\n')
    result = runner.invoke(lineage_app, ["import", str(bad), "--store", str(tmp_path / "s.db")])
    assert result.exit_code == 6 and f"{bad}:1: not an OpenLineage RunEvent: run is missing" in \
        " ".join(result.stderr.split())


def test_serve_hands_the_store_to_the_web_page(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from domino_orchestrate.trace import web

    served: list[tuple[Any, str, int]] = []
    # The page itself is tested in a real browser (test_web*); here only what serve passes on.
    monkeypatch.setattr(web, "serve", lambda store, host, port: served.append(
        (store.recent(1)[0].component, host, port)))
    code, _, _ = cli("serve", "--port", "0")
    assert code == 0 and served == [("report", "127.0.0.1", 0)]


def test_real_entry_point_after_real_cli_runs(domino_sandbox: Any, tmp_path: Path) -> None:
    srv = domino_sandbox
    store = tmp_path / "lineage.db"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DOMINO_", "OPENLINEAGE"))}
    env.update(DOMINO_API_HOST=srv.url, DOMINO_USER_API_KEY=srv.api_key,
               DOMINO_PROJECT="demo/quick-start", DOMINO_ORCHESTRATE_LINEAGE_STORE=str(store),
               DOMINO_ORCHESTRATE_LINEAGE_DELIVERY_WAIT="0")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ENTRY_POINT), *args], env=env, cwd=tmp_path, text=True,
                              capture_output=True, timeout=120)

    # features in-process (our emitter, the same store), train through the real CLI.
    from domino_orchestrate.core import DominoClient, PollOptions
    from domino_orchestrate.core.lineage import Dataset, LineageInfo, lineage_observers

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOMINO_ORCHESTRATE_LINEAGE_STORE", str(store))
        patch.setenv("DOMINO_ORCHESTRATE_LINEAGE_DELIVERY_WAIT", "0")
        info = LineageInfo(orchestrator="cli", job_name="features", run_key=("features",),
                           outputs=(Dataset("file", "/data/features.csv"),))
        with DominoClient(srv.url, "demo/quick-start", api_key=srv.api_key) as client:
            client.run_job("echo features", PollOptions(poll_freq=0.3, initial_interval=0.1),
                           observers=lineage_observers(info, client.config))
    done = run("run", "--title", "train", "--poll-freq", "0.3",
               "--input", "file:///data/features.csv", "--output", "file:///data/model.pkl",
               "echo train")
    assert done.returncode == 0, done.stderr
    done = run("lineage", "trace", "/data/model.pkl", "--json")
    assert done.returncode == 0, done.stderr
    root = json.loads(done.stdout)
    assert root["run"]["component"] == "train" and root["run"]["domino_job_id"]
    assert [(n["via"]["name"], n["run"]["component"]) for n in root["upstream"]] == [
        ("/data/features.csv", "features")]
