"""Stock per product size: taken and returned only by conditional atomic ``$inc`` on ``stock.<size>``.

Never read-modify-write: ``take_stock`` succeeds only while enough units remain, so concurrent
buyers can never drive a size below zero.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.models.catalog import Product

_SIZE_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


def _field(size: str) -> str:
    # The size code becomes part of a field path: it must never carry "." or "$".
    if not size or not set(size.lower()) <= _SIZE_OK:
        raise ValueError(f"invalid size code {size!r}")
    return f"stock.{size}"


async def take_stock(product_id: str, size: str, qty: int) -> bool:
    """Take ``qty`` units of one size if that many are available; False (nothing changed) otherwise."""
    if qty <= 0:
        raise ValueError("qty must be positive")
    field = _field(size)
    res = await Product.get_pymongo_collection().update_one(
        {"_id": product_id, field: {"$gte": qty}},
        {"$inc": {field: -qty}, "$set": {"ever_ordered": True}, "$currentDate": {"updated_at": True}},
    )
    return res.modified_count == 1


async def return_stock(product_id: str, size: str, qty: int) -> None:
    """Give ``qty`` units back (the caller guarantees it happens once per reservation)."""
    if qty <= 0:
        return
    field = _field(size)
    await Product.get_pymongo_collection().update_one({"_id": product_id}, {"$inc": {field: qty},
                                                                           "$currentDate": {"updated_at": True}})


async def available(product_id: str, size: str) -> int:
    raw = await Product.get_pymongo_collection().find_one({"_id": product_id}, {"stock": 1})
    return int(((raw or {}).get("stock") or {}).get(size, 0))


async def record_sale(items: Iterable[tuple[str, str, int]], sign: int = 1) -> None:
    """Count units sold (``sign=-1`` takes a cancelled sale back)."""
    for product_id, _size, qty in items:
        await Product.get_pymongo_collection().update_one({"_id": product_id},
                                                          {"$inc": {"units_sold": sign * qty}})
