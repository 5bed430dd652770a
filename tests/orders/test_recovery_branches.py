"""Recovery branches of the payment jobs and refunds that production reaches after a crash, an outage or an
event about something we never sold: what the order, the ledger and Stripe end up holding."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from app.core.clock import utcnow
from app.models.catalog import Product
from app.models.order import DeliveryMethod, Order, PaymentMethod
from app.models.outbox import OutboxEmail
from app.models.stripe_event import Event
from app.services.refunds import refund_status
from tests.factories import line_for, make_product
from tests.stripe_fixtures import order_payments, order_service, paid_order, place_order, send_webhook
from tests.support import assert_problem


@pytest.fixture
def settings(make_settings, stripe_settings):
    return make_settings(workers_enabled=False, **stripe_settings)


async def _set(order_id: str, **fields) -> None:
    """Change stored fields the way a crashed process would have left them (replace_one: the embedded server
    stores a datetime given to $set as a string)."""
    coll = Order.get_pymongo_collection()
    raw = await coll.find_one({"_id": order_id})
    await coll.replace_one({"_id": order_id}, {**raw, **fields})


async def _outcome(client, kind: str, obj: dict) -> str | None:
    """Deliver a signed event; it is answered 200 and recorded with what was done about it."""
    event_id = f"evt_{uuid.uuid4().hex}"
    r = await send_webhook(client, kind, obj, event_id=event_id)
    assert r.status_code == 200, r.text
    return (await Event.get(f"stripe:{event_id}")).outcome


# --- webhooks about payments we cannot tie to an order ----------------------------------------------------

async def test_a_refund_of_a_charge_with_no_payment_intent_is_recorded_and_ignored(app, client, stripe_double):
    stripe_double.charges["ch_legacy"] = {"id": "ch_legacy", "object": "charge", "amount": 900, "amount_refunded": 900,
                                          "currency": "usd", "payment_intent": None, "refunded": True}
    assert await _outcome(client, "charge.refunded", stripe_double.charges["ch_legacy"]) == (
        "ignored: no order has this charge's PaymentIntent")


async def test_a_refund_of_another_shops_payment_is_recorded_and_ignored(app, client, stripe_double):
    order = await paid_order(app, client, stripe_double, [line_for(await make_product())])
    charge = stripe_double.dashboard_refund(order.payment_intent_id, 300)
    await Order.get_pymongo_collection().delete_one({"_id": order.id})  # the payment belongs to no order of ours
    assert await _outcome(client, "charge.refunded", charge) == "ignored: no order has this charge's PaymentIntent"


async def test_a_payment_whose_intent_id_was_never_stored_is_found_by_its_order_id(app, client, stripe_double):
    product = await make_product(stock={"standard": 3})
    order = await place_order(app, [line_for(product)])
    intent = order.payment_intent_id
    await _set(order.id, payment_intent_id=None)  # the process died between creating the intent and saving its id
    assert await _outcome(client, "payment_intent.succeeded", stripe_double.succeed(intent)) == "processed"
    paid = await Order.get(order.id)
    assert (paid.status, paid.payment_status, paid.payment_intent_id) == ("paid", "paid", intent)
    assert (await Product.get(product.id)).stock["standard"] == 2


async def test_an_order_id_in_metadata_does_not_capture_an_order_paid_by_another_intent(app, client, stripe_double):
    order = await place_order(app, [line_for(await make_product())])
    other = await place_order(app, [line_for(await make_product())])
    forged = {**stripe_double.succeed(other.payment_intent_id), "id": other.payment_intent_id,
              "metadata": {"order_id": order.id}}
    await Order.get_pymongo_collection().delete_one({"_id": other.id})
    assert await _outcome(client, "payment_intent.succeeded", forged) == "ignored: no order has this PaymentIntent"
    assert (await Order.get(order.id)).status == "pending_payment"


# --- the sweepers after a crash ---------------------------------------------------------------------------

async def test_an_order_that_never_got_its_payment_started_expires_and_gives_everything_back(app, stripe_double):
    product = await make_product(stock={"standard": 3})
    order = await place_order(app, [line_for(product, quantity=2)], minutes=-1)
    await _set(order.id, payment_intent_id=None)  # crashed before the PaymentIntent was created
    assert await order_payments(app).expire_due() == 1
    assert (await Order.get(order.id)).status == "expired"
    assert (await Product.get(product.id)).stock["standard"] == 3
    assert stripe_double.calls("POST", f"/v1/payment_intents/{order.payment_intent_id}/cancel") == []


async def test_reconciling_an_order_without_a_payment_intent_only_marks_it_seen(app, stripe_double):
    order = await place_order(app, [line_for(await make_product())])
    past = utcnow() - timedelta(minutes=30)
    await _set(order.id, payment_intent_id=None, created_at=past, reconciled_at=past)
    assert await order_payments(app).reconcile_due() == 1
    assert await order_payments(app).reconcile_due() == 0  # seen now: not asked again until the next interval
    assert (await Order.get(order.id)).status == "pending_payment"
    assert stripe_double.calls("GET", "/v1/payment_intents/") == []


async def test_a_sweep_works_at_most_a_batch_and_the_rest_waits_for_the_next(make_settings, stripe_settings,
                                                                            app_factory, stripe_double):
    async with app_factory(make_settings(workers_enabled=False, order_job_batch=2, **stripe_settings)) as small:
        product = await make_product(stock={"standard": 5})
        late = [await place_order(small, [line_for(product)], minutes=-1) for _ in range(3)]
        assert await order_payments(small).expire_due() == 2
        assert await order_payments(small).expire_due() == 1
        assert {(await Order.get(o.id)).status for o in late} == {"expired"}
        assert (await Product.get(product.id)).stock["standard"] == 5


# --- refunds when Stripe or a crash interferes ---------------------------------------------------------------

async def test_a_refund_goes_ahead_when_the_charge_cannot_be_read_first_or_after(app, client, staff, stripe_double,
                                                                                mailbox):
    order = await paid_order(app, client, stripe_double, [line_for(await make_product(), quantity=2)])
    stripe_double.fail_next("/v1/payment_intents/", method="GET")  # the read before the refund
    stripe_double.fail_next("/v1/charges/", method="GET")  # the read after it
    r = await client.post(f"/api/v1/admin/orders/{order.id}/refund", json={"amount": 700, "reason": "Late"},
                          headers=staff[1])
    assert r.status_code == 200, r.text
    assert [(x["status"], x["amount"]) for x in r.json()["refunds"]] == [("succeeded", 700)]
    assert stripe_double.charge_of(order.payment_intent_id)["amount_refunded"] == 700
    # Stripe's figure arrives with its event; until then the order shows the refund of ours as succeeded
    charge = stripe_double.charge_of(order.payment_intent_id)
    assert (await send_webhook(client, "charge.refunded", charge)).status_code == 200
    stored = await Order.get(order.id)
    assert (stored.amount_refunded, stored.payment_status) == (700, "partially_refunded")


async def test_a_pending_refund_already_settled_by_another_process_is_not_sent_again(app, client, staff,
                                                                                    stripe_double):
    order = await paid_order(app, client, stripe_double, [line_for(await make_product())])
    stripe_double.failures["/v1/refunds"] = 1
    r = await client.post(f"/api/v1/admin/orders/{order.id}/refund", json={"amount": 500, "reason": "Late"},
                          headers=staff[1])
    assert r.status_code == 503
    pending = await Order.get(order.id)
    refunds = order_service(app).refunds
    settled = await refunds.push(pending, pending.refunds[0].id)  # another process sends it meanwhile
    assert settled.refunds[0].status == "succeeded"
    again = await refunds.push(pending, pending.refunds[0].id)  # the sweeper still holds the old copy
    assert [x.status for x in again.refunds] == ["succeeded"] and again.refunds_pending == 0
    assert len(stripe_double.refunds) == 1


async def test_the_same_refund_key_refunds_once(app, client, stripe_double):
    order = await paid_order(app, client, stripe_double, [line_for(await make_product())])
    refunds = order_service(app).refunds
    first = await refunds.refund(order.id, amount=400, reason="Bent stem", by="usr_x", key="rfd_same", notify=False)
    second = await refunds.refund(order.id, amount=400, reason="Bent stem", by="usr_x", key="rfd_same", notify=False)
    assert [(x.id, x.status) for x in second.refunds] == [("rfd_same", "succeeded")] == [
        (x.id, x.status) for x in first.refunds]
    assert second.amount_refunded == 400 and len(stripe_double.refunds) == 1


async def test_a_charge_of_another_payment_never_changes_the_order(app, client, stripe_double):
    order = await paid_order(app, client, stripe_double, [line_for(await make_product())])
    other = await paid_order(app, client, stripe_double, [line_for(await make_product())])
    refunds = order_service(app).refunds
    foreign = await refunds.gateway.retrieve_charge(stripe_double.dashboard_refund(other.payment_intent_id)["id"])
    assert (await refunds.sync(order, foreign)).amount_refunded == 0
    assert (await refunds.sync(order, None)).amount_refunded == 0
    assert (await Order.get(order.id)).payment_status == "paid"


@pytest.mark.parametrize(("paid", "refunded", "status"), [
    (1000, 0, "paid"), (1000, -5, "paid"), (1000, 1, "partially_refunded"), (1000, 999, "partially_refunded"),
    (1000, 1000, "refunded"), (1000, 1200, "refunded"),
])
def test_refund_status_follows_the_refunded_amount(paid, refunded, status):
    assert refund_status(paid, refunded) == status


# --- the refund rules, one by one --------------------------------------------------------------------------

async def test_an_order_paid_at_the_counter_has_no_card_payment_to_refund(app, client, staff, stripe_double):
    product = await make_product(stock={"standard": 3})
    order = await place_order(app, [line_for(product)], method=DeliveryMethod.pickup,
                              payment=PaymentMethod.pay_on_pickup)
    url = f"/api/v1/admin/orders/{order.id}"
    for status in ("preparing", "ready_for_pickup"):
        assert (await client.post(f"{url}/status", headers=staff[1], json={"status": status})).status_code == 200
    assert (await client.post(f"{url}/settle", headers=staff[1])).status_code == 200
    settled = await Order.get(order.id)
    assert (settled.payment_status, settled.amount_paid) == ("paid", order.amounts.total)
    body = assert_problem(await client.post(f"{url}/refund", headers=staff[1], json={"reason": "Wilted"}), 409,
                          "not-refundable")
    assert body["detail"] == "This order has no card payment to refund."
    assert stripe_double.calls("POST", "/v1/refunds") == []


async def test_a_pending_refund_counts_against_what_is_left_to_refund(app, client, staff, stripe_double):
    order = await paid_order(app, client, stripe_double, [line_for(await make_product())])
    url = f"/api/v1/admin/orders/{order.id}/refund"
    stripe_double.failures["/v1/refunds"] = 1
    assert (await client.post(url, json={"amount": 500, "reason": "Late"}, headers=staff[1])).status_code == 503
    left = order.amounts.total - 500
    body = assert_problem(await client.post(url, json={"amount": left + 1, "reason": "More"}, headers=staff[1]),
                          409, "refund-exceeds-paid")
    assert body["refundable"] == left
    assert (await Order.get(order.id)).refunds_pending == 1


async def test_the_last_cent_can_be_refunded_and_then_nothing_is_left(app, client, staff, stripe_double):
    order = await paid_order(app, client, stripe_double, [line_for(await make_product())])
    url = f"/api/v1/admin/orders/{order.id}/refund"
    r = await client.post(url, json={"amount": order.amounts.total - 1, "reason": "Most"}, headers=staff[1])
    assert r.status_code == 200, r.text
    r = await client.post(url, json={"amount": 1, "reason": "The last cent"}, headers=staff[1])
    assert r.status_code == 200 and r.json()["amount_refunded"] == order.amounts.total
    body = assert_problem(await client.post(url, json={"reason": "Again"}, headers=staff[1]), 409,
                          "nothing-to-refund")
    assert body["detail"] == "Everything paid for this order was already refunded."


async def _refund_emails(address: str) -> list[OutboxEmail]:
    """The refund emails queued for ``address`` (the outbox worker is off in this module)."""
    return await OutboxEmail.find({"to": address, "template": "order_refunded"}).to_list()


async def test_a_refund_tells_the_customer_and_stripe_which_order_it_is(app, client, staff, stripe_double):
    order = await paid_order(app, client, stripe_double, [line_for(await make_product())],
                             email="refunded@example.com")
    r = await client.post(f"/api/v1/admin/orders/{order.id}/refund", json={"amount": 600, "reason": "Bent stem"},
                          headers=staff[1])
    assert r.status_code == 200, r.text
    (record,) = r.json()["refunds"]
    assert record["id"].startswith("rfd_") and record["amount"] == 600
    (call,) = stripe_double.calls("POST", "/v1/refunds")
    assert (call.idempotency_key, call.form["metadata[order_id]"]) == (f"{order.id}:refund:{record['id']}", order.id)
    assert call.form["payment_intent"] == order.payment_intent_id
    assert [e.text.count("$6.00") > 0 for e in await _refund_emails("refunded@example.com")] == [True]


async def test_a_refund_sent_later_by_the_sweeper_also_tells_the_customer(app, client, staff, stripe_double):
    order = await paid_order(app, client, stripe_double, [line_for(await make_product())],
                             email="later@example.com")
    stripe_double.failures["/v1/refunds"] = 1
    r = await client.post(f"/api/v1/admin/orders/{order.id}/refund", json={"amount": 700, "reason": "Late"},
                          headers=staff[1])
    assert r.status_code == 503
    await _set(order.id, updated_at=utcnow() - timedelta(minutes=30))
    assert await order_payments(app).reconcile_due() == 1
    assert [e.text.count("$7.00") > 0 for e in await _refund_emails("later@example.com")] == [True]


async def test_a_refused_refund_flags_the_order_with_stripes_words(app, client, staff, stripe_double):
    order = await paid_order(app, client, stripe_double, [line_for(await make_product())])
    stripe_double.fail_next("/v1/refunds", status=402, kind="invalid_request_error", code="charge_disputed",
                            message="This charge is disputed.")
    r = await client.post(f"/api/v1/admin/orders/{order.id}/refund", json={"amount": 300, "reason": "Late"},
                          headers=staff[1])
    assert assert_problem(r, 409, "refund-refused")["provider_code"] == "charge_disputed"
    flagged = await Order.get(order.id)
    assert [(f.code, "This charge is disputed." in f.detail) for f in flagged.flags] == [("refund-failed", True)]
    assert [(x.status, x.error) for x in flagged.refunds] == [("failed", "This charge is disputed.")]
