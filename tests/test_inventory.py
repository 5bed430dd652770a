"""Stock adjustments: atomic, never negative, recorded, low-stock alerts and report."""

from __future__ import annotations

import asyncio

from app.models.catalog import Product
from app.models.inventory import StockMovement
from app.models.outbox import OutboxEmail
from app.schemas.catalog import LowStockList, StockMovementOut
from tests.catalog_helpers import API, detail, make_category, make_product


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
