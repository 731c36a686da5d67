"""What a job reports about itself (Dagster Pipes messages on its stdout) in lineage terms.

The core parses the messages (``core/messages.py``) and hands each to the observers'
``on_message``; this module is the one reading of them that the OpenLineage observer and the
MLflow sink share:

* ``report_asset_materialization`` (dagster-pipes) — the asset is an **output** dataset
  (namespace ``dagster``); numeric metadata values become MLflow **metrics** ``<asset>.<name>``.
* ``report_custom_message`` whose payload is ``{"domino_orchestrate": {...}}`` with any of
  ``inputs``/``outputs`` (``"namespace:name"`` or URI strings, or ``{"namespace", "name"}``),
  ``metrics`` (name → number) and ``params`` (name → value). ``domino_orchestrate.injob.report``
  writes exactly that.

Anything else is ignored; a malformed report never raises (it is the job's output, not ours).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PAYLOAD_KEY", "Reported", "read_message", "report"]

log = logging.getLogger("domino_orchestrate.lineage")

#: The key of our payload inside a ``report_custom_message``.
PAYLOAD_KEY = "domino_orchestrate"


@dataclass
class Reported:
    """Everything the messages of one job reported so far (merged in arrival order)."""

    inputs: list[Any] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    def add(self, message: Any) -> bool:
        """Merge one ``JobMessage``; True when it said something lineage understands."""
        try:
            found = read_message(getattr(message, "method", ""), getattr(message, "params", None))
        except Exception as exc:  # the job's output: never our error
            log.debug("Ignoring a malformed report from the job: %s", exc)
            return False
        if found is None:
            return False
        for dataset in found.inputs:
            if dataset not in self.inputs:
                self.inputs.append(dataset)
        for dataset in found.outputs:
            if dataset not in self.outputs:
                self.outputs.append(dataset)
        self.metrics.update(found.metrics)
        for key, value in found.params.items():
            self.params.setdefault(key, value)  # MLflow params are immutable: the first wins
        return True


def _number(value: Any) -> float | None:
    if isinstance(value, Mapping) and "raw_value" in value:  # dagster-pipes metadata form
        value = value["raw_value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def read_message(method: str, params: Mapping[str, Any] | None) -> Reported | None:
    """The lineage content of one message, or None when it carries none."""
    from . import parse_datasets

    params = params or {}
    if method == "report_asset_materialization":
        key = params.get("asset_key")
        out = Reported()
        if isinstance(key, str) and key:
            out.outputs = list(parse_datasets([{"namespace": "dagster", "name": key}]))
        metadata = params.get("metadata")
        if isinstance(metadata, Mapping):
            for name, value in metadata.items():
                number = _number(value)
                if number is not None:
                    out.metrics[f"{key}.{name}" if key else str(name)] = number
        return out
    if method == "report_custom_message":
        payload = params.get("payload")
        ours = payload.get(PAYLOAD_KEY) if isinstance(payload, Mapping) else None
        if not isinstance(ours, Mapping):
            return None
        out = Reported(inputs=list(parse_datasets(ours.get("inputs") or ())),
                       outputs=list(parse_datasets(ours.get("outputs") or ())))
        for name, value in (ours.get("metrics") or {}).items():
            number = _number(value)
            if number is not None:
                out.metrics[str(name)] = number
        for name, value in (ours.get("params") or {}).items():
            if value is not None:
                out.params[str(name)] = str(value)
        return out
    return None


def report(*, inputs: Any = (), outputs: Any = (), metrics: Mapping[str, float] | None = None,
           params: Mapping[str, Any] | None = None, stream: Any = None) -> dict[str, Any]:
    """Inside a Domino job: report datasets, metrics and params to the orchestrator.

    Prints one Dagster Pipes message (``report_custom_message``) on stdout, the one channel
    Domino gives back; the orchestrator's lineage observer adds the datasets to the job's
    OpenLineage events and the MLflow sink logs the metrics and params into the job's run.
    ``inputs``/``outputs`` are ``"namespace:name"`` or URI strings (``s3://bucket/key``) or
    ``{"namespace", "name"}``. Needs
    no orchestrator package in the job (plain JSON). Returns the message written.
    """
    import json
    import sys

    from . import parse_datasets

    ours: dict[str, Any] = {
        "inputs": [{"namespace": d.namespace, "name": d.name} for d in parse_datasets(inputs)],
        "outputs": [{"namespace": d.namespace, "name": d.name} for d in parse_datasets(outputs)],
        "metrics": {str(k): float(v) for k, v in (metrics or {}).items()},
        "params": {str(k): str(v) for k, v in (params or {}).items()},
    }
    message = {"__dagster_pipes_version": "0.1", "method": "report_custom_message",
               "params": {"payload": {PAYLOAD_KEY: {k: v for k, v in ours.items() if v}}}}
    out = stream or sys.stdout
    out.write(json.dumps(message) + "\n")
    out.flush()
    return message
