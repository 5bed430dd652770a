"""Product reviews (storage). One per (product, user); hidden ones stay stored but leave lists and aggregates."""

from __future__ import annotations

from datetime import datetime

from beanie import Document
from pymongo import ASCENDING, DESCENDING, IndexModel

from app.models.base import id_field, now_field


class Review(Document):
    id: str = id_field("rev")  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    product_id: str
    user_id: str
    rating: int  # 1..5
    title: str
    body: str = ""
    verified_purchase: bool = False
    hidden: bool = False  # set by staff; a hidden review is out of every public list and aggregate
    hidden_at: datetime | None = None
    hidden_by: str | None = None
    created_at: datetime = now_field()
    updated_at: datetime = now_field()

    class Settings:
        name = "reviews"
        indexes = [
            # One review per product and user (a second is 409), also while the first is hidden.
            IndexModel([("product_id", ASCENDING), ("user_id", ASCENDING)], unique=True, name="product_user_unique"),
            # Public list (newest: then sorted by the time-ordered _id) and the star histogram.
            IndexModel([("product_id", ASCENDING), ("hidden", ASCENDING), ("rating", DESCENDING)],
                       name="product_visible_rating"),
            IndexModel([("user_id", ASCENDING)], name="user"),
            IndexModel([("hidden", ASCENDING)], name="hidden"),
        ]
