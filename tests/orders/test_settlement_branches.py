"""Settling an order from its PaymentIntent when the order moved on meanwhile (another process settled or closed
it while this one read Stripe), a payment that is still processing, and the Stripe gateway's answers when the
shop has no Stripe account configured."""

from __future__ import annotations

import pytest
import stripe

from app.core.errors import AppError
from app.models.order import Order
from app.services.stripe_integration.gateway import StripeGateway, id_of
from tests.factories import line_for, make_product
from tests.stripe_fixtures import order_service, place_order, send_webhook
from tests.support import API, assert_problem, new_client


async def _intent(app, intent_id: str) -> stripe.PaymentIntent:
    return await order_service(app).gateway.retrieve_intent(intent_id)


async def test_a_payment_still_processing_leaves_the_order_waiting(app, stripe_double):
    order = await place_order(app, [line_for(await make_product())])
    stripe_double.processing(order.payment_intent_id)
    after = await order_service(app).apply_intent(order, await _intent(app, order.payment_intent_id))
    stored = await Order.get(order.id)
    assert (after.status, stored.status, stored.payment_status) == ("pending_payment", "pending_payment", "unpaid")


async def test_a_payment_another_process_already_recorded_is_not_recorded_again(app, client, stripe_double):
    order = await place_order(app, [line_for(await make_product())])  # the copy this process read
    intent = stripe_double.succeed(order.payment_intent_id)
    assert (await send_webhook(client, "payment_intent.succeeded", intent)).status_code == 200
    paid = await Order.get(order.id)
    assert (paid.status, paid.payment_status) == ("paid", "paid")

    again = await order_service(app).apply_intent(order, await _intent(app, order.payment_intent_id))
    stored = await Order.get(order.id)
    assert (again.status, again.version) == ("paid", paid.version)  # nothing written
    assert (stored.amount_paid, stored.flags, len(stored.status_history)) == (
        paid.amount_paid, [], len(paid.status_history))


async def test_a_declined_attempt_read_after_the_order_closed_changes_nothing(app, client, stripe_double):
    order = await place_order(app, [line_for(await make_product())])  # the copy this process read
    cancelled = await order_service(app).cancel(order, by="system", staff=True)
    assert cancelled.status == "cancelled"
    stripe_double.fail(order.payment_intent_id)

    after = await order_service(app).apply_intent(order, await _intent(app, order.payment_intent_id),
                                                  failure_key="evt_declined")
    stored = await Order.get(order.id)
    assert (after.status, stored.status, stored.payment_attempts, stored.last_payment_error) == (
        "cancelled", "cancelled", 0, None)


async def test_without_a_webhook_secret_stripe_webhooks_are_refused_as_unavailable(make_settings, app_factory):
    settings = make_settings(stripe_webhook_secret=None)
    async with app_factory(settings) as application, new_client(application) as c:
        r = await c.post(f"{API}/payments/webhook", content=b"{}",
                         headers={"Stripe-Signature": "t=1,v1=00", "Content-Type": "application/json"})
    assert_problem(r, 503, "payments-unavailable")


def test_without_a_secret_key_the_gateway_is_off_and_refuses_calls(make_settings):
    gateway = StripeGateway(make_settings(stripe_secret_key=None))
    assert gateway.enabled is False
    with pytest.raises(AppError) as refused:
        _ = gateway.client
    assert (refused.value.status, refused.value.code) == (503, "payments-unavailable")


def test_a_reference_field_gives_its_id_expanded_or_not():
    assert id_of("ch_123") == "ch_123" and id_of(None) is None
    assert id_of(stripe.StripeObject.construct_from({"id": "ch_456"}, "sk_test")) == "ch_456"
    assert id_of(stripe.StripeObject.construct_from({"object": "charge"}, "sk_test")) is None
