"""The lineage web page in a real headless Chromium (Debian's, via Playwright), served the way a
user serves it: ``domino-orchestrate lineage serve --store PATH`` in its own process.

A user lands on the recent runs, filters by tag, clicks through to a run, opens its trace, reads
the graph's nodes and follows one, then checks the stale and flagged pages; names that are
markup stay text and no script ever runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from . import browser
from .test_web import XSS_COMPONENT, XSS_DATASET, Seeded, seed

chromium = browser.chromium  # the session's Chromium and a tab per test (fixtures, by name)
browser_page = browser.browser_page

pytestmark = pytest.mark.xdist_group("browser")
SCREENSHOTS = Path("/tmp")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Seeded]]:
    seeded = seed(tmp_path_factory.mktemp("web-browser") / "lineage.db")
    with browser.ServedPage(seeded.path) as served:
        yield served.url, seeded


def _node_texts(page: Any) -> list[str]:
    """The text of each node drawn in the trace graph (its lines joined by spaces)."""
    return [" ".join(node.locator("text").all_text_contents())
            for node in page.locator("#trace-graph svg g.node").all()]


def test_recent_run_trace_and_back(browser_page: Any, site: tuple[str, Seeded]) -> None:
    url, seeded = site
    page = browser_page
    failed_loads: list[str] = []
    page.on("response", lambda response: failed_loads.append(response.url)
            if response.status >= 400 else None)
    page.goto(url + "/")
    assert page.locator("h1").inner_text() == "Recent runs"
    page.wait_for_load_state("networkidle")
    assert failed_loads == []  # the stylesheet and the icon load too
    rows = page.locator("table.runs tbody tr")
    with seeded.open() as store:
        recent = store.recent(50)
        report = store.inspect(seeded.ids["report"][2])  # the last report: reads a failed run
        trace = store.trace(report.run_id)
        producers = store.dependencies(report.run_id)
    assert rows.count() == len(recent) == 10
    assert rows.first.locator("a.component").inner_text() == recent[0].component

    # to the run: every field
    page.locator(f'a.run-link[href="/runs/{report.run_id}"]').click()
    page.wait_for_url(f"**/runs/{report.run_id}")
    fields = page.locator("dl.fields")
    assert page.locator("#run-id").inner_text() == report.run_id
    text = fields.inner_text()
    for expected in ("COMPLETE", "Domino: Succeeded", "2026-09-14 08:00:00 UTC",
                     "2026-09-14 08:05:00 UTC", "5m 00s", "c0ffee2", "churn_dag",
                     "model.pkl", "features.parquet", "report.html", "team=growth"):
        assert expected in text, expected
    job = fields.locator("a.job")
    assert job.get_attribute("href") == report.domino_job_url
    assert job.inner_text() == report.domino_job_id
    links = fields.locator("a.producer")  # each input links to the run it was read from
    assert sorted(links.evaluate_all("links => links.map(a => a.pathname)")) == sorted(
        f"/runs/{run.run_id}" for _, run in producers)
    assert len(producers) == 2

    # to its trace: the graph's nodes are the trace's runs, each linking to its page
    page.locator("#trace-run").click()
    page.wait_for_selector("#trace-graph svg g.node")
    texts = _node_texts(page)
    assert len(texts) == len(trace.runs()) == 4  # report, train#2, features#2, features#3
    for run in trace.runs():
        assert any(text.startswith(f"{run.component} {run.status}") and run.run_id[:8] in text
                   for text in texts), (run, texts)
    assert any(text.startswith("features FAIL") for text in texts)
    links = page.locator("#trace-graph svg a").evaluate_all(
        "links => links.map(a => a.getAttribute('xlink:href'))")
    assert sorted(links) == sorted(f"/runs/{run.run_id}" for run in trace.runs())
    edges = [" ".join(edge.locator("text").all_text_contents())
             for edge in page.locator("#trace-graph svg g.edge").all()]
    # report#3 <- train#2 (model.pkl), report#3 <- features#3, train#2 <- features#2
    assert sorted(edges) == ["features.parquet", "features.parquet", "model.pkl"]
    page.screenshot(path=str(SCREENSHOTS / "lineage-trace.png"), full_page=True)

    # click a node: the failed features run's page
    failed = next(run for run in trace.runs() if run.status == "FAIL")
    page.locator("#trace-graph svg g.node", has_text="FAIL").locator("a").click()
    page.wait_for_url(f"**/runs/{failed.run_id}")
    assert "job failed: exit 3" in page.locator("pre.error-message").inner_text()
    assert "Domino: Error" in page.locator("dl.fields").inner_text()


def test_search_a_dataset_and_filter_by_tag(browser_page: Any, site: tuple[str, Seeded]) -> None:
    url, seeded = site
    page = browser_page
    page.goto(url + "/")
    page.locator("#trace-output").fill("report.html")
    page.locator("header form.search button").click()
    page.wait_for_selector("#trace-graph svg")
    assert page.locator("h1").inner_text() == "Trace of report.html"
    texts = _node_texts(page)
    assert "report.html" in texts  # the traced file, after the run that wrote it
    assert sum(text.startswith("report COMPLETE") for text in texts) == 1

    page.goto(url + "/")
    page.locator("#tag").fill("candidate")
    page.locator("form.filter button").click()
    page.wait_for_url("**/?tag=candidate*")
    rows = page.locator("table.runs tbody tr")
    assert rows.count() == 1
    assert rows.first.locator("a.run-link").get_attribute("href") == \
        f"/runs/{seeded.ids['train'][1]}"
    assert "candidate" in rows.first.locator("a.tag").all_inner_texts()


def test_stale_and_flagged_pages(browser_page: Any, site: tuple[str, Seeded]) -> None:
    url, seeded = site
    page = browser_page
    page.goto(url + "/stale")
    rules = set(page.locator("table.findings tr.finding .rule").all_inner_texts())
    assert rules == {"failed"}  # the latest report read features#3, which failed
    assert "ended FAIL (Domino: Error)" in page.locator("table.findings").inner_text()

    first_report = seeded.ids["report"][0]  # read features#1, 0.2 days older; features re-ran
    page.locator("#stale-output").fill(first_report)
    page.locator("#days").fill("0.1")
    page.locator("form.filter button").click()
    page.wait_for_url(f"**/stale?output={first_report}&days=0.1")
    rules = page.locator("table.findings tr.finding .rule").all_inner_texts()
    assert sorted(set(rules)) == ["fresher", "old"]
    page.locator("#days").fill("1")  # a day's threshold: features#1 is not too old any more
    page.locator("form.filter button").click()
    page.wait_for_url("**&days=1")
    assert set(page.locator("table.findings tr.finding .rule").all_inner_texts()) == {"fresher"}

    page.goto(url + "/stale?output=" + quote(seeded.ids["features"][0]))
    assert page.locator("#not-stale").is_visible()  # the first features run reads nothing

    page.goto(url + "/flagged")
    flagged = page.locator("table.flagged a.flagged-trace").all_inner_texts()
    assert sorted(flagged) == sorted(["report.html", XSS_DATASET])
    with seeded.open() as store:
        review = store.review()
    ranked = page.locator("table.review tbody tr")
    assert ranked.count() == len(review)
    # the shared upstream run first: report#3 is in both flagged outputs' traces
    assert ranked.first.locator("a.run-link").get_attribute("href") == \
        f"/runs/{review[0].run.run_id}"
    assert ranked.first.locator(".count").inner_text() == "2 of 2"
    page.screenshot(path=str(SCREENSHOTS / "lineage-flagged.png"), full_page=True)


def test_markup_in_names_is_shown_never_run(browser_page: Any, site: tuple[str, Seeded]) -> None:
    url, seeded = site
    page = browser_page
    hostile = seeded.ids[XSS_COMPONENT][0]
    for path in ("/", f"/runs/{quote(hostile)}", "/trace?output=archive.zip",
                 "/trace?output=" + quote(XSS_DATASET), "/flagged"):
        page.goto(url + path)
        assert page.evaluate("typeof window.__xss") == "undefined", path
        assert page.locator("script, img").count() == 0, path
    page.goto(url + f"/runs/{quote(hostile)}")
    assert page.locator("h1 a.component").inner_text() == XSS_COMPONENT
    assert XSS_DATASET in page.locator("ul.outputs").inner_text()
    assert page.locator("dl.fields a.job").count() == 0  # its javascript: URL is no link
    page.goto(url + "/trace?output=archive.zip")
    edges = page.locator("#trace-graph svg g.edge text").all_text_contents()
    assert XSS_DATASET in edges
    assert any(text.startswith(XSS_COMPONENT) for text in _node_texts(page))
