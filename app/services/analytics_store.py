"""Shopper-behaviour events as stored: the queue's items turned into the documents of app/models/analytics.py
(product views counted per shop day and product, other kinds in buckets), shared by the writer
(app/services/analytics.py), the demo seed, the migration and the tests."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from app.core.ids import new_id_at
from app.models.analytics import EventKind, ProductViewDay, product_view_day_id
from app.services.sales_rollups import local_midnight

DUPLICATE_KEY = 11000
STORE_CHUNK = 500  # day documents per bulk write

# One queued event: its kind (``EventKind`` value), when (``time.time()``, seconds since the epoch), visitor id,
# user id, product id and its other fields (None when it has none; None values are left out when written).
# A product view holds atoms only, so the garbage collector stops tracking it at its first pass: thousands
# of waiting views never reach the old generations and never trigger a full collection.
Pending = tuple[str, float, str | None, str | None, str | None, dict[str, Any] | None]
VIEW = EventKind.product_view.value


def shopper_of(visitor_id: str | None, user_id: str | None, order_id: str | None = None) -> str | None:
    """Who an event is from, as the reports count shoppers: ``v:<visitor id>``, else ``u:<user id>``, else
    (checkouts and payments) ``o:<order id>``, else None."""
    if visitor_id:
        return f"v:{visitor_id}"
    if user_id:
        return f"u:{user_id}"
    if order_id:
        return f"o:{order_id}"
    return None


def shopper_key(event: dict[str, Any]) -> str | None:
    """``shopper_of`` a stored event (a dict with ``visitor_id``, ``user_id``, ``order_id`` when known)."""
    return shopper_of(event.get("visitor_id"), event.get("user_id"), event.get("order_id"))


def instant(seconds: float) -> datetime:
    """The UTC datetime of ``time.time()`` seconds, truncated to the millisecond (what MongoDB keeps)."""
    ms = int(seconds * 1000)
    return datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=ms % 1000 * 1000)


def event_dict(item: Pending) -> dict[str, Any]:
    """A queued event as stored in a bucket or forwarded: ``kind``, ``at`` and its fields that are not None."""
    kind, seconds, visitor_id, user_id, product_id, fields = item
    event: dict[str, Any] = {"kind": kind, "at": instant(seconds)}
    for key, value in (("visitor_id", visitor_id), ("user_id", user_id), ("product_id", product_id)):
        if value is not None:
            event[key] = value
    if fields:
        event.update((k, v) for k, v in fields.items() if v is not None)
    return event


class ViewTallies:
    """Product views counted per shop day (``tz``) and product: views and the distinct shoppers, by the id of
    their ``ProductViewDay``. The day of an instant is cached until the instant leaves it (no time-zone
    arithmetic per view)."""

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self.lo = self.hi = 0.0  # the cached day's span, time.time() seconds
        self.day = ""
        self.tallies: dict[str, tuple[str, str, list[int], set[str]]] = {}  # id -> day, product, [views], viewers
        self.views = 0

    def day_of(self, seconds: float) -> str:
        """The shop day (ISO date) of ``time.time()`` seconds."""
        if not self.lo <= seconds < self.hi:
            d = datetime.fromtimestamp(seconds, self.tz).date()
            self.day = d.isoformat()
            self.lo = local_midnight(d, self.tz).timestamp()
            self.hi = local_midnight(d + timedelta(days=1), self.tz).timestamp()
            if not self.lo <= seconds < self.hi:  # a zone whose midnight does not exist: do not cache
                self.lo = self.hi = 0.0
        return self.day

    def add(self, seconds: float, product_id: str, shopper: str | None) -> None:
        """Count one view of ``product_id`` at ``seconds`` by ``shopper`` (``shopper_key``; None: unknown)."""
        day = self.day_of(int(seconds * 1000) / 1000)  # the instant as stored (milliseconds)
        doc_id = product_view_day_id(day, product_id)
        tally = self.tallies.get(doc_id)
        if tally is None:
            tally = self.tallies[doc_id] = (day, product_id, [0], set())
        tally[2][0] += 1
        if shopper:
            tally[3].add(shopper)
        self.views += 1

    def add_events(self, events: Iterable[dict[str, Any]]) -> ViewTallies:
        """Count product-view event dicts (``at``, ``product_id``, ``visitor_id``/``user_id``); returns self."""
        for e in events:
            self.add(e["at"].timestamp(), e["product_id"], shopper_key(e))
        return self

    def count(self, doc_id: str) -> int:
        return self.tallies[doc_id][2][0]

    def document(self, doc_id: str, retention: timedelta) -> dict[str, Any]:
        """The new ``ProductViewDay`` of ``doc_id`` holding its tally (expires ``retention`` after its day)."""
        day, product_id, views, viewers = self.tallies[doc_id]
        end = local_midnight(date.fromisoformat(day) + timedelta(days=1), self.tz)
        return {"_id": doc_id, "day": day, "product_id": product_id, "views": views[0],
                "viewers": sorted(viewers), "expires_at": end + retention}

    def upsert(self, doc_id: str, retention: timedelta) -> UpdateOne:
        """The upsert adding ``doc_id``'s tally to its document (``$inc`` of the views, ``$addToSet`` of the
        shoppers), creating it (``$setOnInsert`` of its day, product and expiry) when missing."""
        doc = self.document(doc_id, retention)
        update: dict[str, Any] = {"$setOnInsert": {k: doc[k] for k in ("day", "product_id", "expires_at")},
                                  "$inc": {"views": doc["views"]}}
        if doc["viewers"]:
            update["$addToSet"] = {"viewers": {"$each": doc["viewers"]}}
        else:  # (one operator per field: the list is created empty only when no shopper comes with it)
            update["$setOnInsert"]["viewers"] = []
        return UpdateOne({"_id": doc_id}, update, upsert=True)


def bucket_documents(events: list[dict[str, Any]], retention: timedelta, size: int) -> list[dict[str, Any]]:
    """Storage documents (``AnalyticsBucket``) for ``events`` (dicts with ``kind``, ``at`` and their fields, in
    time order; not product views, which are counted: ``ViewTallies``): per kind, buckets of at most ``size``
    events with the span they cover."""
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


async def store_view_tallies(views: ViewTallies, retention: timedelta, done: list[str]) -> int:
    """Add ``views`` to their ``ProductViewDay`` documents with one unordered bulk write of upserts per
    ``STORE_CHUNK`` documents (``ViewTallies.upsert``); appends each written id to ``done``; returns the views
    refused. An upsert that loses a race to create its document (duplicate key) is tried once more, then finds
    it. Raises what the driver raises when the database does not answer."""
    coll = ProductViewDay.get_pymongo_collection()
    ids = list(views.tallies)
    lost = 0
    for i in range(0, len(ids), STORE_CHUNK):
        chunk = ids[i:i + STORE_CHUNK]
        for attempt in (1, 2):
            try:
                await coll.bulk_write([views.upsert(doc_id, retention) for doc_id in chunk], ordered=False)
                done.extend(chunk)
                break
            except BulkWriteError as exc:
                errors = {e["index"]: e.get("code") for e in exc.details.get("writeErrors", [])}
                done.extend(doc_id for n, doc_id in enumerate(chunk) if n not in errors)
                raced = [chunk[n] for n, code in errors.items() if code == DUPLICATE_KEY and attempt == 1]
                lost += sum(views.count(chunk[n]) for n in errors if chunk[n] not in raced)
                chunk = raced
                if not chunk:
                    break
    return lost
