"""Domino's REST surface as plain data: request builders and response interpretation. No I/O.

Paths, bodies and field names follow domino-api.md §2 exactly. ``interpret`` turns a status code
and body into a value or one typed error; both transports (sync and async) call it.
"""

from __future__ import annotations

import codecs
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from .config import redact, without_userinfo
from .errors import (
    AuthenticationError,
    BadRequestError,
    DominoAPIError,
    DominoError,
    InvalidResponseError,
    NotFoundError,
    RateLimitedError,
    RedirectError,
    ServerError,
)
from .models import JobSpec, RunSpec

__all__ = [
    "ApiRequest", "Sleep", "StreamedObject", "decode_json", "interpret", "retry_after_seconds",
]


@dataclass(frozen=True)
class ApiRequest:
    """One Domino REST call as a value: what a flow asks its driver to send (``path`` is
    relative to the host; ``params`` are the query in order; ``body`` is sent as JSON)."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    body: Any = None
    #: Safe to re-send on a transient failure. Starts are not (see flows.start_flow).
    retry: bool = True
    #: Expect an empty or non-JSON success body (stop and restart return no useful JSON).
    empty_ok: bool = False
    not_found: type[NotFoundError] = NotFoundError
    #: Optional: makes a fresh body decoder (``feed(bytes)``, ``close() -> value``) for a success
    #: answer, so a transport can decode it as it arrives instead of holding it whole. A driver
    #: may ignore it and send the decoded JSON instead; flows accept both.
    stream: Callable[[], Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Sleep:
    """What a flow yields to be resumed after ``seconds`` (the driver sleeps its own way)."""

    seconds: float


def _seg(value: str) -> str:
    # python-domino concatenates unescaped (§2); we escape so an odd id can never change the path.
    return quote(str(value), safe="")


def p1(owner: str, project: str) -> str:
    return f"/v1/projects/{_seg(owner)}/{_seg(project)}"


def version() -> ApiRequest:
    return ApiRequest("GET", "/version")


def find_project(owner: str, project: str) -> ApiRequest:
    from .errors import ProjectNotFoundError

    return ApiRequest(
        "GET",
        "/v4/gateway/projects/findProjectByOwnerAndName",
        (("ownerName", owner), ("projectName", project)),
        not_found=ProjectNotFoundError,
    )


def job_start(project_id: str, spec: JobSpec, title: str | None, tier_id: str | None) -> ApiRequest:
    git_ref = spec.main_repo_git_ref
    if spec.branch:
        git_ref = {"type": "branches", "value": spec.branch}
    cluster = spec.compute_cluster_properties
    if cluster:
        # §2.3: the hardware tier ids inside compute cluster properties are wrapped as {"value": id}
        cluster = dict(cluster)
        for key in ("masterHardwareTierId", "workerHardwareTierId"):
            if isinstance(cluster.get(key), str):
                cluster[key] = {"value": cluster[key]}
    body = {
        "projectId": project_id,
        "commandToRun": spec.command,
        "commitId": spec.commit_id,
        "mainRepoGitRef": git_ref,
        "overrideHardwareTierId": tier_id,
        "onDemandSparkClusterProperties": spec.on_demand_spark_cluster_properties,
        "computeClusterProperties": cluster,
        "environmentId": spec.environment_id,
        "externalVolumeMounts": spec.external_volume_mounts,
        "title": title,
    }
    return ApiRequest("POST", "/v4/jobs/start", body=body, retry=False)


def run_start(owner: str, project: str, spec: RunSpec, title: str | None) -> ApiRequest:
    body = {
        "command": list(spec.command),
        "isDirect": spec.is_direct,
        "commitId": spec.commit_id,
        "title": title,
        "tier": spec.tier,
        "publishApiEndpoint": spec.publish_api_endpoint,
    }
    return ApiRequest("POST", p1(owner, project) + "/runs", body=body, retry=False)


def job_get(job_id: str) -> ApiRequest:
    from .errors import JobNotFoundError

    return ApiRequest("GET", f"/v4/jobs/{_seg(job_id)}", not_found=JobNotFoundError)


def run_get(owner: str, project: str, run_id: str) -> ApiRequest:
    from .errors import JobNotFoundError

    return ApiRequest("GET", f"{p1(owner, project)}/runs/{_seg(run_id)}", not_found=JobNotFoundError)


def runs_list(owner: str, project: str) -> ApiRequest:
    return ApiRequest("GET", p1(owner, project) + "/runs")


def stdout(owner: str, project: str, job_id: str) -> ApiRequest:
    from .errors import JobNotFoundError

    # Singular "run"; job ids and run ids are the same ids (§2.1).
    return ApiRequest(
        "GET", f"{p1(owner, project)}/run/{_seg(job_id)}/stdout", not_found=JobNotFoundError
    )


def commits(owner: str, project: str) -> ApiRequest:
    return ApiRequest("GET", p1(owner, project) + "/commits")


def job_stop(project_id: str, job_id: str, commit_results: bool) -> ApiRequest:
    from .errors import JobNotFoundError

    body = {"projectId": project_id, "jobId": job_id, "commitResults": commit_results}
    # Stopping twice is harmless, so a stop may be retried.
    return ApiRequest(
        "POST", "/v4/jobs/stop", body=body, empty_ok=True, not_found=JobNotFoundError
    )


def job_restart(job_id: str, use_original_input_commit: bool) -> ApiRequest:
    body = {"jobId": job_id, "shouldUseOriginalInputCommit": use_original_input_commit}
    return ApiRequest("POST", "/v4/jobs/restart", body=body, retry=False, empty_ok=True)


def jobs_list(
    project_id: str,
    *,
    order_by: str = "number",
    sort_by: str = "desc",
    page_size: int | None = None,
    page_no: int = 1,
    show_archived: bool = False,
    status: str = "all",
    tag: str | None = None,
) -> ApiRequest:
    # Parameter order and snake_case names as python-domino sends them (§2.1).
    params: list[tuple[str, str]] = [
        ("projectId", project_id),
        ("order_by", order_by),
        ("sort_by", sort_by),
    ]
    if page_size is not None:
        params.append(("page_size", str(page_size)))
    params += [
        ("page_no", str(page_no)),
        ("show_archived", str(show_archived).lower()),
        ("status", status.lower()),
    ]
    if tag:
        params.append(("tag", tag))
    return ApiRequest("GET", "/v4/jobs", tuple(params))


def runtime_details(job_id: str) -> ApiRequest:
    from .errors import JobNotFoundError

    return ApiRequest(
        "GET", f"/v4/jobs/{_seg(job_id)}/runtimeExecutionDetails", not_found=JobNotFoundError
    )


def hardware_tiers(project_id: str) -> ApiRequest:
    return ApiRequest("GET", f"/v4/projects/{_seg(project_id)}/hardwareTiers")


def environments(project_id: str) -> ApiRequest:
    return ApiRequest("GET", f"/v4/projects/{_seg(project_id)}/useableEnvironments")


def spark_defaults(project_id: str) -> ApiRequest:
    return ApiRequest("GET", f"/v4/jobs/project/{_seg(project_id)}/defaultSparkSettings")


# --- responses ---------------------------------------------------------------------------------

_EXCERPT = 200
#: The longest a server-requested ``Retry-After`` is honoured (seconds). Longer requests are cut
#: to this: a proxy answering ``Retry-After: 100000`` must not park a job start for 28 hours.
MAX_RETRY_AFTER = 120.0
_REPLACEMENT = "\ufffd"


def excerpt(content: bytes | str, secrets: Iterable[str] = ()) -> str:
    """A short one-line quote of a body for messages, every secret replaced first (a 401 page may
    echo the key; redacting after truncation could leave half of it)."""
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    text = redact(text, secrets)
    text = " ".join(text.split())
    return text[:_EXCERPT] + ("…" if len(text) > _EXCERPT else "")


# Retry-After (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date in any of its three forms
# (§5.6.7): IMF-fixdate, obsolete RFC 850 and asctime. Anything else is ignored.
_DELTA = re.compile(r"\d{1,12}(\.\d{1,6})?")
_DATE_FORMATS = (
    "%a, %d %b %Y %H:%M:%S",  # IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    "%A, %d-%b-%y %H:%M:%S",  # RFC 850:     Sunday, 06-Nov-94 08:49:37 GMT
    "%a %b %d %H:%M:%S %Y",   # asctime:     Sun Nov  6 08:49:37 1994
)


def retry_after_seconds(
    value: str | None, *, now: float | None = None, cap: float = MAX_RETRY_AFTER
) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, at most ``cap``; None when absent or not a
    valid RFC 9110 value (``inf``, ``nan``, negative numbers and garbage are ignored, never
    raised)."""
    if not value:
        return None
    text = str(value).strip()
    if _DELTA.fullmatch(text):
        return min(float(text), cap)
    when = _http_date(text)
    if when is None:
        return None
    current = time.time() if now is None else now
    return min(max(0.0, when - current), cap)


def _http_date(text: str) -> float | None:
    body = " ".join(text.split())
    for zone in (" GMT", " UTC", " UT", " +0000", " -0000", " Z"):
        if body.upper().endswith(zone):
            body = body[: -len(zone)]
            break
    for fmt in _DATE_FORMATS:
        try:
            parsed = datetime.strptime(body, fmt)
        except ValueError:
            continue
        return parsed.replace(tzinfo=timezone.utc).timestamp()
    try:  # lenient forms (other zones, missing weekday) as email.utils reads them
        lenient = parsedate_to_datetime(text)
        if lenient.tzinfo is None:  # "-0000" and asctime come back naive: they mean UTC
            lenient = lenient.replace(tzinfo=timezone.utc)
        return lenient.timestamp()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


def decode_json(content: bytes) -> Any:
    """Parse a JSON body leniently: invalid UTF-8 bytes and lone surrogate escapes become U+FFFD
    and raw control characters inside strings are accepted, so one bad byte in a log can never
    make a whole response unreadable. Raises ``ValueError`` only for what is not JSON at all."""
    return _decode_text(content.decode("utf-8", "replace"))


def _decode_text(text: str) -> Any:
    text = text.lstrip("\ufeff")
    try:
        value = json.loads(text, strict=False)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        value = _without_surrogates(value)
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(text: str) -> str:
    return _SURROGATE.sub(_REPLACEMENT, text)


def _without_surrogates(value: Any) -> Any:
    """Replace unpaired surrogates (``"\\ud800"`` decodes to one) in every string, iteratively:
    they crash any later encode, and a pathological body may nest deeply."""
    root = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        parent, key = stack.pop()
        item = parent[key]
        if isinstance(item, str):
            parent[key] = _clean(item)
        elif isinstance(item, list):
            stack.extend((item, i) for i in range(len(item)))
        elif isinstance(item, dict):
            cleaned = {(_clean(k) if isinstance(k, str) else k): v for k, v in item.items()}
            item.clear()
            item.update(cleaned)
            stack.extend((item, k) for k in item)
    return root[0]


_JSON_SPACE = " \t\n\r"
#: The inside of a JSON string, up to its closing quote or an escape that has not fully arrived.
_STRING_BODY = re.compile(r'(?:[^"\\]++|\\.)*+', re.DOTALL)
_HIGH_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}")
_RAW_DECODER = json.JSONDecoder(strict=False)
_NUMBER_CHARS = re.compile(r"[-+0-9.eE]*")


def _safe_cut(segment: str) -> int:
    """Where to cut the inside of a JSON string so the part before decodes on its own: before a
    ``\\u`` escape whose digits have not all arrived, or a high surrogate whose pair may follow."""
    cut = len(segment)
    for _ in range(2):
        found = segment.rfind("\\u", max(0, cut - 6), cut)
        if found < 0:
            break
        run = found
        while run > 0 and segment[run - 1] == "\\":
            run -= 1
        if (found - run) % 2:  # an escaped backslash followed by a plain "u"
            break
        escape = segment[found:cut]
        if len(escape) < 6 or _HIGH_SURROGATE_ESCAPE.fullmatch(escape):
            cut = found
            continue
        break
    return cut


def _decode_piece(segment: str) -> str:
    """The text of part of a JSON string's inside (complete escapes only), as ``decode_json``
    gives it (lone surrogates become U+FFFD)."""
    text: str = json.loads('"' + segment + '"', strict=False)
    if "\\u" in segment and _SURROGATE_ESCAPE.search(segment):
        text = _clean(text)
    return text


class StreamedObject:
    """Decodes a JSON object as its bytes arrive; its string member ``key`` (Domino's whole log,
    resent on every fetch) is handed on piece by piece and never held whole.

    ``begin()`` is called when that member's string starts and returns a consumer with
    ``feed(text)`` and ``close()``. The consumer is fed exactly the text ``decode_json`` would give
    for that string, and closed only once the whole body was read and found valid. ``close()``
    returns ``(members, consumer)``: the other members as ``decode_json`` decodes them, and the
    consumer, or None when ``key`` was absent or not a string (its value is then in ``members``).
    A body that is not an object is decoded whole and returned as ``(value, None)``. What is not
    JSON raises ``ValueError`` (also a second ``key`` member, which a streamed read cannot undo).
    """

    def __init__(self, key: str, begin: Callable[[], Any]) -> None:
        self._key = key
        self._begin = begin
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        self._state = "start"
        self._began = False  # a character other than a leading BOM was seen
        self._buf = ""  # text not handled yet (an escape split between two reads)
        self._parts: list[str] = []  # the raw token being collected (a name, a small value)
        self._whole: list[str] | None = None  # a body that is not an object, decoded at the end
        self._name: str | None = None
        self._consumer: Any = None
        self.members: dict[str, Any] = {}

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the body."""
        self._text(self._utf8.decode(data))

    def close(self) -> tuple[Any, Any]:
        """The body is complete: check it and close the consumer (see the class docstring)."""
        self._text(self._utf8.decode(b"", final=True))
        if self._whole is not None:
            return _decode_text("".join(self._whole)), None
        if self._state == "start":
            return _decode_text(""), None  # raises, as for an empty body
        if self._state != "end":
            raise ValueError("the JSON body ended before the object was complete")
        if self._consumer is not None:
            self._consumer.close()
        return self.members, self._consumer

    def _set(self, value: Any) -> None:
        name = self._name
        if name == self._key and (self._consumer is not None or name in self.members):
            raise ValueError(f"the member {name!r} appears twice")
        self.members[name] = value  # type: ignore[index]

    def _text(self, text: str) -> None:  # one state machine, kept in one place
        if self._whole is not None:
            self._whole.append(text)
            return
        buf = self._buf + text if self._buf else text
        self._buf = ""
        i, n = 0, len(buf)
        while i < n:
            state, char = self._state, buf[i]
            if state in ("string", "name", "stream"):
                i = self._string(buf, i, state)
                if i < 0:
                    return
                continue
            if state == "value_raw":  # a number, literal, object or array: small, decoded whole
                raw = "".join(self._parts) + buf[i:]
                number = _NUMBER_CHARS.match(raw).end()  # type: ignore[union-attr]
                if number == len(raw):
                    self._parts = [raw]  # a number (or nothing yet) may go on in the next read
                    return
                try:
                    value, end = _RAW_DECODER.raw_decode(raw)
                except ValueError:
                    self._parts = [raw]  # incomplete so far (or invalid: seen at the end)
                    return
                if end < number:  # "1." or "1e": json.loads refuses it too
                    raise ValueError(f"invalid number {raw[:number]!r}")
                self._parts = []
                self._set(_without_surrogates(value))
                buf, i, n = raw[end:], 0, len(raw) - end
                self._state = "after_value"
                continue
            if char in _JSON_SPACE and state != "start":
                i += 1
                continue
            i += 1
            if state == "start":
                if char == "\ufeff" and not self._began:
                    continue
                self._began = True
                if char in _JSON_SPACE:
                    continue
                if char != "{":
                    self._whole = [buf[i - 1 :]]
                    return
                self._state = "first_name"
            elif state in ("first_name", "next_name"):
                if char == "}" and state == "first_name":
                    self._state = "end"
                elif char == '"':
                    self._state = "name"
                else:
                    raise ValueError(f"expected a member name, found {char!r}")
            elif state == "colon":
                if char != ":":
                    raise ValueError(f"expected ':', found {char!r}")
                self._state = "value"
            elif state == "value":
                if char == '"' and self._name == self._key:
                    self._set(None)  # raises on a second member of that name
                    del self.members[self._key]
                    self._consumer = self._begin()
                    self._state = "stream"
                elif char == '"':
                    self._state = "string"
                else:
                    i -= 1
                    self._state = "value_raw"
            elif state == "after_value":
                if char == ",":
                    self._state = "next_name"
                elif char == "}":
                    self._state = "end"
                else:
                    raise ValueError(f"expected ',' or '}}', found {char!r}")
            else:  # end
                raise ValueError("extra data after the JSON object")

    def _string(self, buf: str, i: int, state: str) -> int:
        """Consume the inside of a string from ``buf[i]``: the index after its closing quote, or
        -1 when the string goes on in the next read."""
        end = _STRING_BODY.match(buf, i).end()  # type: ignore[union-attr]
        # It stops at the closing quote, the end of this read, or a backslash ending this read.
        closed = end < len(buf) and buf[end] == '"'
        segment = buf[i:end]
        if not closed:
            cut = _safe_cut(segment) if state == "stream" else len(segment)
            self._buf = buf[i + cut :]
            segment = segment[:cut]
        if state == "stream":
            if segment:
                self._consumer.feed(_decode_piece(segment))
        else:
            self._parts.append(segment)
        if not closed:
            return -1
        if state == "stream":
            self._state = "after_value"
        else:
            value = _decode_piece("".join(self._parts))
            self._parts = []
            if state == "name":
                self._name, self._state = value, "colon"
            else:
                self._set(value)
                self._state = "after_value"
        return end + 1


def interpret(
    req: ApiRequest, status: int, headers: Mapping[str, str], content: bytes,
    secrets: Iterable[str] = (),
) -> Any:
    """Decode a response or raise the one typed error that says what happened.

    ``secrets`` are replaced in every excerpt and message. Never raises anything but a
    ``DominoError``, whatever the status, headers and bytes.
    """
    try:
        return _interpret(req, status, headers, content, tuple(secrets))
    except DominoError:
        raise
    except Exception as exc:  # a defect here must still reach the user as a typed error
        raise InvalidResponseError(
            f"Domino's answer to {req.method} {req.path} (HTTP {status}) could not be read "
            f"({type(exc).__name__})",
            status_code=status if isinstance(status, int) else 0, method=req.method,
            path=req.path, excerpt="",
        ) from None


def _interpret(
    req: ApiRequest, status: int, headers: Mapping[str, str], content: bytes,
    secrets: tuple[str, ...],
) -> Any:
    where = {"method": req.method, "path": req.path}
    if 200 <= status < 300:
        if not content.strip():
            if req.empty_ok:
                return None
            raise InvalidResponseError(
                f"Domino returned an empty body for {req.method} {req.path} (HTTP {status})",
                status_code=status, excerpt="", **where,
            )
        try:
            return decode_json(content)
        except ValueError:
            if req.empty_ok:
                return None
            snippet = excerpt(content, secrets)
            raise InvalidResponseError(
                f"Domino returned unreadable JSON for {req.method} {req.path} (HTTP {status}): "
                f"{snippet!r}. A proxy or load balancer may be answering instead of Domino.",
                status_code=status, excerpt=snippet, **where,
            ) from None
    snippet = excerpt(content, secrets)
    detail = _error_detail(content, secrets) or snippet
    label = f"{req.method} {req.path} → HTTP {status}"
    if 300 <= status < 400:
        raise redirect_error(req, status, headers.get("location"), secrets=secrets)
    if status in (401, 403, 409):
        hint = (
            "temporary credentials expired; re-read the token or use an API key"
            if status == 409
            else "check the API key / token and that it can access this project"
        )
        raise AuthenticationError(
            f"{label}: {detail} ({hint})", status_code=status, excerpt=snippet, **where
        )
    if status == 404:
        raise req.not_found(
            f"{label}: not found — {detail}. Check the project (owner/name) and the job id.",
            status_code=status, excerpt=snippet, **where,
        )
    if status == 429:
        raw_wait = headers.get("retry-after")
        wait = retry_after_seconds(raw_wait)
        raise RateLimitedError(
            f"{label}: rate limited by Domino" + (f"; retry after {wait:.0f}s" if wait else ""),
            retry_after=wait, status_code=status, excerpt=snippet, **where,
        )
    if status >= 500 or status == 408:
        kind = "an HTML error page" if "<html" in snippet.lower() else "a server error"
        # RFC 9110 §10.2.3: a 503 may say when to come back, as a 429 does.
        wait = retry_after_seconds(headers.get("retry-after")) if status == 503 else None
        raise ServerError(
            f"{label}: Domino returned {kind}: {snippet!r}",
            retry_after=wait, status_code=status, excerpt=snippet, **where,
        )
    if 400 <= status < 500:
        raise BadRequestError(
            f"{label}: Domino rejected the request: {detail}",
            status_code=status, excerpt=snippet, **where,
        )
    raise DominoAPIError(f"{label}: unexpected status", status_code=status, excerpt=snippet, **where)


def redirect_error(
    req: ApiRequest, status: int, location: str | None, reason: str | None = None,
    secrets: Iterable[str] = (),
) -> RedirectError:
    """The error for a redirect the transport will not follow, naming ``Location`` (without any
    credentials in it) and what to do."""
    shown = redact(without_userinfo(location.strip()), secrets) if location else ""
    if not shown:
        why = reason or "without a Location header"
        return RedirectError(
            f"{req.method} {req.path} → HTTP {status}: Domino answered with a redirect {why}; "
            "check the host (a proxy or load balancer may be answering instead of Domino).",
            status_code=status, location="", method=req.method, path=req.path,
        )
    why = reason or (
        "to another origin; it was not followed because the Domino credentials are only ever "
        "sent to the configured host"
    )
    return RedirectError(
        f"{req.method} {req.path} → HTTP {status}: Domino redirected to Location {shown!r} {why}. "
        "If Domino moved, set the host (DOMINO_API_HOST) to the new address.",
        status_code=status, location=shown, method=req.method, path=req.path,
    )


def _error_detail(content: bytes, secrets: Iterable[str] = ()) -> str | None:
    try:
        data = decode_json(content)
    except ValueError:
        return None
    if isinstance(data, dict):
        for key in ("message", "error", "errors", "detail"):
            if data.get(key):
                return excerpt(str(data[key]), secrets)
    return None
