"""Property-based fuzzing of what a hostile Domino controls: the status, the headers and the
bytes of every response. ``api.interpret`` and the Retry-After parser must never raise anything
but a typed ``DominoError``, never hand back a string that cannot be encoded, never leak a secret
into a message, and no server-requested wait may exceed the cap."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domino_orchestrate.core import DominoError, RateLimitedError, RetryPolicy, api
from domino_orchestrate.core.retry import capped_wait

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SECRET = "fz-secret-0123456789"
REQUESTS = [api.job_get("j1"), api.stdout("o", "p", "j1"), api.job_stop("p", "j1", True),
            api.jobs_list("p"), api.find_project("o", "p")]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=20,
)
header_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["inf", "-inf", "nan", "1e999", "-1", "0", "100000", "99999999999999999",
                     "Sun Nov  6 08:49:37 1994", "Sunday, 06-Nov-94 08:49:37 GMT",
                     "Tue, 06 Nov 2094 08:49:37 -0000", "Mon, 31 Feb 2026 25:61:61 GMT",
                     "Fri, 31 Dec 9999 23:59:59 GMT", "Sat, 01 Jan 0001 00:00:00 GMT"]),
)
statuses = st.one_of(st.integers(100, 599), st.sampled_from([200, 301, 307, 401, 404, 429, 503]),
                     st.integers(-5, 10_000))


def _strings(value: Any) -> list[str]:
    stack, found = [value], []
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
    return found


def _check(req: api.ApiRequest, status: int, headers: dict[str, str], body: bytes) -> None:
    try:
        value = api.interpret(req, status, headers, body, secrets=[SECRET])
    except DominoError as exc:
        text = f"{exc} {getattr(exc, 'excerpt', '')}"
        assert SECRET not in text
        text.encode("utf-8")
        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
            assert 0 <= exc.retry_after <= api.MAX_RETRY_AFTER
        return
    for text in _strings(value):
        text.encode("utf-8")  # no lone surrogate survives


@FUZZ
@given(req=st.sampled_from(REQUESTS), status=statuses, body=st.binary(max_size=300),
       retry_after=header_values, location=header_values)
def test_arbitrary_bytes_statuses_and_headers(
    req: api.ApiRequest, status: int, body: bytes, retry_after: str, location: str
) -> None:
    _check(req, status, {"retry-after": retry_after, "location": location}, body)


@FUZZ
@given(req=st.sampled_from(REQUESTS), status=statuses, value=json_values,
       ascii_only=st.booleans(), junk=st.binary(max_size=3), where=st.integers(0, 400),
       with_secret=st.booleans())
def test_arbitrary_json_shapes_with_corruption(
    req: api.ApiRequest, status: int, value: Any, ascii_only: bool, junk: bytes, where: int,
    with_secret: bool,
) -> None:
    if with_secret:
        value = {"message": f"echo {SECRET}", "data": value}
    text = json.dumps(value, ensure_ascii=ascii_only)
    body = text.encode("utf-8", "surrogatepass")
    body = body[:where] + junk + body[where:]  # an invalid byte or control char anywhere
    _check(req, status, {}, body)


@FUZZ
@given(value=header_values, now=st.floats(0, 4e9))
def test_retry_after_never_raises_and_never_exceeds_the_cap(value: str, now: float) -> None:
    seconds = api.retry_after_seconds(value, now=now)
    assert seconds is None or 0 <= seconds <= api.MAX_RETRY_AFTER


@FUZZ
@given(when=st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2099, 12, 31)),
       form=st.sampled_from(["%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                             "%a %b %e %H:%M:%S %Y"]))
def test_every_http_date_form_parses(when: datetime, form: str) -> None:
    if "%y" in form and not 2000 <= when.year < 2069:
        when = when.replace(year=2000 + when.year % 69)  # two-digit years: keep them unambiguous
    when = when.replace(microsecond=0, tzinfo=timezone.utc)
    now = when.timestamp() - 30
    assert api.retry_after_seconds(when.strftime(form), now=now) == 30.0


@FUZZ
@given(retry_after=st.floats(allow_nan=True, allow_infinity=True) | st.none(),
       attempt=st.integers(1, 50), remaining=st.floats(-10, 1e6) | st.none())
def test_no_wait_is_ever_unsafe(retry_after: float | None, attempt: int,
                                remaining: float | None) -> None:
    policy = RetryPolicy(max_retries=100)
    error = RateLimitedError("429", retry_after=retry_after, status_code=429)
    wait = policy.wait_seconds(attempt, error)
    assert math.isfinite(wait) and 0 <= wait <= max(policy.max_wait, policy.max_retry_after)
    capped = capped_wait(retry_after if retry_after is not None else 0, remaining)
    assert math.isfinite(capped) and 0 <= capped <= api.MAX_RETRY_AFTER
    if remaining is not None:
        assert capped <= max(0.0, remaining)
