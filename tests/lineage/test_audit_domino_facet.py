"""Audit of issue 14 ("a Domino job facet (job id, URL, hardware tier, environment, title)"): a
real sandbox job's events carry the whole facet, the URL and hardware tier Domino reports
included (the contract test covers id, commit, title and environment on hand-made snapshots)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from domino_orchestrate.core import DominoClient, JobSpec, PollOptions
from domino_orchestrate.core.lineage import LineageInfo, lineage_observers

from .conftest import read_events

ENVIRONMENT = "5f1a2b3c4d5e6f7081920a0c"  # the sandbox's "Sandbox Minimal Environment"


def test_the_domino_job_facet_names_the_url_tier_environment_and_title(
    domino_sandbox: Any, lineage_file: Path, run_event_check: Any,
) -> None:
    lineage = LineageInfo("cli", "audit-facet", ("audit-facet",))
    spec = JobSpec("echo facet", title="audit facet", hardware_tier_name="Medium",
                   environment_id=ENVIRONMENT)
    with DominoClient(domino_sandbox.url, "demo/quick-start",
                      api_key=domino_sandbox.api_key) as client:
        final = client.run_job(spec, PollOptions(poll_freq=0.3, initial_interval=0.1),
                               observers=lineage_observers(lineage, client.config))
    assert final.status.is_success and final.url and final.hardware_tier

    events = read_events(lineage_file)
    assert (events[0]["eventType"], events[-1]["eventType"]) == ("START", "COMPLETE")
    for event in events:
        run_event_check.validate(event)
        facet = event["run"]["facets"]["dominoJob"]
        assert facet["jobId"] == final.job_id
        assert facet["url"] == final.url
        # The title as Domino has it: the user's, then the core's idempotency marker.
        assert facet["title"].startswith("audit facet") and facet["environmentId"] == ENVIRONMENT
    assert events[-1]["run"]["facets"]["dominoJob"]["hardwareTier"] == final.hardware_tier
