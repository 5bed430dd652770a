"""The expiry sweeper and the reconciliation job, called directly (background workers are off here)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from app.core.clock import utcnow
from app.models.catalog import Product
from app.models.order import Order
from tests.factories import line_for, make_product
from tests.stripe_fixtures import order_payments, paid_order, place_order, send_webhook


@pytest.fixture
def settings(make_settings, stripe_settings):
    return make_settings(workers_enabled=False, **stripe_settings)


async def _backdate(order: Order, minutes: int, *fields: str) -> None:
    """Move timestamps into the past. replace_one, because the embedded server stores a datetime given to
    $set as a string (see tests/test_db_contract_orders.py)."""
    coll = Order.get_pymongo_collection()
    raw = await coll.find_one({"_id": order.id})
    past = utcnow() - timedelta(minutes=minutes)
    await coll.replace_one({"_id": order.id}, {**raw, **{f: past for f in fields}})


async def _age(order: Order, minutes: int) -> None:
    await _backdate(order, minutes, "created_at", "updated_at")


async def test_expiry_releases_exactly_its_reservation_once(app, stripe_double):
    product = await make_product(stock={"standard": 5, "deluxe": 2})
    late = await place_order(app, [line_for(product, quantity=2), line_for(product, "deluxe")], minutes=-1)
    fresh = await place_order(app, [line_for(product)])
    assert (await Product.get(product.id)).stock == {"standard": 2, "deluxe": 1}

    counts = await asyncio.gather(*(order_payments(app).expire_due() for _ in range(4)))
    assert sum(counts) == 1
    assert (await Product.get(product.id)).stock == {"standard": 4, "deluxe": 2}
    expired = await Order.get(late.id)
    assert expired.status == "expired" and expired.reservation.released_at is not None
    assert expired.status_history[-1].by == "system"
    assert stripe_double.intents[late.payment_intent_id]["status"] == "canceled"
    assert (await Order.get(fresh.id)).status == "pending_payment"
    assert await order_payments(app).expire_due() == 0
    assert (await Product.get(product.id)).stock == {"standard": 4, "deluxe": 2}


async def test_expiring_order_paid_meanwhile_becomes_paid(app, stripe_double):
    product = await make_product(stock={"standard": 3})
    order = await place_order(app, [line_for(product)], minutes=-1)
    stripe_double.succeed(order.payment_intent_id)
    assert await order_payments(app).expire_due() == 1
    paid = await Order.get(order.id)
    assert (paid.status, paid.payment_status) == ("paid", "paid")
    assert (await Product.get(product.id)).stock["standard"] == 2


async def test_stripe_down_leaves_the_order_for_a_later_sweep(app, stripe_double):
    product = await make_product(stock={"standard": 3})
    order = await place_order(app, [line_for(product)], minutes=-1)
    stripe_double.failures["/v1/payment_intents/"] = 1
    assert await order_payments(app).expire_due() == 0
    assert (await Order.get(order.id)).status == "pending_payment"
    assert await order_payments(app).expire_due() == 0  # leased: not tried again before the lease is over
    await _backdate(order, 2, "leased_at")
    assert await order_payments(app).expire_due() == 1
    assert (await Product.get(product.id)).stock["standard"] == 3


async def test_an_expiring_payment_stripe_no_longer_knows_still_expires(app, stripe_double):
    product = await make_product(stock={"standard": 3})
    order = await place_order(app, [line_for(product)], minutes=-1)
    stripe_double.forget(order.payment_intent_id)
    assert await order_payments(app).expire_due() == 1
    assert (await Order.get(order.id)).status == "expired"
    assert (await Product.get(product.id)).stock["standard"] == 3


async def test_interrupted_release_is_completed_by_the_sweeper(app, stripe_double):
    product = await make_product(stock={"standard": 3})
    order = await place_order(app, [line_for(product, quantity=3)])
    await Order.get_pymongo_collection().update_one({"_id": order.id}, {"$set": {"status": "cancelled"}})
    await _age(order, 5)  # a process died between the status change and the release
    assert await order_payments(app).expire_due() == 1
    assert (await Product.get(product.id)).stock["standard"] == 3
    assert await order_payments(app).expire_due() == 0
    assert (await Product.get(product.id)).stock["standard"] == 3


async def test_reconciliation_settles_a_lost_webhook(app, stripe_double):
    product = await make_product()
    lost = await place_order(app, [line_for(product)])
    young = await place_order(app, [line_for(product)])
    stripe_double.succeed(lost.payment_intent_id)
    stripe_double.succeed(young.payment_intent_id)
    await _age(lost, 10)
    assert await order_payments(app).reconcile_due() == 1
    assert (await Order.get(lost.id)).status == "paid"
    assert (await Order.get(young.id)).status == "pending_payment"  # its webhook is still expected
    assert [c.path for c in stripe_double.calls("GET", "/v1/payment_intents/")] == [
        f"/v1/payment_intents/{lost.payment_intent_id}"]
    assert await order_payments(app).reconcile_due() == 0


async def test_refund_left_pending_by_stripe_outage_is_retried_once(app, client, staff, stripe_double):
    order = await place_order(app, [line_for(await make_product())])
    await send_webhook(client, "payment_intent.succeeded", stripe_double.succeed(order.payment_intent_id))
    stripe_double.failures["/v1/refunds"] = 1
    _, h = staff
    r = await client.post(f"/api/v1/admin/orders/{order.id}/refund", json={"amount": 500, "reason": "Late"},
                          headers=h)
    assert r.status_code == 503, r.text
    pending = await Order.get(order.id)
    assert [(x.status, x.amount) for x in pending.refunds] == [("pending", 500)] and pending.amount_refunded == 0
    r = await client.post(f"/api/v1/admin/orders/{order.id}/refund", json={"reason": "All"}, headers=h)
    assert r.status_code == 200 and r.json()["amount_refunded"] == order.amounts.total - 500  # 500 still held
    await _backdate(order, 5, "updated_at")
    assert await order_payments(app).reconcile_due() == 1
    done = await Order.get(order.id)
    assert (done.payment_status, done.amount_refunded, done.refunds_pending) == ("refunded", order.amounts.total, 0)
    calls = stripe_double.calls("POST", "/v1/refunds")
    assert len(calls) == 3 and calls[0].idempotency_key == calls[2].idempotency_key
    assert sorted(x["amount"] for x in stripe_double.refunds.values()) == [500, order.amounts.total - 500]


async def test_cancelling_a_paid_order_while_stripe_is_down_refunds_it_later(app, client, customer, stripe_double):
    user, h = customer
    order = await paid_order(app, client, stripe_double, [line_for(await make_product())], user_id=user.id,
                             email=user.email)
    stripe_double.drop_next("/v1/refunds")
    r = await client.post(f"/api/v1/orders/{order.id}/cancel", headers=h)
    assert r.status_code == 200 and r.json()["payment_status"] == "paid", r.text
    pending = await Order.get(order.id)
    assert [(x.status, x.id) for x in pending.refunds] == [("pending", "cancel")] and pending.refunds_pending == 1
    await _backdate(order, 5, "updated_at")
    assert await order_payments(app).reconcile_due() == 1
    done = await Order.get(order.id)
    assert (done.payment_status, done.amount_refunded, done.refunds_pending) == ("refunded", order.amounts.total, 0)
    assert len(stripe_double.refunds) == 1
