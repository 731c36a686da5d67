"""``DominoOpenLineageMixin`` on the real ``DominoJobOperator``: facets Airflow's OpenLineage
provider merges into its task events. The provider package is not installed here, so (only then)
its ``OperatorLineage`` record is stood in by an equivalent attrs class: that import is the edge."""

from __future__ import annotations

import subprocess
import sys
import types
from typing import Any

import attr
import pytest
from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
from openlineage.client.serde import Serde

from domino_orchestrate.core import JobHandle, JobSnapshot, JobStatus

pytest.importorskip("airflow")


@pytest.fixture
def operator_lineage(monkeypatch: pytest.MonkeyPatch) -> type:
    try:
        from airflow.providers.openlineage.extractors import OperatorLineage

        return OperatorLineage  # type: ignore[no-any-return]
    except ImportError:
        pass

    @attr.define
    class OperatorLineage:  # type: ignore[no-redef]  # same fields as the provider's record
        inputs: list[Any] = attr.Factory(list)
        outputs: list[Any] = attr.Factory(list)
        run_facets: dict[str, Any] = attr.Factory(dict)
        job_facets: dict[str, Any] = attr.Factory(dict)

    package = types.ModuleType("airflow.providers.openlineage")
    package.__path__ = []
    extractors = types.ModuleType("airflow.providers.openlineage.extractors")
    extractors.OperatorLineage = OperatorLineage  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage", package)
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage.extractors", extractors)
    return OperatorLineage


def make_operator() -> Any:
    from domino_orchestrate.airflow.operators import DominoJobOperator

    return DominoJobOperator(
        task_id="train", command="python train.py", project="alice/churn",
        hardware_tier_name="small",
        input_datasets=["s3://raw/events", "postgres://db:5432/public.users"],
        output_datasets=["s3://curated/features"],
    )


def as_event(lineage: Any) -> dict[str, Any]:
    """Wrap the facets in a RunEvent as the provider would, for schema validation."""
    event = RunEvent(
        eventType=RunState.COMPLETE, eventTime="2026-01-01T00:00:00+00:00",
        run=Run(runId="0b6f7c62-8d7e-4c5b-9a37-6f1b2b0e9d11", facets=lineage.run_facets),
        job=Job(namespace="airflow", name="dag.train", facets=lineage.job_facets),
        inputs=lineage.inputs, outputs=lineage.outputs, producer="https://example/test",
    )
    return Serde.to_dict(event)


def tags(lineage: Any) -> dict[str, str]:
    return {t.key: t.value for t in lineage.run_facets["tags"].tags}


def test_facets_on_start_and_complete(operator_lineage: Any, ol_schema: Any) -> None:
    op = make_operator()
    start: Any = op.get_openlineage_facets_on_start()
    assert type(start) is operator_lineage
    assert [(d.namespace, d.name) for d in start.inputs] == [
        ("s3://raw", "events"), ("postgres://db:5432", "public.users")
    ]
    assert [(d.namespace, d.name) for d in start.outputs] == [("s3://curated", "features")]
    assert start.job_facets["jobType"].integration == "DOMINO"
    assert start.run_facets["processing_engine"].name == "Domino"
    assert "domino.job_id" not in tags(start)  # not started yet
    assert tags(start)["domino.hardware_tier"] == "small"
    ol_schema.validate(as_event(start))

    op._domino_handle = JobHandle("job-5", project="alice/churn", url="http://d/jobs/alice/churn/job-5")
    op._domino_snapshot = JobSnapshot("job-5", JobStatus.SUCCEEDED, "Succeeded",
                                      url="http://d/jobs/alice/churn/job-5", hardware_tier="small")
    done = op.get_openlineage_facets_on_complete(None)
    assert tags(done)["domino.job_id"] == "job-5"
    assert tags(done)["domino.job_url"].endswith("/job-5")
    assert tags(done)["domino.project"] == "alice/churn"
    assert "errorMessage" not in done.run_facets
    ol_schema.validate(as_event(done))


def test_facets_on_failure_carry_the_domino_status(operator_lineage: type, ol_schema: Any) -> None:
    op = make_operator()
    op._domino_handle = JobHandle("job-6", url="http://d/jobs/alice/churn/job-6")
    op._domino_snapshot = JobSnapshot("job-6", JobStatus.ERROR, "Error",
                                      failure_message="out of memory")
    failed = op.get_openlineage_facets_on_failure(None)
    message = failed.run_facets["errorMessage"].message
    assert "Error" in message and "out of memory" in message
    assert tags(failed)["domino.status"] == "Error"
    ol_schema.validate(as_event(failed))


def test_mixin_module_is_cheap_to_import() -> None:
    code = (
        "import sys; import domino_orchestrate.airflow.openlineage as m; "
        "assert hasattr(m, 'DominoOpenLineageMixin'); "
        "bad = [n for n in ('openlineage', 'openlineage.client', 'requests', 'httpx', 'mlflow') "
        "if n in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
