"""Shopper-behaviour events (storage): the funnel steps, written in batches off the request path.

Product views, by far the most frequent event, are **counted** instead of kept one by one: one
``ProductViewDay`` per shop day and product holds how many views it had and the distinct shoppers who viewed
it, which is all the reports ask of them. The writer adds each flush's tallies with ``$inc``/``$addToSet``, so
a flush costs one small write per product viewed, not one stored event per view.

The other events are stored in **buckets** (MongoDB's bucket pattern for event data): one document per kind and writer
flush holding up to ``ANALYTICS_BATCH_SIZE`` events in time order, with the span they cover. Writing one
document per batch instead of one per event is what keeps recording cheap (one insert per flush; measured by
``bench/analytics.py``); reports read the buckets overlapping a range and keep the events inside it.

Ids only — an anonymous visitor id chosen by the storefront, the account id when signed in, product and
order ids — plus a search's folded text and result count. MongoDB deletes a bucket at ``expires_at`` (TTL
index, ``ANALYTICS_RETENTION_DAYS`` after its last event).
"""

from __future__ import annotations

from enum import StrEnum

from beanie import Document
from pydantic import BaseModel, Field
from pymongo import ASCENDING, IndexModel

from app.models.base import UtcDateTime, id_field


class EventKind(StrEnum):
    product_view = "product_view"  # GET /products/{id or slug}
    search = "search"  # GET /products?q=… (first page)
    cart_add = "cart_add"  # POST /cart/items, POST /users/me/favorites/{id}/move-to-cart
    checkout_start = "checkout_start"  # POST /checkout placed an order
    order_paid = "order_paid"  # an order's payment became paid (webhook, free order, counter settlement)


class BucketEvent(BaseModel):
    """One event (of any kind but ``product_view``); absent fields do not apply to its kind (or were not known)."""

    at: UtcDateTime
    visitor_id: str | None = None  # X-Visitor-Id (validated), when the storefront sent one
    user_id: str | None = None
    product_id: str | None = None  # cart_add
    quantity: int | None = None  # cart_add
    query: str | None = None  # search: folded text (app.core.text.normalize), at most 100 characters
    results: int | None = None  # search: matches found
    order_id: str | None = None  # checkout_start, order_paid


def product_view_day_id(day: str, product_id: str) -> str:
    """The id of the views of ``product_id`` on shop day ``day`` (ISO date): ``apv_2030-04-08_prd_…``. (Keyed,
    so every writer adds to the same document; the embedded server never finds a string ``_id`` that starts
    with an ISO date, hence the prefix.)"""
    return f"apv_{day}_{product_id}"


class ProductViewDay(Document):
    """The product views of one shop day (``SHOP_TIMEZONE``) and product. ``viewers`` are the distinct shoppers
    (``v:<visitor id>`` or, without one, ``u:<user id>``, as the reports key them); a view without either counts
    in ``views`` only. Deleted at ``expires_at`` (``ANALYTICS_RETENTION_DAYS`` after the day's end, UTC)."""

    id: str  # type: ignore[assignment]  # string ids (conventions.md); product_view_day_id(day, product_id)
    day: str  # ISO date of the shop day
    product_id: str
    views: int = 0
    viewers: list[str] = Field(default_factory=list)
    expires_at: UtcDateTime

    class Settings:
        name = "analytics_product_views"
        indexes = [
            # The funnel and product-interest reports read the days of a range.
            IndexModel([("day", ASCENDING)], name="day"),
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),
        ]


class AnalyticsBucket(Document):
    # written with new_id_at("anb", start)
    id: str = id_field("anb")  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    kind: EventKind
    start: UtcDateTime  # the first event's instant
    end: UtcDateTime  # the last event's instant
    events: list[BucketEvent]  # in time order
    # checkout_start and order_paid buckets: the order ids of their events (scalars: an indexed $in finds the
    # bucket of an order; the embedded server finds nothing by a field inside the array of events).
    orders: list[str] = Field(default_factory=list)
    expires_at: UtcDateTime

    class Settings:
        name = "analytics_events"
        indexes = [
            # Every report reads the buckets of one kind overlapping a range (start < range end, end >= start).
            IndexModel([("kind", ASCENDING), ("start", ASCENDING)], name="kind_start"),
            # The funnel finds the checkout (and so the visitor) of each paid order.
            IndexModel([("orders", ASCENDING)], name="orders"),
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),
        ]
