"""Stock adjustments: atomic, never negative, recorded, low-stock alerts and report."""

from __future__ import annotations

import asyncio

import pytest

from app.core.errors import Unprocessable
from app.models.catalog import Product
from app.models.inventory import StockMovement, StockReason
from app.models.outbox import OutboxEmail
from app.schemas.catalog.admin import LowStockList, StockMovementOut
from app.services.inventory import adjust_stock, available, record_sale, return_stock, take_stock
from tests.catalog_helpers import API, detail, make_category, make_product
from tests.factories import make_product as factory_product


async def _product(client, headers, **fields):
    cat = await make_category(client, headers, "Stocked")
    return await make_product(client, headers, cat["id"], "Stock Test Bouquet", **fields)


async def test_adjust_records_movement_and_refuses_below_zero(client, staff):
    user, headers = staff
    p = await _product(client, headers)
    url = f"{API}/admin/products/{p['id']}/stock"
    r = await client.post(url, json={"size": "standard", "delta": 10, "reason": "restock", "note": "Tuesday delivery"},
                          headers=headers)
    assert r.status_code == 201, r.text
    m = StockMovementOut.model_validate(r.json())
    assert (m.before, m.after, m.delta, m.reason, m.actor_id, m.note) == (5, 15, 10, "restock", user.id,
                                                                            "Tuesday delivery")
    r = await client.post(url, json={"size": "standard", "delta": -16, "reason": "damaged"}, headers=headers)
    assert r.status_code == 409 and r.json()["available"] == 15
    assert (await Product.get(p["id"])).stock["standard"] == 15
    for bad in ({"size": "standard", "delta": 0, "reason": "restock"},
                {"size": "standard", "delta": 1, "reason": "sale"},
                {"size": "standard", "delta": 1, "reason": "restock", "by": "me"},
                {"size": {"$ne": ""}, "delta": 1, "reason": "restock"}):
        assert (await client.post(url, json=bad, headers=headers)).status_code == 422, bad
    r = await client.post(url, json={"size": "giant", "delta": 1, "reason": "restock"}, headers=headers)
    assert r.status_code == 422
    r = await client.post(f"{API}/admin/products/prd_01M8BSH7ZH4GN3JBT99GWN40N7/stock",
                          json={"size": "standard", "delta": 1, "reason": "restock"}, headers=headers)
    assert r.status_code == 404

    r = await client.get(f"{API}/admin/products/{p['id']}/stock-movements", params={"limit": 2}, headers=headers)
    body = r.json()
    assert [(i["reason"], i["after"]) for i in body["items"]] == [("restock", 15), ("initial", 2)]
    r = await client.get(f"{API}/admin/products/{p['id']}/stock-movements", params={"cursor": body["next_cursor"]},
                         headers=headers)
    assert [(i["reason"], i["size"]) for i in r.json()["items"]] == [("initial", "standard")]
    assert (await Product.get(p["id"])).stock_total == 17


async def test_twenty_concurrent_decrements_never_go_negative(client, staff):
    _, headers = staff
    p = await _product(client, headers)  # standard: 5

    async def take():
        return await client.post(f"{API}/admin/products/{p['id']}/stock",
                                 json={"size": "standard", "delta": -1, "reason": "correction"}, headers=headers)

    results = await asyncio.gather(*(take() for _ in range(20)))
    codes = sorted(r.status_code for r in results)
    assert codes == [201] * 5 + [409] * 15
    stored = await Product.get(p["id"])
    assert stored.stock["standard"] == 0 and stored.stock_total == 2
    moves = await StockMovement.find({"product_id": p["id"], "reason": "correction"}).to_list()
    assert sorted(m.after for m in moves) == [0, 1, 2, 3, 4]
    sizes = {s["code"]: s for s in detail(await client.get(f"{API}/products/{p['id']}"))["sizes"]}
    assert sizes["standard"]["available"] == 0 and not sizes["standard"]["in_stock"]


async def test_low_stock_alert_email_deduped_and_report(app, client, staff, mailbox):
    app.state.settings.low_stock_alert_email = "inventory@amourflorals.test"
    _, headers = staff
    p = await _product(client, headers, low_stock_threshold=2)
    url = f"{API}/admin/products/{p['id']}/stock"
    for delta in (-2, -1):  # 5 -> 3 (above), 3 -> 2 (alert)
        assert (await client.post(url, json={"size": "standard", "delta": delta, "reason": "damaged"},
                                  headers=headers)).status_code == 201
    assert await OutboxEmail.find({"template": "low_stock"}).count() == 1
    assert (await client.post(url, json={"size": "standard", "delta": -1, "reason": "damaged"},
                              headers=headers)).status_code == 201
    assert await OutboxEmail.find({"template": "low_stock"}).count() == 1  # once per product, size and day
    msgs = await mailbox.wait_for("inventory@amourflorals.test", "Low stock")
    assert "Stock Test Bouquet" in str(msgs[0]["Subject"]) and "standard" in str(msgs[0]["Subject"])

    report = LowStockList.model_validate((await client.get(f"{API}/admin/inventory/low-stock",
                                                           headers=headers)).json())
    mine = [(i.size, i.available, i.threshold) for i in report.items if i.product_id == p["id"]]
    assert mine == [("standard", 1, 2), ("deluxe", 2, 2)]


# --- checkout's view and the service's own guards (issue 14: branches no HTTP request reaches) -----------
async def make_stock_product(name: str = "Blush Garden") -> Product:
    """standard 5 + deluxe 5 (stock_total 10), written straight to the database."""
    return await factory_product(name=name, stock_total=10)


async def test_a_stock_change_needs_units(app):
    product = await make_stock_product()
    with pytest.raises(Unprocessable):
        await adjust_stock(app.state.runtime, product.id, "standard", 0, reason=StockReason.correction)
    with pytest.raises(ValueError):
        await take_stock(app.state.runtime, product.id, "standard", 0)
    await return_stock(app.state.runtime, product.id, "standard", 0)
    await return_stock(app.state.runtime, product.id, "standard", -2)
    stored = await Product.get(product.id)
    assert stored.stock == {"standard": 5, "deluxe": 5} and stored.stock_total == 10
    assert await StockMovement.find({"product_id": product.id}).count() == 0


async def test_take_stock_holds_units_once_and_refuses_without_change(app):
    rt = app.state.runtime
    product = await make_stock_product()
    assert await take_stock(rt, product.id, "standard", 3, ref="ord_a") is True
    assert await take_stock(rt, product.id, "standard", 3, ref="ord_b") is False  # 2 left
    assert await take_stock(rt, product.id, "giant", 1, ref="ord_c") is False
    assert await take_stock(rt, "prd_01M8BSH7ZH4GN3JBT99GWN40N7", "standard", 1, ref="ord_d") is False
    stored = await Product.get(product.id)
    assert stored.stock == {"standard": 2, "deluxe": 5} and stored.stock_total == 7 and stored.ever_ordered
    assert await available(product.id, "standard") == 2
    assert await available(product.id, "giant") == 0
    assert await available("prd_01M8BSH7ZH4GN3JBT99GWN40N7", "standard") == 0
    moves = await StockMovement.find({"product_id": product.id}).to_list()
    assert [(m.reason, m.delta, m.before, m.after, m.ref) for m in moves] == [("sale", -3, 5, 2, "ord_a")]
    untouched = await make_stock_product(name="Never Ordered")
    assert await take_stock(rt, untouched.id, "standard", 6) is False
    assert (await Product.get(untouched.id)).ever_ordered is False  # a refused hold does not mark it ordered


async def test_return_stock_gives_units_back_and_tolerates_a_deleted_product_or_size(app):
    rt = app.state.runtime
    product = await make_stock_product()
    assert await take_stock(rt, product.id, "deluxe", 4, ref="ord_a")
    await return_stock(rt, product.id, "deluxe", 4, ref="ord_a")
    stored = await Product.get(product.id)
    assert stored.stock["deluxe"] == 5 and stored.stock_total == 10
    moves = await StockMovement.find({"product_id": product.id, "reason": "release"}).to_list()
    assert [(m.delta, m.before, m.after, m.ref) for m in moves] == [(4, 1, 5, "ord_a")]
    # The size was removed meanwhile: nothing is written, and no stock appears for a size that is gone.
    await Product.get_pymongo_collection().update_one({"_id": product.id}, {"$unset": {"stock.deluxe": ""}})
    await return_stock(rt, product.id, "deluxe", 2, ref="ord_b")
    stored = await Product.get(product.id)
    assert "deluxe" not in stored.stock and stored.stock_total == 10
    await product.delete()
    await return_stock(rt, product.id, "standard", 1, ref="ord_c")  # logged, not raised
    assert await Product.get(product.id) is None
    assert await StockMovement.find({"ref": {"$in": ["ord_b", "ord_c"]}}).count() == 0


async def test_record_sale_counts_units_and_takes_a_cancelled_sale_back(app):
    rose, lily = await make_stock_product(name="Rose"), await make_stock_product(name="Lily")
    await record_sale([(rose.id, "standard", 3), (lily.id, "deluxe", 2), (rose.id, "deluxe", 1)])
    await record_sale([(rose.id, "standard", 3)], sign=-1)
    sold = [(await Product.get_pymongo_collection().find_one({"_id": p.id}))["units_sold"] for p in (rose, lily)]
    assert sold == [1, 2] and all(type(n) is int for n in sold)  # whole units, never 0.33


async def test_no_low_stock_email_without_an_alert_address(app, client, staff):
    app.state.settings.low_stock_alert_email = None
    _, headers = staff
    p = await _product(client, headers, low_stock_threshold=4)
    r = await client.post(f"{API}/admin/products/{p['id']}/stock", json={"size": "standard", "delta": -3,
                                                                         "reason": "damaged"}, headers=headers)
    assert r.status_code == 201 and r.json()["after"] == 2
    assert await OutboxEmail.find({"template": "low_stock"}).count() == 0
