"""The lineage web page through Starlette's TestClient: status codes, the JSON twins, escaping,
no write endpoints, and the text fallback when Graphviz's ``dot`` is missing. (The page in a real
Chromium, clicked through: ``test_web_browser.py``.)

The store is seeded with A1's churn pipeline (features -> train -> report, re-run with new code, a
failed features run) built by our own event builder, plus one hostile run: a component and a
dataset whose names are markup, and a ``javascript:`` Domino job URL.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from domino_orchestrate.trace import render
from domino_orchestrate.trace.store import LineageStore
from domino_orchestrate.trace.web import create_app

from .pipeline import Pipeline, churn_pipeline

#: Names that are markup: shown as text everywhere, never run.
XSS_COMPONENT = '<img src=x onerror="window.__xss=1">publish'
XSS_DATASET = "<script>window.__xss=2</script>"
XSS_URL = "javascript:window.__xss=3"
PAGES = ("/", "/flagged", "/stale", "/stale?days=5", "/trace?output=report.html",
         "/history?component=train")


@dataclass
class Seeded:
    """A store holding the churn pipeline and the hostile run; ``ids``: component -> run ids."""

    path: Path
    ids: dict[str, list[str]]

    def open(self) -> LineageStore:
        return LineageStore(self.path)


def _hostile_run(pipeline: Pipeline) -> str:
    """A run whose component and output are markup and whose job URL is ``javascript:``, and
    an ``archive`` run that reads that output (so a trace has an edge named with markup)."""
    run_id = pipeline.run(XSS_COMPONENT, day=14, inputs=["report.html"], outputs=[XSS_DATASET],
                          commit="c0ffee4")
    for event in pipeline.events:
        if event["run"]["runId"] == run_id:
            facets = event["run"]["facets"]
            facets["dominoJob"]["url"] = XSS_URL
            for tag in facets["tags"]["tags"]:
                if tag["key"] == "domino.job_url":
                    tag["value"] = XSS_URL
    pipeline.run("archive", day=14.1, inputs=[XSS_DATASET], outputs=["archive.zip"])
    return run_id


def seed(path: Path) -> Seeded:
    """Ingest the churn pipeline and the hostile run; tag one run; flag two outputs."""
    pipeline = churn_pipeline()
    _hostile_run(pipeline)
    with LineageStore(path) as store:
        store.ingest_many(pipeline.events)
        store.tag(pipeline.ids["train"][1], "candidate")
        store.flag("report.html")
        store.flag(XSS_DATASET)
    return Seeded(path, pipeline.ids)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return seed(tmp_path_factory.mktemp("web") / "lineage.db")


@pytest.fixture
def client(seeded: Seeded) -> Iterator[TestClient]:
    with seeded.open() as store, TestClient(create_app(store)) as test_client:
        yield test_client


def _json(value: Any) -> Any:
    """``value`` as it looks after a JSON round trip (tuples become lists, and so on)."""
    return json.loads(json.dumps(value))


# --- status codes -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*PAGES, "/static/style.css", "/api/recent", "/api/flagged",
                                  "/api/stale", "/api/trace?output=report.html"])
def test_pages_answer_200(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


def test_unknown_run_is_a_404_page_naming_it(client: TestClient) -> None:
    response = client.get("/runs/no-such-run-id")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "no run with id &#39;no-such-run-id&#39;" in response.text
    assert 'href="/"' in response.text  # a way back

    api = client.get("/api/runs/no-such-run-id")
    assert api.status_code == 404
    assert "no-such-run-id" in api.json()["error"]


@pytest.mark.parametrize(("path", "status", "says"), [
    ("/trace?output=nothing.csv", 404, "nothing in the lineage store produced"),
    ("/history?component=nobody", 404, "no runs of component"),
    ("/stale?output=nothing.csv", 404, "nothing in the lineage store produced"),
    ("/trace", 400, "add ?output="),
    ("/history", 400, "add ?component="),
    ("/?limit=many", 400, "limit must be a whole number"),
    ("/?limit=0", 400, "limit must be between 1 and 1000"),
    ("/stale?days=soon", 400, "days must be a number"),
    ("/stale?days=-3", 400, "days must be more than 0"),
    ("/stale?days=nan", 400, "days must be more than 0 and at most 36500, got nan"),
])
def test_bad_requests_get_one_clear_error(client: TestClient, path: str, status: int,
                                          says: str) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert says in response.text.replace("&#39;", "'")
    api = client.get("/api/recent" + path[1:] if path.startswith("/?") else "/api" + path)
    assert api.status_code == status
    assert says in api.json()["error"]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/", "/flagged", "/api/flagged", "/trace?output=report.html"])
def test_nothing_writes(client: TestClient, seeded: Seeded, method: str, path: str) -> None:
    assert client.request(method, path).status_code == 405
    with seeded.open() as store:  # still flagged, still there
        assert {item.dataset.name for item in store.flagged()} == {"report.html", XSS_DATASET}


# --- what the pages say -----------------------------------------------------------------------


def test_json_twins_are_the_stores_answers(client: TestClient, seeded: Seeded) -> None:
    with seeded.open() as store:
        assert client.get("/api/recent?limit=3").json() == _json(
            [run.to_dict() for run in store.recent(3)])
        assert client.get("/api/recent?tag=candidate").json() == _json(
            [run.to_dict() for run in store.recent(50, tag="candidate")])
        train = seeded.ids["train"][1]
        assert client.get(f"/api/runs/{train}").json() == _json(store.inspect(train).to_dict())
        assert client.get("/api/trace?output=report.html").json() == _json(
            store.trace("report.html").to_dict())
        assert client.get("/api/stale?output=report.html&days=5").json() == _json(
            [f.to_dict() for f in store.stale("report.html", timedelta(days=5))])
        flagged = client.get("/api/flagged").json()
        assert flagged["review"] == _json([entry.to_dict() for entry in store.review()])
        assert [item["name"] for item in flagged["flagged"]] == [
            item.dataset.name for item in store.flagged()]


def test_run_page_shows_every_field(client: TestClient, seeded: Seeded) -> None:
    with seeded.open() as store:
        run = store.inspect(seeded.ids["report"][2])
        producers = dict(store.dependencies(run.run_id))
    text = client.get(f"/runs/{run.run_id}").text
    assert run.run_id in text
    assert "2026-09-14 08:00:00 UTC" in text and "2026-09-14 08:05:00 UTC" in text  # times
    assert "5m 00s" in text
    assert "COMPLETE" in text and "Domino: Succeeded" in text
    assert "<code>c0ffee2</code>" in text
    assert f'href="{run.domino_job_url}"' in text
    assert "churn_dag" in text and run.parent_run_id in text  # the orchestrator's run
    for ref, producer in producers.items():  # each input links to the run it was read from
        assert ref.name in text
        assert f'href="/runs/{producer.run_id}"' in text
    assert "team=growth" in text


def test_dot_missing_shows_the_graph_as_text(client: TestClient,
                                            monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on it
    response = client.get("/trace?output=report.html")
    assert response.status_code == 200
    assert "<svg" not in response.text
    assert "dot program was not found on PATH" in response.text
    assert "digraph trace {" in response.text  # the DOT text ...
    assert "flowchart LR" in response.text  # ... and the Mermaid text instead


def test_the_trace_graph_links_each_run_to_its_page(client: TestClient, seeded: Seeded) -> None:
    with seeded.open() as store:
        runs = store.trace("report.html").runs()
    text = client.get("/trace?output=report.html").text
    svg = text[text.index("<svg"):text.index("</svg>")]
    links = re.findall(r'<a xlink:href="([^"]+)"', svg)
    assert sorted(links) == sorted(f"/runs/{run.run_id}" for run in runs)
    assert svg.count('class="node"') == len(runs) + 1  # each run once, and the output
    assert ">report.html</text>" in svg


# --- escaping ---------------------------------------------------------------------------------


def test_markup_in_names_is_text_on_every_page(client: TestClient, seeded: Seeded) -> None:
    hostile = seeded.ids[XSS_COMPONENT][0]
    paths = [*PAGES, f"/runs/{hostile}", f"/history?component={XSS_COMPONENT}",
             f"/trace?output={XSS_DATASET}", "/trace?output=archive.zip",
             f"/stale?output={XSS_DATASET}&days=5"]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        lowered = response.text.lower()
        assert "<script" not in lowered, path  # the page has no script at all
        assert "<img" not in lowered, path
        assert not re.search(r'(href|src)="\s*javascript:', lowered), path
        assert "script-src" not in response.headers["content-security-policy"]  # none allowed
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
    run_page = client.get(f"/runs/{hostile}").text
    assert "&lt;script&gt;window.__xss=2&lt;/script&gt;" in run_page
    assert "&lt;img src=x onerror=&#34;window.__xss=1&#34;&gt;publish" in run_page
    # the javascript: job URL is not a link: the job id is shown as text
    with seeded.open() as store:
        job_id = store.inspect(hostile).domino_job_id
    assert f'<span class="job">{job_id}</span>' in run_page


def test_dot_draws_a_trace_whose_names_are_markup(client: TestClient, seeded: Seeded) -> None:
    """``render.to_dot`` used to put a dataset named ``<script>…</script>`` into the DOT source
    as an HTML-like label, which ``dot`` refuses: the trace could not be drawn at all."""
    with seeded.open() as store:
        root = store.trace("archive.zip")
    dot = render.to_dot(root)
    drawn = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True,
                           timeout=30)
    assert drawn.returncode == 0, drawn.stderr
    assert "&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;publish" in drawn.stdout
    assert "&lt;script&gt;window.__xss=2&lt;/script&gt;</text>" in drawn.stdout  # the edge
    page = client.get("/trace?output=archive.zip").text
    assert '<figure class="graph" id="trace-graph"><svg' in page  # drawn, not the text fallback


def test_the_page_reads_the_store_live_and_says_when_it_is_gone(tmp_path: Path) -> None:
    path = tmp_path / "lineage.db"
    pipeline = churn_pipeline()
    with LineageStore(path) as store, TestClient(create_app(store)) as client:
        assert "No runs in this store yet." in client.get("/").text
        store.ingest_many(pipeline.events)  # e.g. the DominoStoreTransport of a running DAG
        assert client.get("/").text.count('class="run"') == 8

        store.close()  # its connections: the next request opens the path again
        path.unlink()
        path.mkdir()  # the store's path is now a directory: SQLite cannot open it
        response = client.get("/")
        assert response.status_code == 503
        assert "did not answer" in response.text
        assert client.get("/api/recent").json()["error"].startswith(f"lineage store {store.url}")


def test_a_store_file_replaced_by_junk_while_serving_is_a_503_saying_so(tmp_path: Path) -> None:
    path = tmp_path / "lineage.db"
    with LineageStore(path) as store, TestClient(create_app(store)) as client:
        store.ingest_many(churn_pipeline().events)
        assert client.get("/").status_code == 200

        store.close()  # its connections: the next request opens the path again
        junk = tmp_path / "download.part"
        junk.write_bytes(b"not a database\n" * 1000)
        junk.replace(path)  # e.g. a copy or download landing on the store's path
        for page in ("/", "/flagged", "/stale", f"/runs/{'0' * 12}"):
            response = client.get(page)
            assert response.status_code == 503, (page, response.text)
            assert "is not a SQLite database" in response.text
        api = client.get("/api/recent")
        assert api.status_code == 503
        assert api.json()["error"].startswith(f"lineage store {store.url} is not a SQLite database")
        assert path.read_bytes().startswith(b"not a database")  # left as it was
