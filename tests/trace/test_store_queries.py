"""The store's queries over the churn pipeline (features -> train -> report, re-run with changes;
see ``pipeline.churn_pipeline``), each asserted on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from domino_orchestrate.trace.errors import (
    UnknownComponentError,
    UnknownOutputError,
    UnknownRunError,
)
from domino_orchestrate.trace.model import RULE_FAILED, RULE_FRESHER, RULE_OLD

from .pipeline import DATA, NAMESPACE, T0, Pipeline, churn_pipeline


@pytest.fixture
def churn(store: Any) -> tuple[Any, Pipeline]:
    pipeline = churn_pipeline()
    result = store.ingest_many(pipeline.events)
    assert (result.new, result.runs) == (len(pipeline.events), 8)
    return store, pipeline


def test_recent_newest_first_with_limit_and_tags(churn: tuple[Any, Pipeline]) -> None:
    store, p = churn
    recent = store.recent(limit=3)
    assert [(r.component, r.status) for r in recent] == [
        ("report", "COMPLETE"), ("features", "FAIL"), ("report", "COMPLETE")]
    assert recent[0].run_id == p.ids["report"][2]
    assert [r.run_id for r in store.recent(limit=100)][-1] == p.ids["features"][0]
    assert len(store.recent(limit=100)) == 8
    # Tags from the events' tags facet, as key=value.
    assert "orchestrator=airflow" in recent[0].tags and "team=growth" in recent[0].tags
    assert store.recent(tag="suspect") == []
    assert len(store.recent(limit=100, tag="team=growth")) == 8  # the events' own tags
    for partial in ("team=grow", "team=growt_", "%", "team=growth%"):  # whole tags only
        assert store.recent(tag=partial) == [], partial
    store.tag(p.ids["train"][0], "suspect", "q3")
    assert [r.run_id for r in store.recent(tag="suspect")] == [p.ids["train"][0]]
    assert [r.run_id for r in store.history("train", tag="q3")] == [p.ids["train"][0]]


def test_history_by_name_or_key(churn: tuple[Any, Pipeline]) -> None:
    store, p = churn
    assert [r.run_id for r in store.history("features")] == p.ids["features"][::-1]
    assert [r.run_id for r in store.history(f"{NAMESPACE}/features", limit=1)] == \
        [p.ids["features"][2]]
    with pytest.raises(UnknownComponentError, match="'featurez'"):
        store.history("featurez")


def test_inspect_reads_our_facets(churn: tuple[Any, Pipeline]) -> None:
    store, p = churn
    run = store.inspect(p.ids["features"][2])
    assert run.status == "FAIL" and run.domino_status == "Error"
    assert run.error_message == "job failed: exit 3"
    assert run.code_version == "c0ffee3"
    assert run.domino_job_id and run.domino_job_url == \
        f"https://domino.example.com/jobs/{run.domino_job_id}"
    assert run.parent_name == "churn_dag" and run.parent_run_id
    assert run.orchestrator == "airflow" and run.event_count == 3
    assert run.start_time == T0 + timedelta(days=12)
    assert run.end_time == T0 + timedelta(days=12, minutes=5)
    assert [o.key for o in run.outputs] == [f"{DATA}/features.parquet"]
    # A unique prefix is enough; an unknown id is a typed error.
    assert store.inspect(run.run_id[:10]).run_id == run.run_id
    with pytest.raises(UnknownRunError, match="no run with id"):
        store.inspect("00000000-0000-0000-0000-000000000000")


def test_trace_follows_most_recent_earlier_producer(churn: tuple[Any, Pipeline]) -> None:
    store, p = churn
    root = store.trace("report.html")  # the newest producer: report#3
    assert root.run.run_id == p.ids["report"][2]
    upstream = {node.via.name: node for node in root.upstream}
    # model.pkl: train#2 (train#1 is older); features.parquet: features#3, the failed one that
    # ran just before report#3 started.
    assert upstream["model.pkl"].run.run_id == p.ids["train"][1]
    assert upstream["features.parquet"].run.run_id == p.ids["features"][2]
    # train#2 read features#2, not features#3 (which ran after it).
    (train_input,) = upstream["model.pkl"].upstream
    assert train_input.run.run_id == p.ids["features"][1]
    assert {r.run_id for r in root.runs()} == {
        p.ids["report"][2], p.ids["train"][1], p.ids["features"][2], p.ids["features"][1]}
    # By namespace/name key and by run id: the same; an old run's trace is its own past.
    assert store.trace(f"{DATA}/report.html").to_dict() == root.to_dict()
    old = store.trace(p.ids["report"][0])
    assert {r.run_id for r in old.runs()} == {
        p.ids["report"][0], p.ids["train"][0], p.ids["features"][0]}
    with pytest.raises(UnknownOutputError, match="nothing in the lineage store produced"):
        store.trace("no-such-output.csv")


def test_stale_each_rule_fires_only_where_it_should(churn: tuple[Any, Pipeline]) -> None:
    store, p = churn
    # Latest run of each component: only report#3 is stale, because it read a failed run.
    (finding,) = store.stale()
    assert (finding.rule, finding.run.run_id, finding.dependency.run_id) == (
        RULE_FAILED, p.ids["report"][2], p.ids["features"][2])
    assert "ended FAIL (Domino: Error)" in finding.reason and "features.parquet" in finding.reason
    assert [f.rule for f in store.stale("report.html")] == [RULE_FAILED]
    # report#1's world: features and train both have fresher completed runs since.
    fresher = store.stale(p.ids["report"][0])
    assert {(f.run.component, f.dependency.component, f.rule) for f in fresher} == {
        ("report", "train", RULE_FRESHER), ("report", "features", RULE_FRESHER),
        ("train", "features", RULE_FRESHER)}
    by_dep = {(f.run.component, f.dependency.component): f.reason for f in fresher}
    # features#2 and #3 came after features#1, but #3 failed: one fresher completed run.
    assert "features has 1 fresher completed run(s)" in by_dep[("train", "features")]
    # train#2 read features#2: features#3 failed, so it is no fresher data; not stale.
    assert store.stale(p.ids["train"][1]) == []


def test_stale_old_dependency_by_threshold(store: Any) -> None:
    p = Pipeline()
    p.run("features", day=0, outputs=["features.parquet"])
    p.run("train", day=45, inputs=["features.parquet"], outputs=["model.pkl"])
    p.run("features", day=50, outputs=["other.parquet"])  # a fresher run of features
    p.run("score", day=50, inputs=["scores-input.csv"], outputs=["scores.csv"])  # no producer
    store.ingest_many(p.events)
    old = [f for f in store.stale("model.pkl") if f.rule == RULE_OLD]
    assert len(old) == 1 and "ran 45 days before train" in old[0].reason
    assert "threshold 30 days" in old[0].reason
    assert not [f for f in store.stale("model.pkl", threshold=timedelta(days=46))
                if f.rule == RULE_OLD]
    # mltrace's second rule, counted at the component level: features ran again (other output).
    assert {f.rule for f in store.stale("model.pkl")} == {RULE_OLD, RULE_FRESHER}
    assert store.stale("scores.csv") == []


def test_review_ranks_shared_runs_first_ties_newest_first(churn: tuple[Any, Pipeline]) -> None:
    store, p = churn
    assert store.review() == [] and store.flagged() == []
    assert store.flag("report.html").key == f"{DATA}/report.html"
    store.flag(f"{DATA}/model.pkl")
    store.flag("model.pkl")  # flagging twice is one flag
    assert [f.dataset.name for f in store.flagged()] == ["model.pkl", "report.html"]
    ranking = store.review()
    # train#2 and features#2 are in both traces (2 of 2); train#2 is newer, so first.
    assert [(e.run.run_id, e.count) for e in ranking] == [
        (p.ids["train"][1], 2), (p.ids["features"][1], 2),
        (p.ids["report"][2], 1), (p.ids["features"][2], 1)]
    assert ranking[0].coverage == 1.0 and ranking[2].coverage == 0.5
    assert store.review(limit=1)[0].run.run_id == p.ids["train"][1]
    store.unflag("model.pkl")
    assert [e.count for e in store.review()] == [1, 1, 1, 1]
    with pytest.raises(UnknownOutputError):
        store.flag("never-produced.csv")


def test_versions_pick_the_producer_of_that_version(store: Any) -> None:
    p = Pipeline()
    p.run("features", day=0, outputs=["features.parquet"], versions={"features.parquet": "v1"})
    p.run("features", day=1, outputs=["features.parquet"], versions={"features.parquet": "v2"})
    p.run("train", day=2, inputs=["features.parquet"], outputs=["model.pkl"],
          versions={"features.parquet": "v1"})
    store.ingest_many(p.events)
    (node,) = store.trace("model.pkl").upstream
    assert node.run.run_id == p.ids["features"][0] and node.via.version == "v1"
    # It read v1 although v2 existed: mltrace's second rule says so.
    (finding,) = store.stale("model.pkl")
    assert finding.rule == RULE_FRESHER and "(1 began before train started)" in finding.reason


def test_fresher_when_another_job_produced_the_input_since(store: Any) -> None:
    p = Pipeline()
    p.run("features", day=0, outputs=["features.parquet"])
    p.run("train", day=1, inputs=["features.parquet"], outputs=["model.pkl"])
    assert store.ingest_many(p.events) and store.stale("model.pkl") == []
    # A Dagster asset materialized by another job is another OpenLineage job: same dataset.
    backfill = Pipeline()
    backfill.run("backfill_features", day=2, outputs=["features.parquet"])
    store.ingest_many(backfill.events)
    (finding,) = store.stale("model.pkl")
    assert finding.rule == RULE_FRESHER and finding.dependency.run_id == p.ids["features"][0]
    assert "1 fresher completed run(s) (1 of them other jobs producing features.parquet)" in \
        finding.reason


def test_diamond_pipeline_trace_stays_linear(store: Any) -> None:
    # Each stage reads the two before it: a naive tree doubles at every level (2**20 nodes).
    p = Pipeline()
    for stage in range(20):
        p.run(f"s{stage}", day=stage / 24,
              inputs=[f"d{stage - k}" for k in (1, 2) if stage - k >= 0], outputs=[f"d{stage}"])
    store.ingest_many(p.events)
    root = store.trace("d19")
    nodes = list(root.walk())
    assert len(root.runs()) == 20 and len(nodes) == 1 + 2 * 19 - 1  # one node per edge
    assert sum(n.repeated for n in nodes) == 18
    from domino_orchestrate.trace.render import edges

    assert len(list(edges(root))) == 37  # every edge of the pipeline, drawn once
