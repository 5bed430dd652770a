"""Stock changes: the one place that writes ``Product.stock`` (admin adjustments and checkout alike).

A change is a single conditional atomic update: ``{"_id": id, "stock.<size>": {"$gte": -delta}}`` +
``$inc`` of that size and of ``stock_total`` — it never goes below zero and never reads-modifies-
writes. Every change is recorded as a ``StockMovement``; a size left at or below the product's
low-stock threshold queues one alert email per product, size and shop day; a size coming back (from none
to some units, on an active product) makes its back-in-stock requests due (app/services/stock_alerts.py);
a product selling out or coming back in stock bumps the catalog cache version (it changes ``in_stock``
lists and facets);
any other change only bumps the stock version (cached stock maps are read again, static data stays).
Checkout must take and give back units through ``adjust_stock`` (reason sale / release) for that.

Every change is also published on the event bus (``stock:<product id>``, event ``stock``) with what the
product endpoints show for that size, and a size left low on ``staff`` (event ``stock.low``). The same
atomic update increments the product's ``stock_seq``, which orders these events: subscribers drop an event
older than what they already sent (app/services/event_streams.py).
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from pymongo import ReturnDocument, UpdateOne

from app.core import bus
from app.core.clock import shop_today
from app.core.errors import Conflict, NotFound, Unprocessable
from app.models.catalog import Product
from app.models.inventory import StockMovement, StockReason
from app.services import audit
from app.services.catalog_cache import notify_catalog_changed, notify_stock_changed
from app.services.stock_alerts import stock_returned
from app.services.stock_host import StockHost

log = logging.getLogger("app.inventory")


async def adjust_stock(runtime: StockHost, product_id: str, size: str, delta: int, *, reason: StockReason,
                       actor_id: str | None = None, note: str | None = None,
                       ref: str | None = None, mark_ordered: bool = False) -> StockMovement:
    """Add (``delta`` > 0) or take (``delta`` < 0) units of one size atomically. ``mark_ordered`` also sets
    the product's ``ever_ordered`` in the same update (a sale).

    Raises NotFound (no product), Unprocessable (no such size) or Conflict ``insufficient-stock``
    (fewer than ``-delta`` units left; nothing changes).
    """
    if delta == 0:
        raise Unprocessable("A stock change needs a non-zero delta.")
    update: dict[str, Any] = {"$inc": {f"stock.{size}": delta, "stock_total": delta, "stock_seq": 1}}
    if mark_ordered:
        update["$set"] = {"ever_ordered": True}
    doc = await Product.get_pymongo_collection().find_one_and_update(
        {"_id": product_id, f"stock.{size}": {"$gte": max(0, -delta)}},
        update,
        projection={"stock": 1, "stock_total": 1, "name": 1, "slug": 1, "low_stock_threshold": 1, "status": 1,
                    "stock_seq": 1},
        return_document=ReturnDocument.AFTER,
    )
    if doc is None:
        await _refusal(product_id, size, delta)
    after = doc["stock"][size]
    movement = StockMovement(product_id=product_id, size=size, delta=delta, before=after - delta, after=after,
                             reason=reason, note=note, actor_id=actor_id, ref=ref)
    await movement.insert()
    path = f"sizes.{size}.stock"  # the audit entry of a staff adjustment gets the exact figures of this update
    audit.note_change("product", product_id, {path: movement.before}, {path: after})
    await notify_stock_changed(runtime)
    total_after = doc.get("stock_total", 0)
    if (total_after > 0) != (total_after - delta > 0):
        await notify_catalog_changed(runtime)  # sold out, or back in stock
    publish_stock(doc, [size])
    if after > 0 >= after - delta and doc.get("status") == "active":  # the size is back: back-in-stock requests
        await stock_returned(runtime.jobs, product_id, size)
    if after <= doc.get("low_stock_threshold", 0):
        await _alert_low_stock(runtime, doc, size, after)
    return movement


def stock_view(product_id: str, size: str, stock: dict[str, int] | None, status: str) -> dict[str, Any]:
    """What the public product endpoints show for one size (the size views of ``schemas.catalog.public``): only
    an active product has units to sell. Shape of the ``stock`` event (schemas/events.py StockEvent)."""
    units = (stock or {}).get(size, 0) if status == "active" else 0
    return {"product_id": product_id, "size": size, "available": max(0, units), "in_stock": units > 0}


def publish_stock(doc: dict[str, Any], sizes: list[str]) -> None:
    """Publish the current view of ``sizes`` of a product document (``_id``, ``stock``, ``status``,
    ``stock_seq``; ``low_stock_threshold`` and ``name`` for the staff alert)."""
    seq = int(doc.get("stock_seq") or 0)
    threshold = doc.get("low_stock_threshold", 0)
    for size in sizes:
        view = stock_view(doc["_id"], size, doc.get("stock"), doc.get("status", "active"))
        bus.publish(f"stock:{doc['_id']}", "stock", view, key=f"{doc['_id']}:{size}", seq=seq)
        units = (doc.get("stock") or {}).get(size, 0)
        if units <= threshold and doc.get("status") in ("active", "draft"):
            bus.publish("staff", "stock.low", {"product_id": doc["_id"], "name": doc.get("name", ""), "size": size,
                                               "available": max(0, units), "threshold": threshold},
                        key=f"low:{doc['_id']}:{size}", seq=seq)


async def publish_product_stock(product_id: str) -> None:
    """After a product's status or sizes changed (archive, publish, a size added or removed): publish every
    size as the storefront now sees it (an archived product has nothing available)."""
    doc = await Product.get_pymongo_collection().find_one(
        {"_id": product_id}, {"stock": 1, "status": 1, "sizes": 1, "stock_seq": 1, "name": 1,
                              "low_stock_threshold": 1})
    if doc is not None:
        publish_stock(doc, [s["code"] for s in doc.get("sizes", [])])


async def _refusal(product_id: str, size: str, delta: int) -> NoReturn:
    """Why a conditional stock update matched nothing: NotFound, Unprocessable (unknown size) or Conflict."""
    raw = await Product.get_pymongo_collection().find_one({"_id": product_id}, {"stock": 1})
    if raw is None:
        raise NotFound("No such product.")
    stock = raw.get("stock") or {}
    if size not in stock:
        raise Unprocessable(f"The product has no size {size!r}.", code="unknown-size")
    raise Conflict(f"Only {stock[size]} left of size {size!r}; stock cannot go below zero.",
                   code="insufficient-stock", available=stock[size])


async def _alert_low_stock(runtime: StockHost, doc: dict[str, Any], size: str, available: int) -> None:
    settings, email = runtime.settings, runtime.email
    if not settings.low_stock_alert_email or email is None:
        return
    day = shop_today(settings.tz).isoformat()
    await email.enqueue(
        to=settings.low_stock_alert_email, template="low_stock",
        context={"name": doc.get("name", doc["_id"]), "size": size, "available": available,
                 "threshold": doc.get("low_stock_threshold", 0), "product_id": doc["_id"],
                 "link": f"{settings.public_base_url.rstrip('/')}/api/v1/admin/products/{doc['_id']}"},
        dedupe_key=f"low-stock:{doc['_id']}:{size}:{day}",
    )


async def low_stock_report() -> list[dict[str, Any]]:
    """Sizes at or below their product's threshold, over draft and active products, emptiest first."""
    rows = []
    query = {"status": {"$in": ["draft", "active"]}}
    projection = {"name": 1, "slug": 1, "status": 1, "stock": 1, "sizes": 1, "low_stock_threshold": 1}
    async for d in Product.get_pymongo_collection().find(query, projection):
        threshold = d.get("low_stock_threshold", 0)
        for s in d.get("sizes", []):
            available = (d.get("stock") or {}).get(s["code"], 0)
            if available <= threshold:
                rows.append({"product_id": d["_id"], "name": d["name"], "slug": d["slug"], "status": d["status"],
                             "size": s["code"], "available": available, "threshold": threshold})
    rows.sort(key=lambda r: (r["available"], r["name"], r["size"]))
    return rows


# --- checkout's view: reserve / give back units of one size -------------------------------------------
async def take_stock(runtime: StockHost, product_id: str, size: str, qty: int, *, ref: str | None = None) -> bool:
    """Hold ``qty`` units for an order if that many are available (the product is then ``ever_ordered``);
    False (nothing changed) otherwise."""
    if qty <= 0:
        raise ValueError("qty must be positive")
    try:
        await adjust_stock(runtime, product_id, size, -qty, reason=StockReason.sale, ref=ref, mark_ordered=True)
    except (Conflict, NotFound, Unprocessable):
        return False
    return True


async def return_stock(runtime: StockHost, product_id: str, size: str, qty: int, *, ref: str | None = None) -> None:
    """Give back units an order held (the caller guarantees once per reservation)."""
    if qty <= 0:
        return
    try:
        await adjust_stock(runtime, product_id, size, qty, reason=StockReason.release, ref=ref)
    except (NotFound, Unprocessable):
        log.warning("stock of %s/%s not returned: the product or size no longer exists (ref %s)",
                    product_id, size, ref)


async def available(product_id: str, size: str) -> int:
    raw = await Product.get_pymongo_collection().find_one({"_id": product_id}, {"stock": 1})
    return int(((raw or {}).get("stock") or {}).get(size, 0))


async def record_sale(items: list[tuple[str, str, int]], sign: int = 1) -> None:
    """Count units sold (``sign=-1`` takes a cancelled sale back): one ``bulk_write`` for all the products."""
    units: dict[str, int] = {}
    for product_id, _size, qty in items:
        units[product_id] = units.get(product_id, 0) + sign * qty
    if units:
        await Product.get_pymongo_collection().bulk_write(
            [UpdateOne({"_id": pid}, {"$inc": {"units_sold": n}}) for pid, n in units.items()], ordered=False)
