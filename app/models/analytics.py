"""Shopper-behaviour events (storage): the funnel steps, written in batches off the request path.

Ids only — an anonymous visitor id chosen by the storefront, the account id when signed in, product and
order ids — plus a search's folded text and result count. MongoDB deletes an event at ``expires_at``
(TTL index, ``ANALYTICS_RETENTION_DAYS`` after it happened).
"""

from __future__ import annotations

from enum import StrEnum

from beanie import Document
from pymongo import ASCENDING, IndexModel

from app.models.base import UtcDateTime, id_field, now_field


class EventKind(StrEnum):
    product_view = "product_view"  # GET /products/{id or slug}
    search = "search"  # GET /products?q=… (first page)
    cart_add = "cart_add"  # POST /cart/items, POST /users/me/favorites/{id}/move-to-cart
    checkout_start = "checkout_start"  # POST /checkout placed an order
    order_paid = "order_paid"  # an order's payment became paid (webhook, free order, counter settlement)


class AnalyticsEvent(Document):
    id: str = id_field("anl")
    kind: EventKind
    at: UtcDateTime = now_field()
    visitor_id: str | None = None  # X-Visitor-Id (validated), when the storefront sent one
    user_id: str | None = None
    product_id: str | None = None  # product_view, cart_add
    quantity: int | None = None  # cart_add
    query: str | None = None  # search: folded text (app.core.text.normalize), at most 100 characters
    results: int | None = None  # search: matches found
    order_id: str | None = None  # checkout_start, order_paid
    expires_at: UtcDateTime

    class Settings:
        name = "analytics_events"
        indexes = [
            # Every report reads one kind over a time range.
            IndexModel([("kind", ASCENDING), ("at", ASCENDING)], name="kind_at"),
            # The funnel finds the checkout (and so the visitor) of each paid order.
            IndexModel([("order_id", ASCENDING)], name="order",
                       partialFilterExpression={"order_id": {"$type": "string"}}),
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),
        ]
