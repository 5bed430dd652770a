"""Shopper-behaviour events, recorded off the request path.

``record(kind, ...)`` (or a request's ``Tracker``) appends one small dict to this process's bounded
in-memory queue and returns: no I/O, never blocks, never raises. A background task writes the queue to
``analytics_events`` with ``insert_many`` — when ``ANALYTICS_BATCH_SIZE`` events wait, or every
``ANALYTICS_FLUSH_SECONDS`` — as buckets of up to ``ANALYTICS_BATCH_SIZE`` events of one kind (one document
per bucket, see app/models/analytics.py), and, when ``ANALYTICS_FORWARD_URL`` is set, hands each batch to a
forwarder that POSTs it to an external collector, retried with exponential backoff and dropped after a
bound. A full queue
drops the new event; a failed write drops its batch; both are counted in ``analytics_events_total``
(/metrics) and logged, never surfaced to the shopper. When the process stops, the writer's last flush writes
what is queued (bounded by ``STOP_TIMEOUT_SECONDS``); a process killed outright loses at most one flush
interval of events.

Events carry ids only (visitor, user, product, order) and, for searches, the folded query text and the
number of results. The visitor id is whatever the storefront keeps in ``X-Visitor-Id`` (a random token it
stores in the browser); an id of the wrong shape is ignored, never an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from datetime import timedelta
from typing import Any

import httpx
from pymongo.errors import BulkWriteError

from app.config import Settings
from app.core.clock import utcnow
from app.core.context import user_id_var
from app.core.ids import new_id_at
from app.core.metrics import ANALYTICS_EVENTS, ANALYTICS_FORWARD
from app.core.security import decode_access_token
from app.core.text import normalize
from app.models.analytics import AnalyticsBucket, EventKind

log = logging.getLogger("app.analytics")

STOP_TIMEOUT_SECONDS = 5.0
FLUSH_CHUNK = 5000  # events per insert_many call (in buckets of ANALYTICS_BATCH_SIZE)
MAX_QUERY_CHARS = 100
VISITOR_HEADER = "X-Visitor-Id"
VISITOR_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
RETRY_STATUSES = frozenset({408, 425, 429})


def valid_visitor_id(value: str | None) -> str | None:
    """``value`` when it is a visitor id (16-64 of ``A-Z a-z 0-9 _ -``, e.g. a UUID), else None."""
    return value if value is not None and VISITOR_RE.match(value) else None


def bucket_documents(events: list[dict[str, Any]], retention: timedelta, size: int) -> list[dict[str, Any]]:
    """Storage documents (``AnalyticsBucket``) for ``events`` (dicts with ``kind``, ``at`` and their fields, in
    time order): per kind, buckets of at most ``size`` events with the span they cover."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_kind.setdefault(e["kind"], []).append(e)
    docs = []
    for kind, items in by_kind.items():
        for i in range(0, len(items), size):
            chunk = items[i:i + size]
            start, end = min(e["at"] for e in chunk), max(e["at"] for e in chunk)
            doc: dict[str, Any] = {"_id": new_id_at("anb", start), "kind": kind, "start": start, "end": end,
                                   "events": [{k: v for k, v in e.items() if k != "kind"} for e in chunk],
                                   "expires_at": end + retention}
            if orders := [e["order_id"] for e in chunk if e.get("order_id")]:
                doc["orders"] = orders
            docs.append(doc)
    return docs


def events_json(bucket: dict[str, Any]) -> list[dict[str, Any]]:
    """A bucket's events as the collector receives them: ``id`` (``<bucket id>.<n>``, stable across retries),
    ``kind``, ``at`` (ISO 8601 UTC with Z) and the ids and figures each carries (absent when empty)."""
    out = []
    for n, e in enumerate(bucket["events"]):
        item = {"id": f"{bucket['_id']}.{n}", "kind": bucket["kind"], **{k: v for k, v in e.items() if k != "at"}}
        item["at"] = e["at"].isoformat().replace("+00:00", "Z")
        out.append(item)
    return out


class Forwarder:
    """Sends batches to ``ANALYTICS_FORWARD_URL`` one at a time, in order, with retries (see the module
    docstring). A batch is retried on a network error, a 5xx, 408, 425 or 429, and dropped on another 4xx."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.analytics_forward_url or ""
        self.batches: deque[list[dict[str, Any]]] = deque()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.client: httpx.AsyncClient | None = None

    def offer(self, buckets: list[dict[str, Any]]) -> None:
        """Queue one flush's buckets as one batch of events (the oldest batch is dropped when full)."""
        if len(self.batches) >= self.settings.analytics_forward_queue_batches:
            dropped = self.batches.popleft()
            ANALYTICS_FORWARD.labels("dropped").inc(len(dropped))
        self.batches.append([e for b in buckets for e in events_json(b)])
        self.wake.set()

    def start(self) -> None:
        headers = {"User-Agent": "amour-florals-analytics"}
        if self.settings.analytics_forward_token:
            headers["Authorization"] = f"Bearer {self.settings.analytics_forward_token.get_secret_value()}"
        self.client = httpx.AsyncClient(timeout=self.settings.analytics_forward_timeout_seconds, headers=headers)
        self.task = asyncio.create_task(self._run(), name="analytics-forwarder")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        for batch in self.batches:  # not retried after shutdown
            ANALYTICS_FORWARD.labels("dropped").inc(len(batch))
        self.batches.clear()
        if self.client is not None:
            await self.client.aclose()

    async def _run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.batches:
                await self._send(self.batches.popleft())

    async def _send(self, batch: list[dict[str, Any]]) -> None:
        s = self.settings
        assert self.client is not None
        for attempt in range(1, s.analytics_forward_max_attempts + 1):
            try:
                r = await self.client.post(self.url, json={"events": batch})
                if r.is_success:
                    ANALYTICS_FORWARD.labels("sent").inc(len(batch))
                    return
                if r.status_code < 500 and r.status_code not in RETRY_STATUSES:
                    log.warning("analytics collector refused a batch of %s events: HTTP %s", len(batch),
                                r.status_code)
                    break
                error = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            if attempt < s.analytics_forward_max_attempts:
                ANALYTICS_FORWARD.labels("retry").inc(len(batch))
                log.info("analytics collector failed (%s); retry %s of %s", error, attempt,
                         s.analytics_forward_max_attempts - 1)
                await asyncio.sleep(s.analytics_forward_backoff_seconds * 2 ** (attempt - 1))
        ANALYTICS_FORWARD.labels("dropped").inc(len(batch))
        log.warning("analytics batch of %s events dropped: the collector did not take it", len(batch))


class AnalyticsRecorder:
    """This process's event queue and its writer task (``start``/``stop`` from the app's lifespan)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pending: deque[dict[str, Any]] = deque()
        self.retention = timedelta(days=settings.analytics_retention_days)
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.stopping = False
        self.forwarder = Forwarder(settings) if settings.analytics_forward_url else None

    def record(self, kind: EventKind, **fields: Any) -> None:
        """Queue one event (``fields``: ``visitor_id``, ``user_id``, ``product_id``, ``quantity``, ``query``,
        ``results``, ``order_id``; None values are left out). Never blocks or raises."""
        if len(self.pending) >= self.settings.analytics_queue_size:
            ANALYTICS_EVENTS.labels("dropped_queue_full").inc()
            return
        event = {"kind": kind.value, "at": utcnow()}
        event.update((k, v) for k, v in fields.items() if v is not None)
        self.pending.append(event)
        if len(self.pending) >= self.settings.analytics_batch_size:
            self.wake.set()

    def start(self) -> None:
        if self.forwarder is not None:
            self.forwarder.start()
        self.task = asyncio.create_task(self._run(), name="analytics-writer")

    async def stop(self) -> None:
        """Let the writer finish its last flush (what is queued now), at most ``STOP_TIMEOUT_SECONDS``; then stop
        forwarding. Events still queued after that are counted as dropped."""
        self.stopping = True
        self.wake.set()
        if self.task is not None:
            try:
                await asyncio.wait_for(self.task, timeout=STOP_TIMEOUT_SECONDS)
            except TimeoutError:  # the database does not answer: do not hold the shutdown
                log.warning("analytics: %s queued events not written at shutdown", len(self.pending))
                ANALYTICS_EVENTS.labels("dropped_write_failed").inc(len(self.pending))
                self.pending.clear()
            self.task = None
        if self.forwarder is not None:
            await self.forwarder.stop()

    async def _run(self) -> None:
        while not self.stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self.settings.analytics_flush_seconds)
            self.wake.clear()
            await self.flush()

    async def flush(self) -> int:
        """Write everything queued now as buckets (one insert per ``FLUSH_CHUNK`` events); returns how many
        events were stored. A bucket the database refuses is dropped (counted and logged), never retried:
        analytics must not pile up in memory."""
        coll = AnalyticsBucket.get_pymongo_collection()
        stored = 0
        while self.pending:
            events = [self.pending.popleft() for _ in range(min(len(self.pending), FLUSH_CHUNK))]
            buckets = bucket_documents(events, self.retention, self.settings.analytics_batch_size)
            try:
                await coll.insert_many(buckets, ordered=False)
                lost = 0
            except Exception as exc:  # the database is down or refused some buckets
                failed = ({e["index"] for e in exc.details.get("writeErrors", [])} if isinstance(exc, BulkWriteError)
                          else set(range(len(buckets))))
                lost = sum(len(buckets[i]["events"]) for i in failed)
                ANALYTICS_EVENTS.labels("dropped_write_failed").inc(lost)
                log.warning("analytics: %s of %s events not written: %s", lost, len(events),
                            f"{type(exc).__name__}: {exc}"[:300])
            ANALYTICS_EVENTS.labels("stored").inc(len(events) - lost)
            stored += len(events) - lost
            if self.forwarder is not None:
                self.forwarder.offer(buckets)
        return stored


_installed: list[AnalyticsRecorder] = []


def install(recorder: AnalyticsRecorder) -> None:
    _installed.append(recorder)


def uninstall(recorder: AnalyticsRecorder) -> None:
    if recorder in _installed:
        _installed.remove(recorder)


def record(kind: EventKind, **fields: Any) -> None:
    """Queue an event on this process's recorder; a no-op when analytics is off or none runs (the CLI)."""
    if _installed:
        _installed[-1].record(kind, **fields)


def record_order_paid(order: Any) -> None:
    """The funnel's last step, from wherever an order's payment became paid (webhook, free order, counter)."""
    record(EventKind.order_paid, order_id=order.id, user_id=order.contact.user_id)


def tracker_of(request: Any) -> Tracker:
    """The tracker of a request from its headers (``X-Visitor-Id``, validated; a bad one is ignored) — also
    where no dependency runs, e.g. a catalog response answered from the ready-response store."""
    return Tracker(request.app.state.settings, valid_visitor_id(request.headers.get("x-visitor-id")),
                   request.headers.get("authorization"))


class Tracker:
    """Records one request's funnel events with its visitor id and, when signed in, its user id (from the
    request's authentication, or the bearer token's subject on public catalog reads, which do not load the
    account: a signature check, no database read)."""

    def __init__(self, settings: Settings, visitor_id: str | None, authorization: str | None) -> None:
        self.settings = settings
        self.visitor_id = visitor_id
        self.authorization = authorization

    def _user_id(self) -> str | None:
        user_id = user_id_var.get()
        if user_id is None and self.authorization and self.authorization[:7].lower() == "bearer ":
            claims = decode_access_token(self.settings, self.authorization[7:].strip())
            user_id = claims.get("sub") if claims else None
        return user_id

    def _record(self, kind: EventKind, **fields: Any) -> None:
        if _installed:
            _installed[-1].record(kind, visitor_id=self.visitor_id, user_id=self._user_id(), **fields)

    def product_viewed(self, product_id: str) -> None:
        self._record(EventKind.product_view, product_id=product_id)

    def searched(self, q: str, results: int) -> None:
        query = normalize(q)[:MAX_QUERY_CHARS].strip()
        if query:
            self._record(EventKind.search, query=query, results=results)

    def added_to_cart(self, product_id: str, quantity: int) -> None:
        self._record(EventKind.cart_add, product_id=product_id, quantity=quantity)

    def checkout_started(self, order_id: str) -> None:
        self._record(EventKind.checkout_start, order_id=order_id)
