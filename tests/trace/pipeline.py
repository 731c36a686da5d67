"""Lineage events of a pipeline at chosen times, built by our own emitter's event builder
(``core.lineage.events.build_event``: the same facets a real run sends: dominoJob with the job id,
URL and commit, tags, parent) and serialised as openlineage-python serialises them.

``Pipeline.run("train", inputs=["features"], outputs=["model"], day=3)`` returns the events of
one run (START, RUNNING, then COMPLETE/FAIL/ABORT) and remembers its run id.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from openlineage.client.event_v2 import RunState
from openlineage.client.serde import Serde

from domino_orchestrate.core.lineage import Dataset, LineageInfo, ParentRun
from domino_orchestrate.core.lineage.events import DominoFacts, LineageRun, build_event

T0 = datetime(2026, 9, 1, 8, 0, tzinfo=timezone.utc)
NAMESPACE = "domino.alice.churn"
DATA = "s3://churn-bucket"
STATUS = {"COMPLETE": "Succeeded", "FAIL": "Error", "ABORT": "Stopped"}


@dataclass
class Pipeline:
    """Builds events; ``events`` collects them in emission order."""

    orchestrator: str = "airflow"
    events: list[dict[str, Any]] = field(default_factory=list)
    ids: dict[str, list[str]] = field(default_factory=dict)  # component -> run ids, in order

    def run(self, component: str, *, day: float, inputs: tuple[str, ...] | list[str] = (),
            outputs: tuple[str, ...] | list[str] = (), end: str = "COMPLETE",
            minutes: float = 5, commit: str = "c0ffee1", attempt: int | None = None,
            versions: dict[str, str] | None = None) -> str:
        """Events of one run of ``component`` starting ``day`` days after T0; its run id."""
        number = len(self.ids.get(component, ())) + 1
        key = ("dag", component, f"run-{number}" if attempt is None else f"run-{attempt}")
        info = LineageInfo(
            orchestrator=self.orchestrator, job_name=component, run_key=key,
            parent=ParentRun("airflow", "churn_dag", f"manual__{component}_{number}"),
            inputs=tuple(Dataset(DATA, name) for name in inputs),
            outputs=tuple(Dataset(DATA, name) for name in outputs),
            tags={"team": "growth"},
        )
        run = LineageRun.create(info, NAMESPACE, "alice/churn")
        started = T0 + timedelta(days=day)
        job_id = f"6b03{zlib.crc32(f'{component}/{number}/{day}'.encode()):020d}"
        facts = DominoFacts(job_id=job_id, url=f"https://domino.example.com/jobs/{job_id}",
                            commit_id=commit, kind="job", status="Running", title=component)
        state = {"COMPLETE": RunState.COMPLETE, "FAIL": RunState.FAIL,
                 "ABORT": RunState.ABORT}[end]
        built = [
            build_event(run, RunState.START, DominoFacts(job_id=job_id, url=facts.url,
                                                         commit_id=commit, kind="job"),
                        event_time=started),
            build_event(run, RunState.RUNNING, facts, event_time=started + timedelta(minutes=1)),
            build_event(run, state, DominoFacts(**{**facts.__dict__, "status": STATUS[end]}),
                        event_time=started + timedelta(minutes=minutes),
                        error=("job failed: exit 3", "Traceback ...") if end != "COMPLETE"
                        else None),
        ]
        for event in built:
            data = json.loads(Serde.to_json(event))
            if versions:  # a producer that knows dataset versions (openlineage "version" facet)
                for dataset in [*data.get("inputs", []), *data.get("outputs", [])]:
                    if dataset["name"] in versions:
                        dataset.setdefault("facets", {})["version"] = {
                            "_producer": "test", "_schemaURL": "https://openlineage.io/spec/"
                            "facets/1-0-1/DatasetVersionDatasetFacet.json",
                            "datasetVersion": versions[dataset["name"]]}
            self.events.append(data)
        self.ids.setdefault(component, []).append(run.run_id)
        return run.run_id

    def write(self, path: Path) -> Path:
        """The events as JSON lines, as openlineage-python's file transport writes them."""
        path.write_text("".join(json.dumps(e) + "\n" for e in self.events))
        return path


def churn_pipeline() -> Pipeline:
    """features -> train -> report, run, then re-run with changes:

    day 0   features#1, train#1 (features), report#1 (model, features)
    day 10  features#2 (new code)  ->  train#1 and report#1 now have a fresher dependency
    day 11  train#2 (features#2), report#2 (model of train#2, features#2)
    day 12  features#3 FAILS
    day 13  report#3 (model of train#2, features#3: a failed dependency)
    """
    p = Pipeline()
    p.run("features", day=0, outputs=["features.parquet"])
    p.run("train", day=0.1, inputs=["features.parquet"], outputs=["model.pkl"])
    p.run("report", day=0.2, inputs=["model.pkl", "features.parquet"], outputs=["report.html"])
    p.run("features", day=10, outputs=["features.parquet"], commit="c0ffee2")
    p.run("train", day=11, inputs=["features.parquet"], outputs=["model.pkl"], commit="c0ffee2")
    p.run("report", day=11.1, inputs=["model.pkl", "features.parquet"], outputs=["report.html"],
          commit="c0ffee2")
    p.run("features", day=12, outputs=["features.parquet"], end="FAIL", commit="c0ffee3")
    p.run("report", day=13, inputs=["model.pkl", "features.parquet"], outputs=["report.html"],
          commit="c0ffee2")
    return p
