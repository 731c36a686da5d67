"""Delivery of lineage events: the Databand transport, the spooling wrapper, and the emitter.

What lives here:

* ``DatabandTransport`` (``type: databand`` in openlineage.yml, or env
  ``DOMINO_ORCHESTRATE_DATABAND_URL``/``_TOKEN``): POSTs a gzip JSON *list* of events to
  Databand's custom-integration bulk endpoint with ``Authorization: Bearer <token>``.
  ``batch_size`` > 1 buffers events until the batch is full or ``flush()``/``close()``.
* ``SpoolingTransport``: wraps one destination so that a failure never reaches the job. A failed
  event goes to the destination's ``Spool``; spooled events are re-sent, oldest first, on a later
  emission or by ``flush_spool()``. After a failure the destination is skipped for ``cooldown_s``
  (events go straight to the spool), so a dead backend costs one short timeout, not one per event.
* ``Emitter``: openlineage-python's ``OpenLineageClient`` (so openlineage.yml tags, filters and
  env facets apply) over a fan-out of spooling destinations; cached per configuration.

What must not live here: event building (``events.py``) or job-state logic (``observer.py``).
Emission never raises: this module is the one boundary that catches, logs and counts.
"""

from __future__ import annotations

import atexit
import contextlib
import gzip
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import attr
from openlineage.client.serde import Serde
from openlineage.client.transport import (
    Config,
    Transport,
    get_default_factory,
    register_transport,
)

from .config import DATABAND_TOKEN_ENV, DATABAND_URL_ENV, SPOOL_ENV, LineageSettings
from .spool import Spool, SpooledEvent

__all__ = [
    "DatabandConfig",
    "DatabandTransport",
    "DeliveryError",
    "Emitter",
    "SpoolingTransport",
    "build_destinations",
    "flush_spool",
    "get_emitter",
]

log = logging.getLogger("domino_orchestrate.lineage")

#: ``type: domino_store`` (the lineage store) resolves by name wherever our lineage is loaded; a
#: dotted path, so SQLAlchemy is imported only when a store is configured.
get_default_factory().register_transport(
    "domino_store", "domino_orchestrate.trace.transport.DominoStoreTransport")

#: Seconds a job's end waits for spooled events to go out (``Emitter.settle``).
DELIVERY_WAIT_ENV = "DOMINO_ORCHESTRATE_LINEAGE_DELIVERY_WAIT"
DEFAULT_DELIVERY_WAIT_S = 5.0


def delivery_wait() -> float:
    """``DOMINO_ORCHESTRATE_LINEAGE_DELIVERY_WAIT`` seconds (5 by default; 0 = do not wait)."""
    import os

    try:
        return max(0.0, float(os.environ.get(DELIVERY_WAIT_ENV) or DEFAULT_DELIVERY_WAIT_S))
    except ValueError:
        return DEFAULT_DELIVERY_WAIT_S


#: Most events in one POST when draining a spool.
MAX_BATCH = 100
#: On each emission at most this many seconds go into re-sending spooled events.
DRAIN_BUDGET_S = 2.0
#: urllib3 retries for openlineage-python's HTTP transport unless the user configured some:
#: its default (5 retries with backoff) would hold a task ~10 s per event when the backend is down.
SHORT_HTTP_RETRY: dict[str, Any] = {
    "total": 1, "read": 1, "connect": 1, "backoff_factor": 0.2,
    "status_forcelist": [500, 502, 503, 504], "allowed_methods": ["HEAD", "POST"],
}


class DeliveryError(Exception):
    """A transport could not deliver ``events`` (JSON-ready dicts, in order)."""

    def __init__(self, message: str, events: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(message)
        self.events = list(events)


def _as_dict(event: Any) -> dict[str, Any]:
    return event if isinstance(event, dict) else Serde.to_dict(event)


# --- Databand ------------------------------------------------------------------------------------


@attr.define
class DatabandConfig(Config):
    """``url``: the full bulk endpoint shown in Databand's UI
    (``https://<host>/api/v1/tracking/open-lineage/<uid>/events/bulk``); ``token``: access token."""

    url: str
    token: str | None = attr.field(default=None, repr=False)
    timeout: float = 5.0
    batch_size: int = 1
    verify: bool = True

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> DatabandConfig:
        """The config from an ``openlineage.yml`` transport section (``url``, ``token``...)."""
        import os

        url = params.get("url") or os.environ.get(DATABAND_URL_ENV)
        if not url:
            raise ValueError(f"Databand transport needs `url` (or env {DATABAND_URL_ENV})")
        return cls(
            url=str(url),
            token=params.get("token") or os.environ.get(DATABAND_TOKEN_ENV),
            timeout=float(params.get("timeout", 5.0)),
            batch_size=max(1, int(params.get("batch_size", 1))),
            verify=str(params.get("verify", True)).lower() not in {"false", "0", "no"},
        )


@register_transport
class DatabandTransport(Transport):
    """OpenLineage transport to Databand's bulk endpoint: queued events go out as one gzip
    list per POST.
    """
    kind = "databand"
    config_class = DatabandConfig

    def __init__(self, config: DatabandConfig) -> None:
        self.config = config
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._session: Any = None

    def __repr__(self) -> str:
        return f"<DatabandTransport url={self.config.url!r}>"

    def emit(self, event: Any) -> None:
        """Queue one event; a full batch is sent at once, the rest with the next ``flush``."""
        with self._lock:
            self._buffer.append(_as_dict(event))
            full = len(self._buffer) >= self.config.batch_size
        if full:
            self.flush()

    def flush(self) -> None:
        """Send what is buffered; on failure raise ``DeliveryError`` carrying those events."""
        with self._lock:
            batch, self._buffer = self._buffer, []
        for start in range(0, len(batch), MAX_BATCH):
            try:
                self.emit_batch(batch[start : start + MAX_BATCH])
            except DeliveryError as exc:
                raise DeliveryError(str(exc), batch[start:]) from None

    def emit_batch(self, events: Sequence[dict[str, Any]]) -> None:
        """POST ``events`` as one gzip JSON list; raise ``DeliveryError`` unless 2xx."""
        if not events:
            return
        import requests

        if self._session is None:
            self._session = requests.Session()
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        }
        if self.config.token:
            headers["Authorization"] = f"Bearer {self.config.token}"
        body = gzip.compress(json.dumps(list(events), default=str).encode("utf-8"))
        try:
            resp = self._session.post(
                self.config.url, data=body, headers=headers,
                timeout=self.config.timeout, verify=self.config.verify,
            )
        except requests.RequestException as exc:
            # The message names the exception type only: requests' texts may carry the URL.
            raise DeliveryError(f"Databand unreachable ({type(exc).__name__})", events) from None
        if not 200 <= resp.status_code < 300:
            raise DeliveryError(f"Databand answered HTTP {resp.status_code}", events)

    def close(self, timeout: float = -1) -> bool:
        """Send what is queued; ``True`` when nothing is left."""
        try:
            self.flush()
        except DeliveryError as exc:
            log.warning("Databand transport closed with %d undelivered events: %s",
                        len(exc.events), exc)
            return False
        finally:
            if self._session is not None:
                self._session.close()
                self._session = None
        return True


# --- spooling -------------------------------------------------------------------------------------


class SpoolingTransport(Transport):
    """One destination that never raises: failures spool, later emissions re-send in order."""

    kind = "domino_spool"

    def __init__(self, inner: Transport, spool: Spool, name: str, *, cooldown_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner, self.spool, self.name = inner, spool, name
        self.cooldown_s, self.clock = cooldown_s, clock
        self._down_until = 0.0
        self._lock = threading.RLock()
        #: Counters for tests and logs.
        self.sent = 0
        self.spooled = 0
        self.failures = 0

    def __repr__(self) -> str:
        return f"<SpoolingTransport {self.name} -> {self.spool.dir}>"

    # --- emit ---
    def emit(self, event: Any) -> None:
        """Send the event, or spool it to disk when the backend cannot take it now."""
        with self._lock:
            try:
                self._emit(event)
            except Exception as exc:  # the spool itself failed (disk full, read-only...)
                self.failures += 1
                log.error("Lineage event for %s lost: could not spool it (%s)", self.name, exc)

    def _emit(self, event: Any) -> None:
        data = _as_dict(event)
        if self.clock() < self._down_until:
            self._put([data])
            return
        if self.spool.count():
            self.drain(budget_s=DRAIN_BUDGET_S)
        run_id = str((data.get("run") or {}).get("runId") or "")
        if self.clock() < self._down_until or (run_id and self.spool.has_run(run_id)):
            self._put([data])  # queue behind this run's earlier events
            return
        try:
            self.inner.emit(event)
        except DeliveryError as exc:
            self._failed(exc)
            self._put(exc.events or [data])
        except Exception as exc:
            self._failed(exc)
            self._put([data])
        else:
            self.sent += 1

    def _put(self, events: Sequence[dict[str, Any]]) -> None:
        for data in events:
            self.spool.put(data)
            self.spooled += 1

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        self._down_until = self.clock() + self.cooldown_s
        log.warning(
            "Lineage destination %s unavailable (%s); events are spooled in %s and re-sent later",
            self.name, _describe(exc), self.spool.dir,
        )

    # --- re-send ---
    def drain(self, budget_s: float | None = None) -> int:
        """Re-send spooled events oldest first; stop at the first failure. Returns how many."""
        with self._lock:
            self.spool.recover_stale()
            deadline = None if budget_s is None else self.clock() + budget_s
            before = self.sent
            names = self.spool.pending()
            batch_capable = callable(getattr(self.inner, "emit_batch", None))
            step = MAX_BATCH if batch_capable else 1
            for start in range(0, len(names), step):
                if deadline is not None and self.clock() >= deadline:
                    break
                claimed = [c for c in map(self.spool.claim, names[start : start + step]) if c]
                if not claimed:
                    continue
                if not self._resend(claimed, batch_capable):
                    break
            return self.sent - before

    def _resend(self, claimed: list[SpooledEvent], batch_capable: bool) -> bool:
        pending = list(claimed)
        try:
            if batch_capable:
                self.inner.emit_batch([c.event for c in pending])  # type: ignore[attr-defined]
                for item in pending:
                    self.spool.done(item)
                self.sent += len(pending)
                pending = []
            else:
                while pending:
                    self.inner.emit(pending[0].event)  # type: ignore[arg-type]
                    self.spool.done(pending.pop(0))
                    self.sent += 1
        except Exception as exc:
            self._failed(exc)
            for item in pending:
                self.spool.release(item)
            return False
        return True

    def flush(self) -> None:
        """Push out anything the inner transport buffers (Databand batches)."""
        with self._lock:
            flush = getattr(self.inner, "flush", None)
            if not callable(flush):
                return
            try:
                flush()
            except DeliveryError as exc:
                self._failed(exc)
                self._put(exc.events)
            except Exception as exc:
                self._failed(exc)

    def close(self, timeout: float = -1) -> bool:
        """Flush, then close the destination behind; ``True`` when it closed with nothing left."""
        self.flush()
        try:
            return bool(self.inner.close(timeout))
        except Exception as exc:
            log.warning("Closing lineage destination %s failed: %s", self.name, _describe(exc))
            return False


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


class _Fanout(Transport):
    """Hands each event to every destination (each one isolates its own failures)."""

    kind = "domino_fanout"

    def __init__(self, destinations: Sequence[SpoolingTransport]) -> None:
        self.destinations = list(destinations)

    def emit(self, event: Any) -> None:
        for dest in self.destinations:
            dest.emit(event)

    def close(self, timeout: float = -1) -> bool:
        return all([dest.close(timeout) for dest in self.destinations])


# --- building ---------------------------------------------------------------------------------


def _shorten_http_retries(transport: Transport, user_config: dict[str, Any] | None) -> None:
    from openlineage.client.transport.http import HttpTransport

    if isinstance(transport, HttpTransport) and "retry" not in (user_config or {}):
        transport.config.retry = dict(SHORT_HTTP_RETRY)


def build_destinations(settings: LineageSettings) -> list[SpoolingTransport]:
    """The configured destinations, each behind its own spool directory."""
    destinations: list[SpoolingTransport] = []
    if settings.openlineage_client:
        from openlineage.client import OpenLineageClient
        from openlineage.client.transport.noop import NoopTransport

        probe = (OpenLineageClient(config=dict(settings.client_config))
                 if settings.client_config else OpenLineageClient())
        inner = probe.transport
        if not isinstance(inner, NoopTransport):
            _shorten_http_retries(inner, probe.config.transport)
            destinations.append(SpoolingTransport(
                inner, Spool(settings.spool_dir / "openlineage"), "openlineage",
                cooldown_s=settings.cooldown_s,
            ))
    if settings.store:
        from domino_orchestrate.trace.transport import DominoStoreConfig, DominoStoreTransport

        destinations.append(SpoolingTransport(
            DominoStoreTransport(DominoStoreConfig(store=settings.store)),
            Spool(settings.spool_dir / "store"), "store", cooldown_s=settings.cooldown_s,
        ))
    if settings.databand_url:
        databand = DatabandTransport(DatabandConfig(
            url=settings.databand_url, token=settings.databand_token, timeout=settings.timeout_s,
        ))
        destinations.append(SpoolingTransport(
            databand, Spool(settings.spool_dir / "databand"), "databand",
            cooldown_s=settings.cooldown_s,
        ))
    return destinations


class Emitter:
    """Sends RunEvents through openlineage-python's client to every destination; never raises."""

    def __init__(self, destinations: Sequence[SpoolingTransport]) -> None:
        from openlineage.client import OpenLineageClient

        self.fanout = _Fanout(destinations)
        self.client = OpenLineageClient(transport=self.fanout)
        self.errors = 0

    @property
    def destinations(self) -> list[SpoolingTransport]:
        return self.fanout.destinations

    def emit(self, event: Any) -> None:
        """Send one RunEvent to every destination (never raises)."""
        try:
            self.client.emit(event)
        except Exception as exc:
            self.errors += 1
            log.warning("Lineage event not emitted: %s", _describe(exc))

    def flush(self) -> None:
        """Push out what the destinations queued or spooled (never raises)."""
        for dest in self.destinations:
            dest.flush()

    def settle(self, wait_s: float | None = None) -> int:
        """Try to deliver what is spooled, for at most ``wait_s`` seconds (default
        ``DOMINO_ORCHESTRATE_LINEAGE_DELIVERY_WAIT``, 5): called when a job ends, so an
        ephemeral worker does not take undelivered events with it. Returns how many events stay
        spooled; when some do, a WARNING names the spool and ``domino-orchestrate lineage
        flush``, the command that delivers them from wherever that directory is reachable."""
        if wait_s is None:
            wait_s = delivery_wait()
        deadline = time.monotonic() + max(0.0, wait_s)
        pause = 0.2
        while True:
            left = [d for d in self.destinations if d.spool.count()]
            if not left:
                return 0
            for dest in left:
                dest.drain(budget_s=max(0.0, deadline - time.monotonic()))
            left = [d for d in self.destinations if d.spool.count()]
            if not left or time.monotonic() + pause > deadline:
                break
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
        remaining = sum(d.spool.count() for d in left)
        if remaining:
            log.warning(
                "%d lineage event(s) not delivered yet, kept in %s: run `domino-orchestrate "
                "lineage flush` where that directory is (set %s to a shared volume on ephemeral "
                "workers)", remaining, ", ".join(str(d.spool.dir) for d in left), SPOOL_ENV)
        return remaining

    def close(self) -> None:
        """Flush and close every destination (never raises)."""
        for dest in self.destinations:
            dest.close()


_emitters: dict[tuple[Any, ...], Emitter] = {}
_emitters_lock = threading.Lock()


def get_emitter(settings: LineageSettings) -> Emitter | None:
    """The process-wide emitter for this configuration (None when nothing is configured)."""
    key = settings.fingerprint()
    with _emitters_lock:
        emitter = _emitters.get(key)
        if emitter is None:
            destinations = build_destinations(settings)
            if not destinations:
                return None
            emitter = _emitters[key] = Emitter(destinations)
        return emitter


@atexit.register
def _flush_at_exit() -> None:
    for emitter in list(_emitters.values()):
        with contextlib.suppress(Exception):
            emitter.flush()


def flush_spool(spool_dir: str | Path | None = None, *,
                settings: LineageSettings | None = None) -> tuple[int, int]:
    """Deliver every spooled event to the configured destinations, oldest first.

    Used by ``domino-orchestrate lineage flush``. Returns ``(delivered, remaining)``; remaining
    counts every event still in the spool (including destinations no longer configured).
    """
    settings = settings or LineageSettings.from_env()
    if spool_dir is not None:
        settings = replace(settings, spool_dir=Path(spool_dir))
    delivered = 0
    for dest in build_destinations(settings):
        delivered += dest.drain()
        dest.close()
    remaining = 0
    if settings.spool_dir.is_dir():
        for child in settings.spool_dir.iterdir():
            # MLflow closes (mlflow_sink's spool), the job journal and parent markers are no events.
            if child.is_dir() and child.name not in {"mlflow", "jobs", "parents"}:
                remaining += Spool(child).count()
    return delivered, remaining
