"""``log_interval`` (how often live stdout is fetched) reaches the core's ``PollOptions`` from every
integration's own settings — the Airflow operator (and through ``to_dict`` its trigger), the
Dagster resource, the Prefect ``DominoJob`` block — as the CLI's ``--log-interval`` does."""

from __future__ import annotations

from typing import Any

import pytest

from domino_orchestrate.core import PollOptions


def _airflow(log_interval: float | None) -> PollOptions:
    from domino_orchestrate.airflow import DominoJobOperator

    op = DominoJobOperator(task_id="t", command="echo", project="a/b", log_interval=log_interval)
    return op.poll_options()


def _dagster(log_interval: float | None) -> PollOptions:
    from domino_orchestrate.dagster import DominoResource

    resource = DominoResource(host="http://127.0.0.1:9", project="a/b", api_key="k" * 8,
                              log_interval=log_interval)
    return resource.poll_options()


def _prefect(log_interval: float | None) -> PollOptions:
    from domino_orchestrate.prefect import DominoCredentials, DominoJob

    job = DominoJob(credentials=DominoCredentials(host="http://127.0.0.1:9", api_key="k" * 8,
                                                  project="a/b"),
                    command="echo", log_interval=log_interval)
    return job.poll_options()


@pytest.mark.parametrize("make", [_airflow, _dagster, _prefect], ids=["airflow", "dagster", "prefect"])
def test_each_integration_passes_log_interval_to_the_core(make: Any) -> None:
    assert make(None).log_interval is None  # the request budget
    options = make(7.5)
    assert options.log_interval == 7.5
    assert PollOptions.from_dict(options.to_dict()).log_interval == 7.5  # e.g. to a trigger
