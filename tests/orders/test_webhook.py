"""Stripe webhook: signature, once per event id, settlement from the PaymentIntent's current state."""

from __future__ import annotations

from app.models.catalog import Product
from app.models.order import Order
from app.models.outbox import OutboxEmail
from app.models.stripe_event import Event
from tests.factories import line_for, make_product
from tests.services import body_text
from tests.stripe_double import event, sign
from tests.stripe_fixtures import WEBHOOK_SECRET, place_order, send_webhook


async def _stock(product: Product, size: str = "standard") -> int:
    return (await Product.get(product.id)).stock[size]


async def test_succeeded_marks_paid_once_and_sends_the_confirmation(app, client, stripe_double, mailbox):
    product = await make_product(stock={"standard": 4, "deluxe": 1})
    order = await place_order(app, [line_for(product, quantity=2, gift_message="Love you")], email="mia@example.com")
    assert await _stock(product) == 2
    intent = stripe_double.succeed(order.payment_intent_id)

    r = await send_webhook(client, "payment_intent.succeeded", intent, event_id="evt_paid_1")
    assert r.status_code == 200 and r.json() == {"received": True, "result": "processed"}
    paid = await Order.get(order.id)
    assert (paid.status, paid.payment_status, paid.amount_paid) == ("paid", "paid", order.amounts.total)
    assert [h.to_status for h in paid.status_history] == ["pending_payment", "paid"]
    assert paid.status_history[-1].by == "stripe" and paid.expires_at is None
    fresh = await Product.get(product.id)
    assert (fresh.stock["standard"], fresh.units_sold, fresh.ever_ordered) == (2, 2, True)

    again = await send_webhook(client, "payment_intent.succeeded", intent, event_id="evt_paid_1")
    assert again.status_code == 200 and again.json()["result"] == "duplicate"
    assert (await Product.get(product.id)).units_sold == 2
    assert (await Order.get(order.id)).version == paid.version

    msg = (await mailbox.wait_for("mia@example.com", f"order {order.number} is confirmed"))[0]
    text = body_text(msg)
    assert "2 × " in text and "Love you" in text and "Total: $" in text and "token=" in text


async def test_failed_then_succeeded_ends_paid_and_late_failure_changes_nothing(app, client, stripe_double):
    product = await make_product(stock={"standard": 10})
    order = await place_order(app, [line_for(product)])
    failed = stripe_double.fail(order.payment_intent_id, "Insufficient funds.")
    assert (await send_webhook(client, "payment_intent.payment_failed", failed)).status_code == 200
    after_fail = await Order.get(order.id)
    assert (after_fail.status, after_fail.payment_status) == ("pending_payment", "failed")
    assert after_fail.payment_attempts == 1 and after_fail.last_payment_error == "Insufficient funds."
    assert await _stock(product) == 9  # the hold stays for a retry with another card

    succeeded = stripe_double.succeed(order.payment_intent_id)
    assert (await send_webhook(client, "payment_intent.succeeded", succeeded)).status_code == 200
    # The failure event delivered late (a new event id): the intent now says succeeded, nothing regresses.
    assert (await send_webhook(client, "payment_intent.payment_failed", failed)).status_code == 200
    final = await Order.get(order.id)
    assert (final.status, final.payment_status, final.payment_attempts) == ("paid", "paid", 1)


async def test_forged_or_missing_signature_changes_nothing(app, client, stripe_double):
    order = await place_order(app, [line_for(await make_product())])
    intent = stripe_double.succeed(order.payment_intent_id)
    body = event("payment_intent.succeeded", intent, "evt_forged")
    for headers in ({"Stripe-Signature": sign(body, "whsec_wrong")}, {},
                    {"Stripe-Signature": sign(body, WEBHOOK_SECRET, timestamp=1_000_000)}):
        r = await client.post("/api/v1/payments/webhook", content=body, headers=headers)
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    tampered = body.replace(b'"livemode": false', b'"livemode": true')
    r = await client.post("/api/v1/payments/webhook", content=tampered,
                          headers={"Stripe-Signature": sign(body, WEBHOOK_SECRET)})
    assert r.status_code == 400
    assert (await Order.get(order.id)).status == "pending_payment"
    assert await Event.get("stripe:evt_forged") is None


async def test_amount_mismatch_is_flagged_not_paid(app, client, stripe_double):
    order = await place_order(app, [line_for(await make_product())])
    intent = stripe_double.succeed(order.payment_intent_id, amount=100)
    assert (await send_webhook(client, "payment_intent.succeeded", intent)).status_code == 200
    flagged = await Order.get(order.id)
    assert (flagged.status, flagged.payment_status) == ("pending_payment", "unpaid")
    assert [f.code for f in flagged.flags] == ["amount-mismatch"]


async def test_canceled_intent_ends_the_order_and_releases_stock(app, client, stripe_double):
    product = await make_product(stock={"standard": 3})
    order = await place_order(app, [line_for(product, quantity=3)])
    assert await _stock(product) == 0
    canceled = stripe_double.cancel(order.payment_intent_id)
    assert (await send_webhook(client, "payment_intent.canceled", canceled)).status_code == 200
    assert (await send_webhook(client, "payment_intent.canceled", canceled)).status_code == 200
    ended = await Order.get(order.id)
    assert ended.status == "payment_failed" and ended.reservation.released_at is not None
    assert await _stock(product) == 3


async def test_processing_failure_answers_5xx_and_the_retry_processes(app, client, stripe_double):
    order = await place_order(app, [line_for(await make_product())])
    intent = stripe_double.succeed(order.payment_intent_id)
    stripe_double.failures["/v1/payment_intents/"] = 1  # the re-fetch fails once
    r = await send_webhook(client, "payment_intent.succeeded", intent, event_id="evt_retry")
    assert r.status_code == 503
    assert (await Order.get(order.id)).status == "pending_payment"
    assert (await Event.get("stripe:evt_retry")).processed_at is None
    r = await send_webhook(client, "payment_intent.succeeded", intent, event_id="evt_retry")
    assert r.status_code == 200 and r.json()["result"] == "processed"
    assert (await Order.get(order.id)).status == "paid"


async def test_refund_made_in_stripe_dashboard_moves_payment_state(app, client, stripe_double):
    order = await place_order(app, [line_for(await make_product())])
    await send_webhook(client, "payment_intent.succeeded", stripe_double.succeed(order.payment_intent_id))
    charge = stripe_double.charges[stripe_double.intents[order.payment_intent_id]["latest_charge"]]
    charge["amount_refunded"] = 1000
    assert (await send_webhook(client, "charge.refunded", dict(charge))).status_code == 200
    partly = await Order.get(order.id)
    assert (partly.payment_status, partly.amount_refunded, partly.status) == ("partially_refunded", 1000, "paid")
    charge["amount_refunded"] = charge["amount"]
    await send_webhook(client, "charge.refunded", dict(charge))
    full = await Order.get(order.id)
    assert (full.payment_status, full.amount_refunded) == ("refunded", order.amounts.total)


async def test_units_held_down_to_the_threshold_alert_staff_once_a_day(app, client, stripe_double, mailbox):
    product = await make_product(stock={"standard": 5}, low_stock_threshold=3)
    first = await place_order(app, [line_for(product)])
    await send_webhook(client, "payment_intent.succeeded", stripe_double.succeed(first.payment_intent_id))
    assert mailbox.to("florist@amourflorals.test") == []  # 4 left: above the threshold
    for _ in range(2):
        order = await place_order(app, [line_for(product)])
        await send_webhook(client, "payment_intent.succeeded", stripe_double.succeed(order.payment_intent_id))
    msg = (await mailbox.wait_for("florist@amourflorals.test", "Low stock"))[0]
    assert "3 left" in msg["Subject"] and product.name in msg["Subject"]
    queued = await OutboxEmail.find(OutboxEmail.template == "low_stock").to_list()
    assert len(queued) == 1  # the next hold (2 left) is deduplicated per product, size and day
