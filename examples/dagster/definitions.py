"""Example Dagster definitions: a Domino resource and three assets, each run as one Domino job.

``features`` and ``train_model`` succeed (``train_model`` depends on ``features`` and receives
its Domino job id in ``DAGSTER_UPSTREAM``); ``broken_report`` fails on purpose to show how a failed
Domino job appears in Dagster (a ``Failure`` with the job's status, URL and last lines of output).

Load it with ``dagster dev -f examples/dagster/definitions.py`` after setting DOMINO_API_HOST,
DOMINO_USER_API_KEY and DOMINO_PROJECT (``owner/name``), or materialize it against the sandbox
with ``python examples/dagster/run_demo.py``.

In the UI, terminating a run stops its Domino jobs (the stop and its confirmation appear in the
run's event log); "Re-execute from failure" reattaches to a Domino job the failed run left running
or that succeeded unseen, "Re-execute all steps" starts new ones.
"""

from __future__ import annotations

import os

from dagster import Definitions, EnvVar, RetryPolicy

from domino_orchestrate.dagster import DominoResource, domino_job_asset

features = domino_job_asset(
    "features",
    "echo building features; sleep 1; echo features ready",
    title="demo features",
    group_name="domino_demo",
)

train_model = domino_job_asset(
    "train_model",
    'echo "training on upstream: $DAGSTER_UPSTREAM"; sleep 1; echo model saved',
    deps=[features],
    pass_upstream=True,
    title="demo training",
    group_name="domino_demo",
    retry_policy=RetryPolicy(max_retries=1),
)

broken_report = domino_job_asset(
    "broken_report",
    "echo rendering report; echo 'ValueError: no data for today' >&2; exit 1",
    title="demo report (fails on purpose)",
    group_name="domino_demo",
)

ASSETS = [features, train_model, broken_report]

defs = Definitions(
    assets=ASSETS,
    resources={
        "domino": DominoResource(
            project=os.environ.get("DOMINO_PROJECT", "demo/quick-start"),
            api_key=EnvVar("DOMINO_USER_API_KEY"),
        )
    },
)
