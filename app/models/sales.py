"""Daily sales rollups (storage): one document per shop day and currency, kept by app/services/sales_rollups.py.

Figures count paid orders (payment status paid, partially_refunded or refunded) by the shop day on which
they were **placed** (``SHOP_TIMEZONE``), as the sales reports define them: money received (``gross``),
refunded, orders, units, discounts, and per product and per category units, revenue (line totals) and
orders. Every figure changes only by ``$inc`` of an order's change, applied once: the change's token is
added to ``applied`` by the same conditional update (``applied: {$nin: [token]}``). Tokens older than
``ROLLUP_TOKEN_HOURS`` are pruned. ``rebuilding`` holds changes back while ``rollups rebuild`` recomputes
the day from its orders.
"""

from __future__ import annotations

from datetime import datetime

from beanie import Document
from pydantic import Field
from pymongo import ASCENDING, IndexModel

from app.models.base import now_field
from app.models.order import ItemFigures


def sales_day_id(day: str, currency: str) -> str:
    """The id of the rollup of shop day ``day`` (ISO date) in ``currency`` (ISO code): ``sd_2030-04-08_USD``.
    (The embedded server never finds a string ``_id`` that starts with an ISO date and a separator.)"""
    return f"sd_{day}_{currency.upper()}"


def parse_sales_day_id(day_id: str) -> tuple[str, str]:
    """(day, currency) of a ``sales_day_id``."""
    _, day, currency = day_id.split("_")
    return day, currency


class SalesDay(Document):
    # sales_day_id(day, currency), e.g. sd_2030-04-08_USD
    id: str  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    day: str  # ISO date of the shop day
    currency: str
    time_zone: str  # the SHOP_TIMEZONE the day was cut in
    gross: int = 0  # cents received
    refunded: int = 0  # cents refunded
    orders: int = 0
    units: int = 0
    discount: int = 0  # cents of promo discounts
    products: dict[str, ItemFigures] = Field(default_factory=dict)  # by product id
    categories: dict[str, ItemFigures] = Field(default_factory=dict)  # by category id ("uncategorized")
    names: dict[str, str] = Field(default_factory=dict)  # product id -> "<placed at>|<name>" of its latest line
    applied: list[str] = Field(default_factory=list)  # tokens of applied changes (pruned after a while)
    rebuilding: bool = False
    updated_at: datetime = now_field()

    class Settings:
        name = "sales_days"
        indexes = [IndexModel([("currency", ASCENDING), ("day", ASCENDING)], name="currency_day")]
