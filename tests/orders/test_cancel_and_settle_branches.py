"""The failure and recovery branches of cancelling and settling, over HTTP: money arriving after the order
closed, paying while cancelling, refunds that fail when a paid order is cancelled, counter refunds, the
settle-at-counter guards, Stripe errors when closing a payment, and stock of a product deleted meanwhile."""

from __future__ import annotations

from app.models.catalog import Product
from app.models.order import DeliveryMethod, Order, PaymentMethod
from app.models.outbox import OutboxEmail
from tests.factories import line_for, make_product
from tests.services import body_text
from tests.stripe_fixtures import paid_order, place_order, send_webhook
from tests.support import API, assert_problem


async def _stock(product: Product) -> int:
    return (await Product.get(product.id)).stock["standard"]


async def test_payment_arriving_after_the_order_closed_is_recorded_and_flagged(app, client, customer, staff,
                                                                               stripe_double):
    user, h = customer
    product = await make_product(stock={"standard": 2})
    order = await place_order(app, [line_for(product, quantity=2)], user_id=user.id, email=user.email)
    stripe_double.processing(order.payment_intent_id)  # confirmed by the customer, settles later: not cancelable
    r = await client.post(f"{API}/orders/{order.id}/cancel", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    assert await _stock(product) == 2

    intent = stripe_double.succeed(order.payment_intent_id)
    assert (await send_webhook(client, "payment_intent.succeeded", intent)).status_code == 200
    r = await client.get(f"{API}/admin/orders/{order.id}", headers=staff[1])
    body = r.json()
    assert (body["status"], body["payment_status"], body["amount_paid"]) == ("cancelled", "paid", order.amounts.total)
    assert [f["code"] for f in body["flags"]] == ["paid-after-close"]
    assert await _stock(product) == 2 and (await Product.get(product.id)).units_sold == 0
    # Staff give the money back.
    r = await client.post(f"{API}/admin/orders/{order.id}/refund", headers=staff[1], json={"reason": "Paid late"})
    assert r.status_code == 200 and r.json()["payment_status"] == "refunded", r.text


async def test_paying_while_cancelling_ends_cancelled_and_refunded(app, client, customer, stripe_double, mailbox):
    user, h = customer
    product = await make_product(stock={"standard": 3})
    order = await place_order(app, [line_for(product, quantity=2)], user_id=user.id, email=user.email)
    stripe_double.succeed(order.payment_intent_id)  # paid a moment ago; the webhook has not arrived
    r = await client.post(f"{API}/orders/{order.id}/cancel", headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["payment_status"], body["amount_refunded"]) == (
        "cancelled", "refunded", order.amounts.total)
    assert [c.form["amount"] for c in stripe_double.calls("POST", "/v1/refunds")] == [str(order.amounts.total)]
    fresh = await Product.get(product.id)
    assert (fresh.stock["standard"], fresh.units_sold) == (3, 0)
    msg = (await mailbox.wait_for(user.email, "cancelled"))[0]
    assert "refunded to your card" in body_text(msg)


async def test_cancelling_a_paid_order_whose_refund_is_refused(app, client, customer, stripe_double, mailbox):
    user, h = customer
    product = await make_product(stock={"standard": 1})
    order = await paid_order(app, client, stripe_double, [line_for(product)], user_id=user.id, email=user.email)
    stripe_double.fail_next("/v1/refunds", status=400, kind="invalid_request_error", code="charge_disputed",
                            message="This charge has been disputed.")
    r = await client.post(f"{API}/orders/{order.id}/cancel", headers=h)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["payment_status"], r.json()["amount_refunded"]) == ("cancelled", "paid", 0)
    stored = await Order.get(order.id)
    assert [(x.status, x.amount) for x in stored.refunds] == [("failed", order.amounts.total)]
    assert [f.code for f in stored.flags] == ["refund-failed"] and stored.refunds_pending == 0
    assert await _stock(product) == 1
    msg = (await mailbox.wait_for(user.email, "cancelled"))[0]
    assert "Your refund is being processed" in body_text(msg)


async def test_a_settled_pay_on_pickup_order_cancelled_is_flagged_for_a_counter_refund(app, client, staff,
                                                                                      stripe_double):
    product = await make_product(stock={"standard": 2})
    order = await place_order(app, [line_for(product)], method=DeliveryMethod.pickup,
                              payment=PaymentMethod.pay_on_pickup)
    url, h = f"{API}/admin/orders/{order.id}", staff[1]
    assert (await client.post(f"{url}/settle", headers=h, json={"note": "Cash"})).status_code == 200
    r = await client.post(f"{url}/status", headers=h, json={"status": "cancelled", "note": "Shop closed"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["payment_status"], body["amount_paid"]) == ("cancelled", "paid", order.amounts.total)
    assert [f["code"] for f in body["flags"]] == ["refund-at-counter"]
    assert await _stock(product) == 2 and stripe_double.requests == []


async def test_settle_at_the_counter_guards(app, client, staff, stripe_double):
    h = staff[1]
    card = await place_order(app, [line_for(await make_product())])
    assert_problem(await client.post(f"{API}/admin/orders/{card.id}/settle", headers=h), 409, "not-settleable")
    pickup = await place_order(app, [line_for(await make_product())], method=DeliveryMethod.pickup,
                               payment=PaymentMethod.pay_on_pickup)
    r = await client.post(f"{API}/admin/orders/{pickup.id}/status", headers=h, json={"status": "cancelled"})
    assert r.status_code == 200
    assert_problem(await client.post(f"{API}/admin/orders/{pickup.id}/settle", headers=h), 409, "not-settleable")
    for order in (card, pickup):
        stored = await Order.get(order.id)
        assert (stored.payment_status, stored.amount_paid, stored.notes) == ("unpaid", 0, [])


async def test_stripe_refusing_to_cancel_a_payment_keeps_the_order_and_its_holds(app, client, customer,
                                                                                stripe_double):
    user, h = customer
    product = await make_product(stock={"standard": 1})
    order = await place_order(app, [line_for(product)], user_id=user.id, email=user.email)
    stripe_double.fail_next(f"/v1/payment_intents/{order.payment_intent_id}/cancel", status=400,
                            kind="invalid_request_error", code="parameter_invalid_empty", message="Bad parameter")
    body = assert_problem(await client.post(f"{API}/orders/{order.id}/cancel", headers=h), 502,
                          "payment-provider-error")
    assert body["provider_code"] == "parameter_invalid_empty"
    stored = await Order.get(order.id)
    assert (stored.status, stored.reservation.released) == ("pending_payment", False) and await _stock(product) == 0
    # Asked again once Stripe answers: cancelled, and the unit is back.
    r = await client.post(f"{API}/orders/{order.id}/cancel", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert await _stock(product) == 1 and stripe_double.intents[order.payment_intent_id]["status"] == "canceled"


async def test_a_payment_stripe_no_longer_knows_does_not_block_cancelling(app, client, customer, stripe_double):
    user, h = customer
    product = await make_product(stock={"standard": 2})
    order = await place_order(app, [line_for(product)], user_id=user.id, email=user.email)
    stripe_double.forget(order.payment_intent_id)
    r = await client.post(f"{API}/orders/{order.id}/cancel", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    assert await _stock(product) == 2


async def test_cancelling_returns_the_stock_of_products_that_still_exist(app, client, customer, stripe_double):
    user, h = customer
    kept, gone = await make_product(stock={"standard": 3}), await make_product(stock={"standard": 3})
    order = await place_order(app, [line_for(kept, quantity=2), line_for(gone)], user_id=user.id, email=user.email)
    await Product.get_pymongo_collection().delete_one({"_id": gone.id})  # removed by a data fix meanwhile
    r = await client.post(f"{API}/orders/{order.id}/cancel", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    assert await _stock(kept) == 3 and await Product.get(gone.id) is None
    stored = await Order.get(order.id)
    assert stored.reservation.released and await OutboxEmail.find({"template": "order_cancelled"}).count() == 1
