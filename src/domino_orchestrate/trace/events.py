"""Reading OpenLineage RunEvents into what the store keeps, and folding one run's events.

What lives here, without I/O: ``parse_event`` (a RunEvent dict -> a ``Fragment``: the few fields
a component run needs, or ``InvalidEventError`` naming the bad field) and ``fold`` (all fragments
of one run -> a ``ComponentRun``). The fold is a pure function of the *set* of fragments, so the
order events arrive in, duplicates and re-imports never change the answer.

Where each field comes from (our own events first, then what other producers send):

- status: the event type of the last terminal event (COMPLETE/FAIL/ABORT), else RUNNING;
- start/end: the first START's ``eventTime`` / the last terminal event's ``eventTime`` (one clock:
  the emitter's, so runs compare fairly);
- Domino job id/URL/status: our ``dominoJob`` run facet, else the ``domino.*`` tags;
- code version: the ``sourceCodeLocation`` job facet's ``version``, else ``dominoJob.commitId``,
  else the ``domino.commit_id`` tag;
- parent: the ``parent`` run facet (the orchestrator's run);
- datasets: ``inputs``/``outputs`` (union over the run's events), with ``facets.version
  .datasetVersion`` when the producer knows it;
- tags: run and job ``tags`` facets as ``key=value``.

What must not live here: SQL (``store.py``), rendering (``render.py``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, TypeGuard

from .errors import InvalidEventError
from .model import ComponentRun, DatasetRef

__all__ = ["EVENT_TYPES", "TERMINAL", "Fragment", "fold", "parse_event"]

TERMINAL = frozenset({"COMPLETE", "FAIL", "ABORT"})
EVENT_TYPES = frozenset({"START", "RUNNING", "OTHER", *TERMINAL})
#: Ties in eventTime are broken by lifecycle order, then by the event's hash (deterministic).
_RANK = {"START": 0, "RUNNING": 1, "OTHER": 2, "COMPLETE": 3, "FAIL": 3, "ABORT": 3}
#: Longest text kept from a descriptive field (a runaway error message must not bloat the store).
MAX_TEXT = 2000
#: Longest identifiers accepted, in UTF-8 bytes: together they stay under PostgreSQL's limit for
#: one index entry (~2.7 kB). A run id is a UUID; these bounds only stop garbage.
MAX_BYTES = {"run.runId": 256, "job.namespace": 512, "job.name": 512, "namespace": 512,
             "name": 1024, "version": 256, "tag": 1000}
_NOTHING: Mapping[str, Any] = MappingProxyType({})
_FRACTION = re.compile(r"(\.\d{6})\d+")
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Fragment:
    """What one RunEvent says about its run (``None``: the event does not say)."""

    run_id: str
    namespace: str
    component: str
    event_type: str
    event_time: datetime  # UTC, naive
    code_version: str | None = None
    domino_job_id: str | None = None
    domino_job_url: str | None = None
    domino_status: str | None = None
    parent_run_id: str | None = None
    parent_name: str | None = None
    error_message: str | None = None
    orchestrator: str | None = None
    inputs: tuple[DatasetRef, ...] = ()
    outputs: tuple[DatasetRef, ...] = ()
    tags: tuple[str, ...] = ()

    # Both below are computed once per fragment and kept in its __dict__ (by hand: on Python
    # 3.11 a cached_property takes a lock on every first access, a cost per imported event).

    @property
    def digest(self) -> str:
        """The event's identity in the store: a hash of everything the store reads from it.

        The same event imported twice, or sent by the transport and imported from the file
        transport's JSON lines, is one event; events that differ only in facets the store does
        not read are one event too (they would fold to the same run anyway).
        """
        cached: str | None = self.__dict__.get("_digest")
        if cached is None:
            text = "\x1f".join((self.run_id, self.namespace, self.component, self.event_type,
                                self.event_time.isoformat(), self.to_json()))
            cached = self.__dict__["_digest"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return cached

    def to_json(self) -> str:
        """Compact JSON of the non-empty fields (what the store keeps per event)."""
        cached: str | None = self.__dict__.get("_json")
        if cached is None:
            cached = self.__dict__["_json"] = self._encode()
        return cached

    def _encode(self) -> str:
        data: dict[str, Any] = {}
        for name in _SCALARS:
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        for name in ("inputs", "outputs"):
            refs = getattr(self, name)
            if refs:
                data[name] = [[r.namespace, r.name, r.version] for r in refs]
        if self.tags:
            data["tags"] = list(self.tags)
        return _COMPACT.encode(data)  # what json.dumps(separators=…, ensure_ascii=False) gives

    @classmethod
    def from_json(cls, run_id: str, namespace: str, component: str, event_type: str,
                  event_time: datetime, text: str) -> Fragment:
        """The fragment stored as ``to_json``'s ``text`` with its key columns."""
        data = json.loads(text)
        return cls(
            run_id=run_id, namespace=namespace, component=component, event_type=event_type,
            event_time=event_time,
            **{name: data.get(name) for name in _SCALARS},
            inputs=tuple(DatasetRef(*ref) for ref in data.get("inputs", ())),
            outputs=tuple(DatasetRef(*ref) for ref in data.get("outputs", ())),
            tags=tuple(data.get("tags", ())),
        )


#: Compact JSON, built once (``json.dumps`` with options builds an encoder per call). Changing
#: its output would change event hashes: a re-import would then store every event again.
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_SCALARS = ("code_version", "domino_job_id", "domino_job_url", "domino_status", "parent_run_id",
            "parent_name", "error_message", "orchestrator")


# --- parsing ---------------------------------------------------------------------------------


def _clean(value: str) -> str:
    if "\x00" in value:
        value = value.replace("\x00", "")  # PostgreSQL text cannot hold NUL
    if _SURROGATE.search(value):  # lone surrogates: valid JSON escapes, not valid UTF-8
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _text(value: Any, where: str, *, required: bool = False) -> str | None:
    # Fast path (most fields): short, printable (no NUL, no lone surrogate), under every limit.
    if type(value) is str and 0 < len(value) <= 64 and value.isprintable():
        return value
    if value is None or value == "":
        if required:
            raise InvalidEventError(where, "is missing")
        return None
    if not isinstance(value, str):
        if required:
            raise InvalidEventError(where, f"must be a string, not {type(value).__name__}")
        return None  # optional facet fields of the wrong type are ignored, not fatal
    value = _clean(value)
    limit = MAX_BYTES.get(where.rsplit(".", 1)[-1] if "]" in where else where)
    if limit is not None and len(value) * 4 > limit and len(value.encode("utf-8")) > limit:
        if required:
            raise InvalidEventError(where, f"is longer than {limit} bytes")
        value = value.encode("utf-8")[:limit].decode("utf-8", "ignore")
    return value[:MAX_TEXT]


def _mapping(value: Any) -> Mapping[str, Any]:
    if type(value) is dict:  # what JSON decodes to (isinstance(…, Mapping) is slow)
        return value
    if value is None:  # an absent facet or field
        return _NOTHING
    return value if isinstance(value, Mapping) else {}


def parse_time(value: Any, where: str = "eventTime") -> datetime:
    """An ISO-8601 time as naive UTC; a time without offset is taken as UTC."""
    if not isinstance(value, str) or not value:
        raise InvalidEventError(where, "must be an ISO-8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value)  # the usual case, in one C call
    except ValueError:
        try:  # nanoseconds (Python < 3.11 takes at most 6 digits), surrounding blanks
            parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", value.strip()))
        except ValueError:
            raise InvalidEventError(
                where, f"is not an ISO-8601 date-time: {value[:64]!r}") from None
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
        except OverflowError:
            raise InvalidEventError(where, f"is out of range: {value[:64]!r}") from None
    return parsed


def _datasets(value: Any, where: str) -> tuple[DatasetRef, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidEventError(where, "must be a list of datasets")
    refs: list[DatasetRef] = []
    for index, item in enumerate(value):
        if type(item) is not dict and not isinstance(item, Mapping):
            raise InvalidEventError(f"{where}[{index}]", "must be an object")
        namespace, name = item.get("namespace"), item.get("name")
        if not _short_text(namespace):
            namespace = _text(namespace, f"{where}[{index}].namespace", required=True)
        if not _short_text(name):
            name = _text(name, f"{where}[{index}].name", required=True)
        version = _mapping(_mapping(item.get("facets")).get("version")).get("datasetVersion")
        ref = DatasetRef(str(namespace), str(name), _text(version, "version"))
        if ref not in refs:
            refs.append(ref)
    return tuple(refs)


def _short_text(value: Any) -> TypeGuard[str]:
    """``_text``'s fast path: a short printable string, returned by it unchanged."""
    return type(value) is str and 0 < len(value) <= 64 and value.isprintable()


def _tags(*facets: Any) -> tuple[str, ...]:
    tags: list[str] = []
    for facet in facets:
        entries = _mapping(facet).get("tags")
        for entry in entries if isinstance(entries, list) else ():
            entry = _mapping(entry)
            key, value = entry.get("key"), entry.get("value")
            # _short_text, inlined: this loop runs for every tag of every event.
            if not (type(key) is str and 0 < len(key) <= 64 and key.isprintable()):
                key = _text(key, "tag")
                if not key:
                    continue
            if not (type(value) is str and 0 < len(value) <= 64 and value.isprintable()):
                value = _text(value, "tag")
            tag: str = f"{key}={value}" if value else key
            if len(tag) * 4 > MAX_BYTES["tag"]:
                tag = tag.encode("utf-8")[:MAX_BYTES["tag"]].decode("utf-8", "ignore")
            if tag not in tags:
                tags.append(tag)
    return tuple(tags)


def parse_event(event: Any) -> Fragment:
    """Read one OpenLineage RunEvent (a dict as JSON-decoded).

    Raises:
        InvalidEventError: not a RunEvent (no run id, job name or namespace, a bad eventTime or
            eventType, datasets that are not namespace/name objects). Facets that are malformed
            are ignored: they never make a whole event unreadable.
    """
    if not isinstance(event, Mapping):
        raise InvalidEventError("the event", f"must be a JSON object, not {type(event).__name__}")
    run, job = event.get("run"), event.get("job")
    if not isinstance(run, Mapping):
        raise InvalidEventError("run", "is missing (job and dataset events carry no run)")
    if not isinstance(job, Mapping):
        raise InvalidEventError("job", "is missing")
    run_id = _text(run.get("runId"), "run.runId", required=True)
    namespace = _text(job.get("namespace"), "job.namespace", required=True)
    component = _text(job.get("name"), "job.name", required=True)
    event_type = event.get("eventType") or "OTHER"
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        raise InvalidEventError("eventType", f"must be one of {sorted(EVENT_TYPES)}, "
                                f"not {str(event_type)[:32]!r}")
    event_time = parse_time(event.get("eventTime"))

    run_facets, job_facets = _mapping(run.get("facets")), _mapping(job.get("facets"))
    domino = _mapping(run_facets.get("dominoJob"))
    tags = _tags(run_facets.get("tags"), job_facets.get("tags"))
    tag_values = {}
    for tag in tags:
        key, sep, value = tag.partition("=")
        if sep:
            tag_values[key] = value
    parent = _mapping(run_facets.get("parent"))
    parent_job = _mapping(parent.get("job"))
    parent_name = _text(parent_job.get("name"), "parent")
    error = _mapping(run_facets.get("errorMessage"))
    assert run_id and namespace and component  # required=True guarantees them
    return Fragment(
        run_id=run_id, namespace=namespace, component=component, event_type=str(event_type),
        event_time=event_time,
        code_version=(_text(_mapping(job_facets.get("sourceCodeLocation")).get("version"), "")
                      or _text(domino.get("commitId"), "")
                      or tag_values.get("domino.commit_id")),
        domino_job_id=_text(domino.get("jobId"), "") or tag_values.get("domino.job_id"),
        domino_job_url=_text(domino.get("url"), "") or tag_values.get("domino.job_url"),
        domino_status=_text(domino.get("status"), "") or tag_values.get("domino.status"),
        parent_run_id=_text(_mapping(parent.get("run")).get("runId"), ""),
        parent_name=parent_name,
        error_message=_text(error.get("message"), ""),
        orchestrator=tag_values.get("orchestrator"),
        inputs=_datasets(event.get("inputs"), "inputs"),
        outputs=_datasets(event.get("outputs"), "outputs"),
        tags=tags,
    )


# --- folding -------------------------------------------------------------------------------


def _order(item: tuple[str, Fragment]) -> tuple[datetime, int, str]:
    digest, fragment = item
    return fragment.event_time, _RANK.get(fragment.event_type, 2), digest


def _union(groups: Iterable[tuple[DatasetRef, ...]]) -> tuple[DatasetRef, ...]:
    """Datasets of all events, once each; a versioned mention replaces an unversioned one."""
    groups = list(groups)
    if all(group == groups[0] for group in groups):  # the usual case: every event says the same
        return groups[0] if groups else ()
    found: dict[tuple[str, str], list[DatasetRef]] = {}
    for group in groups:
        for ref in group:
            same = found.setdefault((ref.namespace, ref.name), [])
            if ref not in same:
                same.append(ref)
    result: list[DatasetRef] = []
    for refs in found.values():
        versioned = [r for r in refs if r.version]
        result.extend(versioned or refs[:1])
    return tuple(result)


def fold(fragments: Mapping[str, Fragment], user_tags: Iterable[str] = ()) -> ComponentRun:
    """One run from all its events (``{event hash: fragment}``); independent of arrival order.

    The last event (by eventTime) that says something wins for each field; the run's status is
    its last terminal event's type, RUNNING until one arrives.
    """
    ordered = [f for _, f in sorted(fragments.items(), key=_order)]
    if not ordered:
        raise ValueError("a run needs at least one event")
    last = ordered[-1]
    starts = [f.event_time for f in ordered if f.event_type == "START"]
    terminal = [f for f in ordered if f.event_type in TERMINAL]
    values: dict[str, Any] = {}
    for fragment in ordered:
        values.update({name: value for name in _SCALARS
                       if (value := getattr(fragment, name)) is not None})
    tags = dict.fromkeys([*(t for f in ordered for t in f.tags), *user_tags])
    return ComponentRun(
        run_id=last.run_id, namespace=last.namespace, component=last.component,
        status=terminal[-1].event_type if terminal else "RUNNING",
        start_time=_utc(starts[0] if starts else ordered[0].event_time),
        end_time=_utc(terminal[-1].event_time) if terminal else None,
        code_version=values.get("code_version"),
        domino_job_id=values.get("domino_job_id"),
        domino_job_url=values.get("domino_job_url"),
        parent_run_id=values.get("parent_run_id"),
        parent_name=values.get("parent_name"),
        inputs=_union(f.inputs for f in ordered),
        outputs=_union(f.outputs for f in ordered),
        tags=tuple(tags),
        domino_status=values.get("domino_status"),
        # A retry that completed clears the error of the attempt before it.
        error_message=(terminal[-1].error_message or values.get("error_message"))
        if terminal and terminal[-1].event_type != "COMPLETE" else None,
        orchestrator=values.get("orchestrator"),
        event_count=len(ordered),
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def with_user_tags(run: ComponentRun, user_tags: Iterable[str]) -> ComponentRun:
    """``run`` with tags added by ``LineageStore.tag`` appended (once each)."""
    tags = list(run.tags)
    for tag in user_tags:
        if tag not in tags:
            tags.append(tag)
    return replace(run, tags=tuple(tags))
