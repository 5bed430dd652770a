"""Daily sales rollups (app/services/sales_rollups.py) seen through the reports, over HTTP.

Every order is placed by the order service and paid, refunded and cancelled through the API, signed Stripe
webhooks or the Stripe double's "dashboard"; the figures asserted are what staff see in /admin/reports.
A crash between an order's write and its rollup update is made by failing one step of the real code
(monkeypatch) for one request; the background job then has to finish the work, counting once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from app.core.clock import utcnow
from app.models.order import Order
from app.models.sales import SalesDay
from app.services.sales_rollups import SalesRollups
from tests.factories import line_for, make_product
from tests.stripe_fixtures import order_payments, place_order, send_webhook
from tests.support import rewrite
from tests.test_reports import API, NY, seed_shop

STAFF_REPORTS = [("sales", {"from": "2030-03-01", "to": "2030-04-30", "interval": "day"}),
                 ("sales", {"from": "2030-03-01", "to": "2030-04-30", "interval": "week"}),
                 ("top-products", {"from": "2030-03-01", "to": "2030-04-30", "by": "units", "limit": 50}),
                 ("top-products", {"from": "2030-04-08", "to": "2030-04-09"}),
                 ("customers", {"from": "2030-03-01", "to": "2030-04-30"}),
                 ("overview", {})]


@pytest.fixture
def settings(make_settings, stripe_settings):
    return make_settings(workers_enabled=False, **stripe_settings)


async def reports(client, headers: dict[str, str]) -> list[Any]:
    out = []
    for path, params in STAFF_REPORTS:
        r = await client.get(f"{API}/{path}", params=params, headers=headers)
        assert r.status_code == 200, r.text
        out.append(r.json())
    return out


async def day_figures(client, headers: dict[str, str], day: str) -> dict[str, int]:
    r = await client.get(f"{API}/sales", params={"from": day, "to": day}, headers=headers)
    assert r.status_code == 200, r.text
    return {k: r.json()["totals"][k] for k in ("gross", "refunded", "orders", "units")}


def ny(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=NY).astimezone(dt.UTC)


async def test_reports_are_the_same_after_a_rebuild_and_from_nothing(app, client, staff, stripe_double, settings):
    _, h = staff
    await seed_shop(app, client, stripe_double, h)
    before = await reports(client, h)
    rollups = SalesRollups(settings)
    versions = {o.id: o.version for o in await Order.find_all().to_list()}

    assert await rollups.rebuild(dt.date(2030, 3, 1), dt.date(2030, 4, 30)) == 6  # six paid orders
    assert await reports(client, h) == before
    # Nothing was wrong, so no order was rewritten: a rebuild of correct rollups changes nothing.
    assert {o.id: o.version for o in await Order.find_all().to_list()} == versions

    # As before the migration: no rollups and no order knows its share.
    await SalesDay.get_pymongo_collection().delete_many({})
    await Order.get_pymongo_collection().update_many({}, {"$unset": {"rollup": ""}})
    empty = await client.get(f"{API}/sales", params={"from": "2030-04-08", "to": "2030-04-09"}, headers=h)
    assert empty.json()["totals"]["orders"] == 0
    await rollups.rebuild(dt.date(2030, 3, 1), dt.date(2030, 4, 30))
    assert await reports(client, h) == before
    await rollups.rebuild(dt.date(2030, 3, 1), dt.date(2030, 4, 30))  # idempotent
    assert await reports(client, h) == before

    # A wrong figure on a day document is corrected by rebuilding that day.
    await SalesDay.get_pymongo_collection().update_one({"_id": "sd_2030-04-08_USD"}, {"$inc": {"gross": 999}})
    assert (await day_figures(client, h, "2030-04-08"))["gross"] == 36693 + 999
    await rollups.rebuild(dt.date(2030, 4, 8), dt.date(2030, 4, 8))
    assert await reports(client, h) == before


async def test_a_replayed_payment_or_refund_webhook_counts_once(app, client, staff, stripe_double):
    _, h = staff
    app.state.clock = lambda: ny(2030, 4, 9, 15, 0)
    rose = await make_product(name="Rose")
    order = await place_order(app, [line_for(rose, quantity=2)], created_at=ny(2030, 4, 9, 10, 0))
    paid = stripe_double.succeed(order.payment_intent_id)
    r = await send_webhook(client, "payment_intent.succeeded", paid, event_id="evt_paid_1")
    assert r.json()["result"] == "processed"
    assert (await send_webhook(client, "payment_intent.succeeded", paid, event_id="evt_paid_1")).json()["result"] \
        == "duplicate"
    # Stripe may also send another event about the same payment: processed again, counted once.
    assert (await send_webhook(client, "payment_intent.succeeded", paid)).json()["result"] == "processed"
    total = order.amounts.total
    assert await day_figures(client, h, "2030-04-09") == {"gross": total, "refunded": 0, "orders": 1, "units": 2}

    charge = stripe_double.dashboard_refund(order.payment_intent_id, 700)
    for event_id in ("evt_refund_1", "evt_refund_1", "evt_refund_2"):
        assert (await send_webhook(client, "charge.refunded", charge, event_id=event_id)).status_code == 200
    assert await day_figures(client, h, "2030-04-09") == {"gross": total, "refunded": 700, "orders": 1, "units": 2}
    day = await SalesDay.get("sd_2030-04-09_USD")
    assert (day.gross, day.refunded, day.products[rose.id].units) == (total, 700, 2)
    assert not (await Order.get(order.id)).rollup.pending  # every change applied and cleared


async def test_partial_refunds_then_a_cancellation_after_payment(app, client, staff, stripe_double):
    _, h = staff
    app.state.clock = lambda: ny(2030, 4, 9, 15, 0)
    peony = await make_product(name="Peony", prices={"standard": 16000})
    order = await place_order(app, [line_for(peony)], created_at=ny(2030, 4, 9, 11, 0))
    await send_webhook(client, "payment_intent.succeeded", stripe_double.succeed(order.payment_intent_id))
    total = order.amounts.total
    for amount in (1000, 2500):
        r = await client.post(f"/api/v1/admin/orders/{order.id}/refund", headers=h,
                              json={"amount": amount, "reason": "Wilted stems"})
        assert r.status_code == 200 and r.json()["payment_status"] == "partially_refunded", r.text
    assert await day_figures(client, h, "2030-04-09") == {"gross": total, "refunded": 3500, "orders": 1, "units": 1}
    r = await client.post(f"/api/v1/admin/orders/{order.id}/status", headers=h,
                          json={"status": "cancelled", "note": "Customer called"})
    assert r.status_code == 200 and r.json()["payment_status"] == "refunded", r.text
    # A cancelled paid order still counts as an order; all its money came back.
    assert await day_figures(client, h, "2030-04-09") == {"gross": total, "refunded": total, "orders": 1, "units": 1}
    r = await client.get(f"{API}/top-products", params={"from": "2030-04-09", "to": "2030-04-09"}, headers=h)
    assert r.json()["items"] == [{"product_id": peony.id, "name": "Peony", "units": 1, "revenue": 16000,
                                  "orders": 1}]


async def test_orders_either_side_of_the_shop_midnight(app, client, staff, stripe_double):
    _, h = staff
    app.state.clock = lambda: ny(2030, 11, 3, 12, 0)
    rose = await make_product(name="Rose")
    # 2030-11-03 is the day New York leaves DST: the day is 25 hours long, midnight to midnight.
    placed = {"late": ny(2030, 11, 2, 23, 59, 59), "first": ny(2030, 11, 3, 0, 0, 0),
              "last": ny(2030, 11, 3, 23, 59, 59), "next": ny(2030, 11, 4, 0, 0, 0)}
    for at in placed.values():
        order = await place_order(app, [line_for(rose)], created_at=at)
        await send_webhook(client, "payment_intent.succeeded", stripe_double.succeed(order.payment_intent_id))
    r = await client.get(f"{API}/sales", params={"from": "2030-11-02", "to": "2030-11-04"}, headers=h)
    assert [(b["key"], b["orders"]) for b in r.json()["buckets"]] == [
        ("2030-11-02", 1), ("2030-11-03", 2), ("2030-11-04", 1)]
    assert sorted(d.id for d in await SalesDay.find_all().to_list()) == [
        "sd_2030-11-02_USD", "sd_2030-11-03_USD", "sd_2030-11-04_USD"]


async def _paid_order_left_pending(app, client, stripe_double, monkeypatch, step: str) -> Order:
    """A paid card order whose rollup work stopped at ``step`` (the process died there)."""
    rose = await make_product(name="Rose")
    order = await place_order(app, [line_for(rose, quantity=3)], created_at=ny(2030, 4, 9, 10, 0))

    async def crash(*_a: Any, **_k: Any) -> None:
        raise ConnectionError("the process stopped here")

    with monkeypatch.context() as m:
        m.setattr(SalesRollups, step, crash)
        r = await send_webhook(client, "payment_intent.succeeded", stripe_double.succeed(order.payment_intent_id))
    assert r.status_code == 200 and r.json()["result"] == "processed"  # the order is paid all the same
    stored = await Order.get(order.id)
    assert stored.payment_status == "paid" and stored.rollup.pending_any
    return stored


async def _run_job_when_due(app, order: Order) -> int:
    rollup = order.rollup.model_copy(update={"since": utcnow() - dt.timedelta(hours=1)})
    await rewrite(Order, order.id, rollup=rollup.model_dump())  # the retry delay has passed
    return await order_payments(app).settle_rollups_due()


@pytest.mark.parametrize("step", ["_apply", "_forget"])
async def test_work_left_pending_by_a_crash_is_finished_once_by_the_job(app, client, staff, stripe_double,
                                                                        monkeypatch, step):
    _, h = staff
    app.state.clock = lambda: ny(2030, 4, 9, 15, 0)
    order = await _paid_order_left_pending(app, client, stripe_double, monkeypatch, step)
    applied = {"gross": order.amounts.total, "refunded": 0, "orders": 1, "units": 3}
    # _apply failed: nothing counted yet; _forget failed: counted, but still listed as pending.
    assert await day_figures(client, h, "2030-04-09") == (applied if step == "_forget" else dict.fromkeys(applied, 0))

    assert await order_payments(app).settle_rollups_due() == 0  # not due before ROLLUP_RETRY_SECONDS
    assert await _run_job_when_due(app, await Order.get(order.id)) == 1
    assert await day_figures(client, h, "2030-04-09") == applied
    assert not (await Order.get(order.id)).rollup.pending_any
    assert await _run_job_when_due(app, await Order.get(order.id)) == 0  # nothing left to do
    assert await day_figures(client, h, "2030-04-09") == applied


async def test_two_processes_settling_one_change_count_it_once(app, client, staff, stripe_double, monkeypatch,
                                                               settings):
    _, h = staff
    app.state.clock = lambda: ny(2030, 4, 9, 15, 0)
    order = await _paid_order_left_pending(app, client, stripe_double, monkeypatch, "_apply")
    done = await asyncio.gather(*(SalesRollups(settings).settle(order) for _ in range(4)))
    assert done == [True] * 4
    assert (await day_figures(client, h, "2030-04-09"))["orders"] == 1
    assert not (await Order.get(order.id)).rollup.pending


async def test_a_rebuild_counts_a_change_left_pending_once(app, client, staff, stripe_double, monkeypatch, settings):
    _, h = staff
    app.state.clock = lambda: ny(2030, 4, 9, 15, 0)
    order = await _paid_order_left_pending(app, client, stripe_double, monkeypatch, "_apply")
    await SalesRollups(settings).rebuild(dt.date(2030, 4, 9), dt.date(2030, 4, 9))
    assert (await day_figures(client, h, "2030-04-09"))["orders"] == 1
    assert not (await Order.get(order.id)).rollup.pending_any
    assert await _run_job_when_due(app, await Order.get(order.id)) == 0
    assert (await day_figures(client, h, "2030-04-09"))["orders"] == 1


async def test_old_tokens_are_pruned(app, client, staff, stripe_double, settings):
    app.state.clock = lambda: ny(2030, 4, 9, 15, 0)
    rose = await make_product(name="Rose")
    order = await place_order(app, [line_for(rose)], created_at=ny(2030, 4, 9, 10, 0))
    await send_webhook(client, "payment_intent.succeeded", stripe_double.succeed(order.payment_intent_id))
    day = await SalesDay.get("sd_2030-04-09_USD")
    assert len(day.applied) == 1
    old = "rlt_01AAAAAAAAAAAAAAAAAAAAAAAA"  # a token from 2016
    await SalesDay.get_pymongo_collection().update_one({"_id": day.id}, {"$addToSet": {"applied": old}})
    await SalesRollups(settings).prune()
    assert (await SalesDay.get(day.id)).applied == day.applied
