"""Stripe in tests: the local double (one server per session, emptied per test), app settings pointing the
real SDK at it, and helpers to place orders and deliver signed webhooks."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from app.composition import order_service as build_order_service
from app.models.order import DeliveryMethod, Order, OrderLine, PaymentMethod
from app.services.order_jobs import OrderJobs
from app.services.orders import OrderService
from tests.stripe_double import StripeDouble, event, sign

WEBHOOK_SECRET = "whsec_test_amour_florals"
STRIPE_KEY = "sk_test_amour_florals"


@pytest.fixture(scope="session")
def stripe_server() -> Any:
    double = StripeDouble()
    base = double.start()
    yield double, base
    double.stop()


@pytest.fixture
def stripe_double(stripe_server) -> StripeDouble:
    double, _ = stripe_server
    double.reset()
    return double


@pytest.fixture
def stripe_settings(stripe_server) -> dict[str, Any]:
    _, base = stripe_server
    return {"stripe_secret_key": STRIPE_KEY, "stripe_webhook_secret": WEBHOOK_SECRET, "stripe_api_base": base,
            "stripe_max_network_retries": 0}


def order_service(app) -> OrderService:
    return build_order_service(app.state.runtime)


def order_payments(app) -> OrderJobs:
    return OrderJobs(order_service(app))


async def place_order(app, lines: list[OrderLine], *, user_id: str | None = None, email: str = "buyer@example.com",
                      method: DeliveryMethod = DeliveryMethod.delivery, payment: PaymentMethod = PaymentMethod.card,
                      **fields: Any) -> Order:
    """Place an order the way checkout does after pricing: reserve stock, insert, start the card payment."""
    from tests.factories import build_order

    service = order_service(app)
    order = build_order(lines, number=await service.next_number(), user_id=user_id, email=email, method=method,
                        payment=payment, **fields)
    if user_id is None:
        from app.core.security import hash_token
        from app.services.order_access import order_access_token

        order.access_token_hash = hash_token(order_access_token(app.state.settings, order.id))
    await service.place(order)
    if payment == PaymentMethod.card:
        await service.start_card_payment(order)
    return await Order.get(order.id)


async def paid_order(app, client: httpx.AsyncClient, double: StripeDouble, lines: list[OrderLine],
                     **kw: Any) -> Order:
    """A card order placed and paid (the PaymentIntent succeeds in the double, the signed webhook arrives)."""
    order = await place_order(app, lines, **kw)
    r = await send_webhook(client, "payment_intent.succeeded", double.succeed(order.payment_intent_id))
    assert r.status_code == 200, r.text
    paid = await Order.get(order.id)
    assert paid.payment_status == "paid"
    return paid


async def send_webhook(client: httpx.AsyncClient, kind: str, obj: dict[str, Any], *, event_id: str | None = None,
                       secret: str = WEBHOOK_SECRET) -> httpx.Response:
    body = event(kind, obj, event_id)
    return await client.post("/api/v1/payments/webhook", content=body,
                             headers={"Stripe-Signature": sign(body, secret), "Content-Type": "application/json"})


def event_id_of(body: bytes) -> str:
    return json.loads(body)["id"]
