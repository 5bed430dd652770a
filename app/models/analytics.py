"""Shopper-behaviour events (storage): the funnel steps, written in batches off the request path.

Events are stored in **buckets** (MongoDB's bucket pattern for event data): one document per kind and writer
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
    """One event; absent fields do not apply to its kind (or were not known)."""

    at: UtcDateTime
    visitor_id: str | None = None  # X-Visitor-Id (validated), when the storefront sent one
    user_id: str | None = None
    product_id: str | None = None  # product_view, cart_add
    quantity: int | None = None  # cart_add
    query: str | None = None  # search: folded text (app.core.text.normalize), at most 100 characters
    results: int | None = None  # search: matches found
    order_id: str | None = None  # checkout_start, order_paid


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
