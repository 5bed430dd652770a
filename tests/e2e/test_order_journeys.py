"""Whole journeys over HTTP: cart → checkout → Stripe webhook → staff moves the order to delivered."""

from __future__ import annotations

import re

import pytest

from app.services.orders import has_delivered_purchase
from tests.checkout_helpers import API, add_to_cart, checkout, checkout_body, guest_cart, open_shop
from tests.factories import make_product
from tests.services import body_text
from tests.stripe_fixtures import send_webhook


@pytest.fixture
def settings(make_settings, stripe_settings):
    return make_settings(**stripe_settings)


async def _deliver(client, staff_headers, order_id: str) -> None:
    for status in ("preparing", "out_for_delivery", "delivered"):
        r = await client.post(f"{API}/admin/orders/{order_id}/status", json={"status": status},
                              headers=staff_headers)
        assert r.status_code == 200, r.text


async def test_customer_journey(app, client, admin, staff, stripe_double, mailbox):
    await open_shop(app, client, admin[1])
    product = await make_product(name="Velvet Red Roses", stock={"standard": 3, "deluxe": 3})
    r = await client.post(f"{API}/auth/register", json={"email": "nora@example.com", "password": "Tulip-Fields-2030",
                                                          "first_name": "Nora", "last_name": "Lane"})
    assert r.status_code == 201
    h = {"Authorization": f"Bearer {r.json()['tokens']['access_token']}"}
    await add_to_cart(client, product, headers=h, quantity=2, gift_message="Happy anniversary")
    r = await checkout(client, h, checkout_body())
    assert r.status_code == 201, r.text
    order_id, intent_id = r.json()["order"]["id"], r.json()["payment"]["payment_intent_id"]
    assert not await has_delivered_purchase(r.json()["order"]["contact"]["user_id"], product.id)

    await send_webhook(client, "payment_intent.succeeded", stripe_double.succeed(intent_id))
    r = await client.get(f"{API}/orders/{order_id}", headers=h)
    assert (r.json()["status"], r.json()["payment_status"]) == ("paid", "paid")
    assert (await client.get(f"{API}/cart", headers=h)).json()["lines"] == []
    text = body_text((await mailbox.wait_for("nora@example.com", "is confirmed"))[0])
    assert "Velvet Red Roses" in text and "Happy anniversary" in text

    await _deliver(client, staff[1], order_id)
    r = await client.get(f"{API}/orders", headers=h)
    assert [(o["id"], o["status"]) for o in r.json()["items"]] == [(order_id, "delivered")]
    r = await client.get(f"{API}/orders/{order_id}/tracking", headers=h)
    assert [s["status"] for s in r.json()["history"]] == [
        "pending_payment", "paid", "preparing", "out_for_delivery", "delivered"]
    await mailbox.wait_for("nora@example.com", "was delivered")
    user_id = (await client.get(f"{API}/users/me", headers=h)).json()["id"]
    assert await has_delivered_purchase(user_id, product.id)  # reviews: verified purchase


async def test_guest_journey(app, client, admin, staff, stripe_double, mailbox):
    await open_shop(app, client, admin[1])
    product = await make_product(name="Sunny Gerberas", stock={"standard": 1})
    cart = await guest_cart(client, product)
    r = await checkout(client, cart, checkout_body(guest=True))
    assert r.status_code == 201, r.text
    order_id, token = r.json()["order"]["id"], r.json()["access_token"]
    failed = stripe_double.fail(r.json()["payment"]["payment_intent_id"])
    await send_webhook(client, "payment_intent.payment_failed", failed)
    track = {"X-Order-Token": token}
    r = await client.get(f"{API}/orders/{order_id}", headers=track)
    assert (r.json()["status"], r.json()["payment_status"]) == ("pending_payment", "failed")
    await send_webhook(client, "payment_intent.succeeded", stripe_double.succeed(failed["id"]))

    text = body_text((await mailbox.wait_for("guest@example.com", "is confirmed"))[0])
    link_token = re.search(r"token=([A-Za-z0-9_-]+)", text).group(1)
    assert link_token == token
    await _deliver(client, staff[1], order_id)
    r = await client.get(f"{API}/orders/{order_id}/tracking", headers=track)
    assert r.json()["status"] == "delivered" and r.json()["window_start"].endswith("Z")
    assert (await client.get(f"{API}/orders/{order_id}")).status_code == 401
    await mailbox.wait_for("guest@example.com", "was delivered")
