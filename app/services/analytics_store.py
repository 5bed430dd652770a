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
STORE_CHUNK = 500  # day documents per look-up and bulk write

# One queued event: its kind, when (``time.time()``, seconds since the epoch) and the fields passed to
# ``record`` (None values included; they are left out when the event is written).
Pending = tuple[EventKind, float, dict[str, Any]]


def shopper_key(event: dict[str, Any]) -> str | None:
    """Who an event is from, as the reports count shoppers: ``v:<visitor id>``, else ``u:<user id>``, else
    (checkouts and payments) ``o:<order id>``, else None."""
    if event.get("visitor_id"):
        return f"v:{event['visitor_id']}"
    if event.get("user_id"):
        return f"u:{event['user_id']}"
    if event.get("order_id"):
        return f"o:{event['order_id']}"
    return None


def instant(seconds: float) -> datetime:
    """The UTC datetime of ``time.time()`` seconds, truncated to the millisecond (what MongoDB keeps)."""
    ms = int(seconds * 1000)
    return datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=ms % 1000 * 1000)


def event_dict(item: Pending) -> dict[str, Any]:
    """A queued event as stored in a bucket or forwarded: ``kind``, ``at`` and its fields that are not None."""
    kind, seconds, fields = item
    event: dict[str, Any] = {"kind": kind.value, "at": instant(seconds)}
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

    def update(self, doc_id: str) -> UpdateOne:
        """The update adding ``doc_id``'s tally to its existing document."""
        _, _, views, viewers = self.tallies[doc_id]
        update: dict[str, Any] = {"$inc": {"views": views[0]}}
        if viewers:
            update["$addToSet"] = {"viewers": {"$each": sorted(viewers)}}
        return UpdateOne({"_id": doc_id}, update)


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
    """Add ``views`` to their ``ProductViewDay`` documents, ``STORE_CHUNK`` documents at a time: insert the
    missing ones (expiring ``retention`` after their day), ``$inc``/``$addToSet`` the others in one unordered
    bulk write; appends each written id to ``done``; returns the views refused. A document another writer
    created meanwhile gets the update. Raises what the driver raises when the database does not answer."""
    ids = list(views.tallies)
    lost = 0
    for i in range(0, len(ids), STORE_CHUNK):
        lost += await _store_chunk(views, ids[i:i + STORE_CHUNK], retention, done)
    return lost


async def _store_chunk(views: ViewTallies, ids: list[str], retention: timedelta, done: list[str]) -> int:
    coll = ProductViewDay.get_pymongo_collection()
    existing = {d["_id"] for d in await coll.find({"_id": {"$in": ids}}, {"_id": 1}).to_list(None)}
    new = [i for i in ids if i not in existing]
    old = [i for i in ids if i in existing]
    lost = 0
    raced: list[str] = []
    if new:
        try:
            await coll.insert_many([views.document(i, retention) for i in new], ordered=False)
            done.extend(new)
        except BulkWriteError as exc:
            errors = {e["index"]: e.get("code") for e in exc.details.get("writeErrors", [])}
            done.extend(i for n, i in enumerate(new) if n not in errors)
            raced = [new[n] for n, code in errors.items() if code == DUPLICATE_KEY]
            lost += sum(views.count(new[n]) for n, code in errors.items() if code != DUPLICATE_KEY)
    if old:
        try:
            await coll.bulk_write([views.update(i) for i in old], ordered=False)
            done.extend(old)
        except BulkWriteError as exc:
            failed = {e["index"] for e in exc.details.get("writeErrors", [])}
            done.extend(i for n, i in enumerate(old) if n not in failed)
            lost += sum(views.count(old[n]) for n in failed)
    for doc_id in raced:  # rare: created by another process since the find (else refused: lost)
        if (await coll.bulk_write([views.update(doc_id)])).matched_count:
            done.append(doc_id)
        else:
            lost += views.count(doc_id)
    return lost
