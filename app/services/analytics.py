"""Shopper-behaviour events, recorded off the request path.

``record(kind, ...)`` (or a request's ``Tracker``) appends one tuple (kind, ``time.time()``, the ids) to this
process's bounded in-memory queue and returns: no I/O, no datetime, never blocks, never raises. A background
task drains the queue every ``ANALYTICS_FLUSH_SECONDS``, or sooner when ``ANALYTICS_BATCH_SIZE`` events other
than views wait (a full bucket) or when half the queue (at least ``ANALYTICS_BATCH_SIZE``) is taken, and writes
what was queued when the flush began (what arrives meanwhile waits for the next one):

- product views are **counted** per shop day and product (``ProductViewDay``): one unordered bulk write of
  upserts, each ``$inc`` of a day document's count and ``$addToSet`` of its new shoppers, so a flush costs one
  round trip and O(products viewed) small updates however many views it holds;
- the other kinds go to ``analytics_events`` with ``insert_many``, as buckets of up to ``ANALYTICS_BATCH_SIZE``
  events of one kind (one document per bucket, see app/models/analytics.py);

and, when ``ANALYTICS_FORWARD_URL`` is set, hands every event of the flush (views too, one by one) to a
forwarder that POSTs them to an external collector, retried with exponential backoff and dropped after a
bound. A full queue drops the new event; a failed write drops what it held; both are counted in
``analytics_events_total`` (/metrics) and logged, never surfaced to the shopper. When the process stops, the
writer's last flush writes what is queued (bounded by ``STOP_TIMEOUT_SECONDS``); a process killed outright
loses at most one flush interval of events.

Events carry ids only (visitor, user, product, order) and, for searches, the number of results and the folded
query text, unless the query looks like personal data (see :func:`search_query_to_store`: then the fixed
``REDACTED_QUERY``). The visitor id is whatever the storefront keeps in ``X-Visitor-Id`` (a random token it
stores in the browser); an id of the wrong shape is ignored, never an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import time
import unicodedata
from collections import deque
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

from pymongo.errors import BulkWriteError

from app.config import Settings
from app.core.context import user_id_var
from app.core.metrics import ANALYTICS_EVENTS
from app.core.security import decode_access_token
from app.core.text import normalize
from app.models.analytics import AnalyticsBucket, EventKind
from app.services.analytics_forward import Forwarder
from app.services.analytics_store import (
    VIEW,
    Pending,
    ViewTallies,
    bucket_documents,
    event_dict,
    shopper_of,
    store_view_tallies,
)

log = logging.getLogger("app.analytics")

STOP_TIMEOUT_SECONDS = 5.0
FLUSH_CHUNK = 5000  # events per write (views: one bulk write of their day documents; others: one insert_many)
MAX_QUERY_CHARS = 100
VISITOR_HEADER = "X-Visitor-Id"
VISITOR_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
REDACTED_QUERY = "[redacted]"  # brackets: no folded query can be this text
# In the folded query (every run of other characters is one space): 7+ digits, consecutive ones apart by at
# most that space ("+1 (555) 123-4567", "212/555/0199", "555–123–4567", "5551234567").
PHONE_LIKE_RE = re.compile(r"\d(?: ?\d){6,}")


def search_query_to_store(q: str) -> str:
    """What a search event records of the query ``q`` as typed: ``REDACTED_QUERY`` (the whole query, so its
    result count still counts) when it looks like personal data, else the folded text (``normalize``) cut to
    ``MAX_QUERY_CHARS``; "" when nothing is left. Looks like personal data, tested on the NFKC form of the
    whole query (so full-width ``＠`` and digits count, and nothing hides past the cut):

    - any ``@`` (an email address, a handle), also written ``%40`` or ``&#64;``;
    - a phone-number-like run of 7 or more digits in the folded query, where every run of other characters
      (spaces, ``-``, ``/``, ``_``, dashes of any kind, ``|``…) is one space: consecutive digits at most that
      space apart (a leading ``+`` changes nothing). Also catches a date or a code typed with 7+ digits
      (``2026-05-10``): redacted as well.

    Names, street addresses and emails spelled out ("olivia at example dot com") cannot be told from a search
    for flowers, so they are not detected; the report shows them as typed (folded)."""
    text = unicodedata.normalize("NFKC", q)
    folded = normalize(q)
    if "@" in html.unescape(unquote(text)) or PHONE_LIKE_RE.search(folded):
        return REDACTED_QUERY
    return folded[:MAX_QUERY_CHARS].strip()


def valid_visitor_id(value: str | None) -> str | None:
    """``value`` when it is a visitor id (16-64 of ``A-Z a-z 0-9 _ -``, e.g. a UUID), else None."""
    return value if value is not None and VISITOR_RE.match(value) else None


class AnalyticsRecorder:
    """This process's event queue and its writer task (``start``/``stop`` from the app's lifespan)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pending: deque[Pending] = deque()
        self.queue_size = settings.analytics_queue_size
        self.batch_size = settings.analytics_batch_size
        # Views are counted, not bucketed: a flush costs the same for 10 or 5,000 of them, so they wake the writer
        # only when half the queue is taken (else the timer does); other events when a bucket is full.
        self.view_wake = max(self.batch_size, self.queue_size // 2)
        self.bucketed = 0  # events other than views queued since the last flush began
        self.retention = timedelta(days=settings.analytics_retention_days)
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.stopping = False
        self.forwarder = Forwarder(settings) if settings.analytics_forward_url else None

    def record(self, kind: EventKind, **fields: Any) -> None:
        """Queue one event (``fields``: ``visitor_id``, ``user_id``, ``product_id``, ``quantity``, ``query``,
        ``results``, ``order_id``; None values are left out when written). Never blocks or raises."""
        visitor_id, user_id = fields.pop("visitor_id", None), fields.pop("user_id", None)
        product_id = fields.pop("product_id", None)
        if kind is EventKind.product_view:
            self.record_view(product_id, visitor_id, user_id)
            return
        if self._full():
            return
        self.pending.append((kind.value, time.time(), visitor_id, user_id, product_id, fields or None))
        self.bucketed += 1
        if self.bucketed >= self.batch_size:
            self.wake.set()

    def record_view(self, product_id: str | None, visitor_id: str | None, user_id: str | None) -> None:
        """``record(EventKind.product_view, ...)``: the hot path of every product page."""
        if self._full():
            return
        self.pending.append((VIEW, time.time(), visitor_id, user_id, product_id, None))
        if len(self.pending) >= self.view_wake:
            self.wake.set()

    def _full(self) -> bool:
        """True (and the event counted as dropped) when the queue holds ``ANALYTICS_QUEUE_SIZE`` events."""
        if len(self.pending) >= self.queue_size:
            ANALYTICS_EVENTS.labels("dropped_queue_full").inc()
            return True
        return False

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
        await self.flush()  # what was queued during the last one (shutting down)

    async def flush(self) -> int:
        """Write what is queued when called, ``FLUSH_CHUNK`` events at a time (see the module docstring); events
        queued meanwhile wait for the next flush, so a steady stream is written in batches, not one write after
        another. Returns how many events were stored. What the database refuses is dropped (counted and logged),
        never retried: analytics must not pile up in memory."""
        stored = 0
        left = len(self.pending)
        self.bucketed = 0
        while left and self.pending:
            items = [self.pending.popleft() for _ in range(min(left, len(self.pending), FLUSH_CHUNK))]
            left -= len(items)
            views = ViewTallies(self.settings.tz)
            others: list[dict[str, Any]] = []
            for item in items:
                kind, seconds, visitor_id, user_id, product_id, _ = item
                if kind == VIEW and product_id:
                    views.add(seconds, product_id, shopper_of(visitor_id, user_id))
                else:
                    others.append(event_dict(item))
            lost = await self._write_views(views) + await self._write_buckets(others)
            if lost:
                ANALYTICS_EVENTS.labels("dropped_write_failed").inc(lost)
            ANALYTICS_EVENTS.labels("stored").inc(len(items) - lost)
            stored += len(items) - lost
            if self.forwarder is not None:
                self.forwarder.offer([event_dict(item) for item in items])
        return stored

    async def _write_buckets(self, events: list[dict[str, Any]]) -> int:
        """Insert ``events`` as buckets; returns how many were lost."""
        if not events:
            return 0
        buckets = bucket_documents(events, self.retention, self.batch_size)
        try:
            await AnalyticsBucket.get_pymongo_collection().insert_many(buckets, ordered=False)
            return 0
        except Exception as exc:  # the database is down or refused some buckets
            failed = ({e["index"] for e in exc.details.get("writeErrors", [])} if isinstance(exc, BulkWriteError)
                      else set(range(len(buckets))))
            lost = sum(len(buckets[i]["events"]) for i in failed)
            _log_lost(lost, len(events), exc)
            return lost

    async def _write_views(self, views: ViewTallies) -> int:
        """Add ``views`` to their day documents; returns how many views were lost."""
        if not views.views:
            return 0
        done: list[str] = []
        try:
            lost = await store_view_tallies(views, self.retention, done)
        except Exception as exc:  # the database is down
            lost = views.views - sum(views.count(i) for i in done)
            _log_lost(lost, views.views, exc)
            return lost
        if lost:
            log.warning("analytics: %s of %s product views not written", lost, views.views)
        return lost


def _log_lost(lost: int, total: int, exc: Exception) -> None:
    log.warning("analytics: %s of %s events not written: %s", lost, total, f"{type(exc).__name__}: {exc}"[:300])


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
    where no dependency runs, e.g. a catalog response answered from the ready-response store. Reads the raw
    ASGI headers (the first of each name), without building the request's header mapping."""
    visitor = authorization = None
    for name, value in request.scope["headers"]:
        if name == b"x-visitor-id":
            if visitor is None:
                visitor = value.decode("latin-1")
        elif name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
    return Tracker(request.scope["app"].state.settings, valid_visitor_id(visitor), authorization)


class Tracker:
    """Records one request's funnel events with its visitor id and, when signed in, its user id (from the
    request's authentication, or the bearer token's subject on public catalog reads, which do not load the
    account: a signature check, no database read, only when the request carries a bearer token)."""

    __slots__ = ("settings", "visitor_id", "authorization")

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
        if _installed:
            _installed[-1].record_view(product_id, self.visitor_id, self._user_id())

    def searched(self, q: str, results: int) -> None:
        """A search as typed (``q``) and its number of matches; the query is recorded as
        :func:`search_query_to_store` gives it (redacted when it looks like personal data)."""
        query = search_query_to_store(q)
        if query:
            self._record(EventKind.search, query=query, results=results)

    def added_to_cart(self, product_id: str, quantity: int) -> None:
        self._record(EventKind.cart_add, product_id=product_id, quantity=quantity)

    def checkout_started(self, order_id: str) -> None:
        self._record(EventKind.checkout_start, order_id=order_id)
