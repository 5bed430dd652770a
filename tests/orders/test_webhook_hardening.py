"""Stripe webhooks that are signed but not what we expect: malformed structure is a 400 and stores nothing;
events about objects we (or Stripe) do not know are a 200, recorded and ignored; signatures whose timestamp
is too far in the past or the future are refused."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from app.models.order import Order
from app.models.stripe_event import Event
from tests.factories import line_for, make_product
from tests.stripe_double import event, sign
from tests.stripe_fixtures import WEBHOOK_SECRET, paid_order, place_order, send_webhook
from tests.support import assert_problem

URL = "/api/v1/payments/webhook"


async def _post(client, body: bytes, timestamp: int | None = None):
    return await client.post(URL, content=body, headers={"Stripe-Signature": sign(body, WEBHOOK_SECRET, timestamp),
                                                         "Content-Type": "application/json"})


def _envelope(**fields: Any) -> bytes:
    return json.dumps({"id": "evt_malformed_1", "object": "event", "type": "payment_intent.succeeded",
                       "created": int(time.time()), **fields}).encode()


MALFORMED = {
    "not-json": b"this is not json",
    "array": b"[]",
    "null": b"null",
    "empty-object": b"{}",
    "no-data": _envelope(),
    "object-null": _envelope(data={"object": None}),
    "object-a-list": _envelope(data={"object": []}),
    "data-a-string": _envelope(data="payment_intent"),
    "id-a-number": json.dumps({"id": 42, "type": "customer.created", "data": {"object": {}}}).encode(),
    "type-missing": json.dumps({"id": "evt_x", "data": {"object": {}}}).encode(),
    "intent-without-id": _envelope(data={"object": {"object": "payment_intent"}}),
    "charge-in-an-intent-event": _envelope(data={"object": {"id": "ch_1", "object": "charge"}}),
    "metadata-a-list": _envelope(data={"object": {"id": "pi_1", "object": "payment_intent", "metadata": ["x"]}}),
    "refund-without-charge": _envelope(type="charge.refund.updated",
                                       data={"object": {"id": "re_1", "object": "refund"}}),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
async def test_signed_but_malformed_events_are_a_400_and_store_nothing(app, client, stripe_double, body):
    order = await place_order(app, [line_for(await make_product())])
    stripe_double.succeed(order.payment_intent_id)
    assert_problem(await _post(client, body), 400, "malformed-event")
    assert await Event.find_all().count() == 0
    assert (await Order.get(order.id)).status == "pending_payment"


async def test_a_webhook_for_a_payment_we_do_not_know_is_recorded_and_ignored(app, client, stripe_double):
    order = await place_order(app, [line_for(await make_product())])
    unknown = [
        ("payment_intent.succeeded", {"id": "pi_from_another_shop", "object": "payment_intent", "metadata": {}}),
        ("payment_intent.succeeded", {"id": "pi_other", "object": "payment_intent",
                                      "metadata": {"order_id": "../../orders"}}),
        ("charge.refunded", {"id": "ch_nobody_knows", "object": "charge", "amount_refunded": 100}),
        ("charge.refund.updated", {"id": "re_1", "object": "refund", "charge": "ch_nobody_knows"}),
        ("customer.created", {"id": "cus_1", "object": "customer"}),
        ("payout.paid", None),  # a type we do not handle may carry anything
    ]
    for i, (kind, obj) in enumerate(unknown):
        r = await send_webhook(client, kind, obj if obj is not None else {"id": "po_1"}, event_id=f"evt_unknown_{i}")
        assert r.status_code == 200 and r.json() == {"received": True, "result": "ignored"}, (kind, r.text)
        stored = await Event.get(f"stripe:evt_unknown_{i}")
        assert stored.processed_at is not None and stored.outcome.startswith("ignored: "), stored
    again = await send_webhook(client, *unknown[0], event_id="evt_unknown_0")
    assert again.json()["result"] == "duplicate"
    assert (await Order.get(order.id)).status == "pending_payment"


async def test_events_about_objects_stripe_no_longer_knows_are_ignored(app, client, stripe_double):
    order = await place_order(app, [line_for(await make_product())])
    intent = stripe_double.succeed(order.payment_intent_id)
    charge = stripe_double.charge_of(order.payment_intent_id)
    stripe_double.forget(order.payment_intent_id)
    stripe_double.charges.clear()
    for kind, obj in (("payment_intent.succeeded", intent), ("charge.refunded", charge)):
        r = await send_webhook(client, kind, obj)
        assert r.status_code == 200 and r.json()["result"] == "ignored", r.text
    stored = await Order.get(order.id)
    assert (stored.status, stored.payment_status) == ("pending_payment", "unpaid")
    outcomes = sorted(e.outcome for e in await Event.find_all().to_list())
    assert outcomes == ["ignored: Stripe refused to read the PaymentIntent (resource_missing)",
                        "ignored: Stripe refused to read the charge (resource_missing)"]


async def test_a_refund_event_names_its_charge(app, client, stripe_double):
    order = await paid_order(app, client, stripe_double, [line_for(await make_product())])
    charge = stripe_double.dashboard_refund(order.payment_intent_id, 800)
    refund = next(iter(stripe_double.refunds.values()))
    r = await send_webhook(client, "charge.refund.updated", refund)
    assert r.status_code == 200 and r.json()["result"] == "processed"
    stored = await Order.get(order.id)
    assert (stored.amount_refunded, stored.payment_status) == (charge["amount_refunded"], "partially_refunded")


@pytest.mark.parametrize("offset", [-330, -3600, 330, 3600], ids=["past-330s", "past-1h", "future-330s", "future-1h"])
async def test_signatures_outside_the_tolerance_are_refused(app, client, stripe_double, offset):
    order = await place_order(app, [line_for(await make_product())])
    body = event("payment_intent.succeeded", stripe_double.succeed(order.payment_intent_id), "evt_stale")
    assert_problem(await _post(client, body, int(time.time()) + offset), 400, "invalid-signature")
    assert await Event.get("stripe:evt_stale") is None
    assert (await Order.get(order.id)).status == "pending_payment"


@pytest.mark.parametrize("offset", [-200, 200])
async def test_signatures_within_the_tolerance_are_accepted(app, client, stripe_double, offset):
    order = await place_order(app, [line_for(await make_product())])
    body = event("payment_intent.succeeded", stripe_double.succeed(order.payment_intent_id))
    r = await _post(client, body, int(time.time()) + offset)
    assert r.status_code == 200 and r.json()["result"] == "processed", r.text
    assert (await Order.get(order.id)).status == "paid"


async def test_a_body_that_is_not_utf8_cannot_be_verified(app, client, stripe_double):
    assert_problem(await _post(client, b'{"id": "evt_\xff"}'), 400, "invalid-signature")
