"""Carts (storage): one per customer (``user_id``) or per guest token (only its SHA-256 ``token_hash``).

Lines are an array of sub-documents, so they change only as a whole array under the ``version`` guard
(``update_versioned``). Guest carts carry ``expires_at`` (TTL index); customer carts do not expire.
"""

from __future__ import annotations

from datetime import datetime

from beanie import Document
from pydantic import BaseModel, Field
from pymongo import ASCENDING, IndexModel

from app.models.base import id_field, now_field


class CartLine(BaseModel):
    id: str = id_field("cln")
    product_id: str
    size: str
    add_ons: list[str] = Field(default_factory=list)  # add-on codes, sorted
    quantity: int
    gift_message: str | None = None
    unit_price_at_add: int  # cents; compared with the current price to flag a change
    product_name: str  # snapshot, shown if the product disappears
    size_name: str
    added_at: datetime = now_field()

    def same_item(self, product_id: str, size: str, add_ons: list[str], gift_message: str | None) -> bool:
        return (self.product_id, self.size, self.add_ons, self.gift_message or None) == (
            product_id, size, sorted(add_ons), gift_message or None)


class Cart(Document):
    id: str = id_field("crt")  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    user_id: str | None = None
    token_hash: str | None = None
    lines: list[CartLine] = Field(default_factory=list)
    promo_code: str | None = None
    version: int = 0
    created_at: datetime = now_field()
    updated_at: datetime = now_field()
    expires_at: datetime | None = None  # guest carts only

    class Settings:
        name = "carts"
        indexes = [
            IndexModel([("user_id", ASCENDING)], unique=True, name="user_unique",
                       partialFilterExpression={"user_id": {"$type": "string"}}),
            IndexModel([("token_hash", ASCENDING)], unique=True, name="token_unique",
                       partialFilterExpression={"token_hash": {"$type": "string"}}),
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),
            # The abandoned-cart scan reads customer carts by last change (app/services/cart_reminders.py).
            IndexModel([("updated_at", ASCENDING)], name="customer_updated",
                       partialFilterExpression={"user_id": {"$type": "string"}}),
        ]
