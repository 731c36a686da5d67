"""One dataset-naming rule (core ``lineage.naming``) for the CLI, Airflow, Prefect and the in-job
``report``: ``NAMESPACE:NAME`` or a URI split as OpenLineage's naming spec does. Before it, the core
gave ``s3://bucket/key`` the namespace ``default`` while the CLI split it ``s3://bucket`` + ``key``,
so the same dataset named the same way was two datasets depending on who ran the job."""

from __future__ import annotations

from typing import Any

import pytest

from domino_orchestrate.core.errors import ConfigurationError
from domino_orchestrate.core.lineage import Dataset, DatasetNameError, parse_dataset, parse_datasets
from domino_orchestrate.core.lineage.reported import read_message, report

SPEC = [
    ("warehouse:sales.orders", ("warehouse", "sales.orders")),
    ("bigquery:proj.ds.table", ("bigquery", "proj.ds.table")),
    ("kafka:topic:with:colons", ("kafka", "topic:with:colons")),
    ("s3://bucket/raw/orders.csv", ("s3://bucket", "raw/orders.csv")),
    ("gs://b/k", ("gs://b", "k")),
    ("postgres://db:5432/shop.public.orders", ("postgres://db:5432", "shop.public.orders")),
    ("file:///data/x.csv", ("file", "/data/x.csv")),
    ("hdfs://nn:8020/warehouse/t", ("hdfs://nn:8020", "warehouse/t")),
    ("  s3://b/k\n", ("s3://b", "k")),  # surrounding white space is not part of the name
]

BAD = {
    "no namespace": ("orders.csv", "has no namespace"),
    "empty name": ("warehouse:", "needs both a namespace and a name"),
    "empty namespace": (":orders", "needs both a namespace and a name"),
    "uri without path": ("s3://bucket", "needs both a location and a path"),
    "old namespace:name of a uri": ("s3://raw:events", "needs both a location and a path"),
    "file uri without file": ("file:///", "names no file"),
    "scheme not starting with a letter": ("1x://a/b", "is not a URI scheme"),
    "scheme with a slash": ("a/b://c/d", "is not a URI scheme"),
    "space": ("ware house:orders", "no spaces"),
    "escape": ("ns:\x1b]0;x\x07", "no spaces or control characters"),
    "bidi override": ("ns:abc\u202egpj.exe", "no spaces or control characters"),
    "empty": ("", "is not a dataset name"),
}


@pytest.mark.parametrize(("value", "expected"), SPEC)
def test_names_follow_the_openlineage_naming_spec(value: str, expected: tuple[str, str]) -> None:
    assert parse_dataset(value) == Dataset(*expected)
    assert parse_datasets([value]) == (Dataset(*expected),)


@pytest.mark.parametrize(("value", "says"), list(BAD.values()), ids=list(BAD))
def test_a_bad_name_is_one_typed_error_saying_what_to_write(value: str, says: str) -> None:
    with pytest.raises(DatasetNameError) as caught:
        parse_datasets([value])
    message = str(caught.value)
    assert says in message and "NAMESPACE:NAME" in message and "s3://bucket/" in message
    assert isinstance(caught.value, ConfigurationError)  # the CLI's exit code 2, a ValueError
    assert "\x1b" not in message and "\u202e" not in message  # quoted escaped, never raw


def test_objects_dicts_and_one_string() -> None:
    given = Dataset("s3://b", "k")
    assert parse_datasets([given, {"namespace": "warehouse", "name": "t"}, "file:///x"]) == (
        given, Dataset("warehouse", "t"), Dataset("file", "/x"))
    assert parse_datasets("s3://b/k") == (Dataset("s3://b", "k"),)  # not one dataset per letter
    assert parse_datasets(None) == ()
    with pytest.raises(DatasetNameError, match="needs both 'namespace' and 'name'"):
        parse_datasets([{"namespace": "s3://b"}])
    with pytest.raises(DatasetNameError, match="Unsupported dataset 3"):
        parse_datasets([3])


def test_airflow_and_prefect_name_datasets_by_the_same_rule() -> None:
    from domino_orchestrate.airflow._lineage import parse_datasets as airflow_datasets
    from domino_orchestrate.prefect._common import datasets as prefect_datasets

    names = ["s3://bucket/raw/orders.csv", "file:///data/x.csv", "warehouse:sales.orders"]
    expected = (Dataset("s3://bucket", "raw/orders.csv"), Dataset("file", "/data/x.csv"),
                Dataset("warehouse", "sales.orders"))
    assert airflow_datasets(names) == expected
    assert prefect_datasets(names, names[:1]) == (expected, expected[:1])
    for parse in (airflow_datasets, lambda items: prefect_datasets(items, ())):
        with pytest.raises(DatasetNameError, match="has no namespace"):
            parse(["orders.csv"])


def test_the_job_reports_datasets_by_the_same_rule(capsys: Any) -> None:
    """``injob.report`` inside the job and the orchestrator reading its message agree."""
    message = report(inputs=["s3://raw/events"], outputs=["file:///out/model.pkl"])
    reported = read_message(message["method"], message["params"])
    assert reported is not None
    assert reported.inputs == [Dataset("s3://raw", "events")]
    assert reported.outputs == [Dataset("file", "/out/model.pkl")]
    with pytest.raises(DatasetNameError):
        report(inputs=["events"])  # the job's author hears of it where they wrote it
