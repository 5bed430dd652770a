"""Promo codes (storage): the code, its rules, an atomic use counter, per-customer counters and one
redemption record per order (the exactly-once key for taking and giving back a use)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from beanie import Document
from pydantic import Field
from pymongo import ASCENDING, DESCENDING, IndexModel

from app.models.base import id_field, now_field


class PromoKind(StrEnum):
    percentage = "percentage"
    fixed = "fixed"
    free_delivery = "free_delivery"


class PromoCode(Document):
    id: str = id_field("prm")  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    code: str  # stored upper-case; unique
    description: str | None = None
    kind: PromoKind
    percent_bps: int | None = None  # percentage: 1..10000 basis points (1000 = 10 %)
    amount: int | None = None  # fixed: cents
    min_subtotal: int = 0
    max_discount: int | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None  # exclusive
    usage_limit: int | None = None  # total uses; None = unlimited
    per_customer_limit: int | None = None
    category_ids: list[str] = Field(default_factory=list)  # empty = every line
    active: bool = True
    uses: int = 0  # changed only with conditional $inc (together with `version`)
    version: int = 0  # bumped by every write: admin edits replace the document under this guard
    created_at: datetime = now_field()
    updated_at: datetime = now_field()

    class Settings:
        name = "promo_codes"
        indexes = [
            IndexModel([("code", ASCENDING)], unique=True, name="code_unique"),
            IndexModel([("active", ASCENDING), ("created_at", DESCENDING)], name="active_created"),
        ]


class PromoCustomerUses(Document):
    """Uses of one code by one customer: ``_id`` = "<promo id>:<customer key>"."""

    id: str  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    promo_id: str
    used: int = 0

    class Settings:
        name = "promo_customer_uses"


class RedemptionStatus(StrEnum):
    taken = "taken"
    released = "released"


class PromoRedemption(Document):
    """One order's use of a code; ``_id`` is the order id, so an order takes at most one use."""

    id: str  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    promo_id: str
    code: str
    customer_key: str | None = None
    status: RedemptionStatus = RedemptionStatus.taken
    created_at: datetime = now_field()
    released_at: datetime | None = None

    class Settings:
        name = "promo_redemptions"
        indexes = [IndexModel([("promo_id", ASCENDING), ("status", ASCENDING)], name="promo_status")]
