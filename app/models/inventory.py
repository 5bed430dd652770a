"""Stock movements: one document per stock change (who, when, why, before and after)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from beanie import Document
from pymongo import ASCENDING, IndexModel

from app.models.base import id_field, now_field


class StockReason(StrEnum):
    restock = "restock"
    damaged = "damaged"
    correction = "correction"
    returned = "returned"
    other = "other"
    # Written by the system, not accepted from the admin endpoint:
    initial = "initial"  # stock given when a product or size is created
    sale = "sale"  # checkout took units
    release = "release"  # an unpaid/cancelled order gave units back


MANUAL_REASONS = (StockReason.restock, StockReason.damaged, StockReason.correction, StockReason.returned,
                  StockReason.other)


class StockMovement(Document):
    id: str = id_field("stm")  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    product_id: str
    size: str
    delta: int
    before: int
    after: int
    reason: StockReason
    note: str | None = None
    actor_id: str | None = None  # the staff member; None for the system
    ref: str | None = None  # e.g. an order id
    created_at: datetime = now_field()

    class Settings:
        name = "stock_movements"
        # Listing per product newest first sorts on _id (time-ordered) within product_id.
        indexes = [IndexModel([("product_id", ASCENDING)], name="product")]
