"""Checkouts that cannot be charged as usual: a total of 0 (a free order), a total below Stripe's minimum
charge (refused before anything is held), and every way starting the card payment can fail after the holds
were taken (everything given back once, the cart and the Idempotency-Key usable again)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.config import Settings
from app.models.catalog import Product
from app.models.delivery import SlotUsage
from app.models.order import Order
from app.models.outbox import OutboxEmail
from app.models.promo import PromoCode
from app.services.stripe_integration.gateway import StripeGateway
from tests.checkout_helpers import API, add_to_cart, checkout, checkout_body, guest_cart, open_shop
from tests.factories import make_product
from tests.support import assert_problem


async def _promo(client, admin_headers: dict[str, str], code: str, amount: int) -> None:
    r = await client.post(f"{API}/admin/promo-codes", headers=admin_headers,
                          json={"code": code, "kind": "fixed", "amount": amount})
    assert r.status_code == 201, r.text


async def _ledger(product: Product, code: str | None = None) -> dict[str, Any]:
    """What the shop holds: units left, slot places taken, promo uses, orders and their states."""
    promo = await PromoCode.find_one(PromoCode.code == code) if code else None
    return {"stock": (await Product.get(product.id)).stock["standard"],
            "slots": sum(u.taken for u in await SlotUsage.find_all().to_list()),
            "promo_uses": promo.uses if promo else None,
            "orders": sorted((o.status.value, o.reservation.released) for o in await Order.find_all().to_list())}


async def _cart_with_code(client, headers: dict[str, str], product: Product, code: str) -> None:
    await add_to_cart(client, product, headers=headers)
    r = await client.post(f"{API}/cart/promo", headers=headers, json={"code": code})
    assert r.status_code == 200, r.text


async def test_zero_total_card_checkout_is_a_free_order_paid_at_once(app, client, admin, customer, staff,
                                                                     stripe_double, mailbox):
    await open_shop(app, client, admin[1])
    await _promo(client, admin[1], "ONUS", 5000)  # more than the bouquet: the discount stops at the subtotal
    user, h = customer
    product = await make_product(stock={"standard": 3})
    await _cart_with_code(client, h, product, "ONUS")

    r = await checkout(client, h, checkout_body(method="pickup"))
    assert r.status_code == 201, r.text
    body = r.json()
    order, pay = body["order"], body["payment"]
    assert order["amounts"]["total"] == 0 and order["amounts"]["discount"] == 4500
    assert (order["status"], order["payment_status"], order["payment_method"]) == ("paid", "paid", "free")
    assert (order["amount_paid"], order["paid_at"] is not None, order["expires_at"]) == (0, True, None)
    assert pay == {"method": "free", "status": "paid", "payment_intent_id": None, "client_secret": None,
                   "amount": 0, "currency": "USD"}
    assert stripe_double.requests == []
    stored = await Order.get(order["id"])
    assert [(h.from_status, h.to_status) for h in stored.status_history] == [(None, "pending_payment"),
                                                                             ("pending_payment", "paid")]
    fresh = await Product.get(product.id)
    assert (fresh.stock["standard"], fresh.units_sold) == (2, 1)
    assert await _ledger(product, "ONUS") == {"stock": 2, "slots": 1, "promo_uses": 1,
                                              "orders": [("paid", False)]}
    assert (await client.get(f"{API}/cart", headers=h)).json()["lines"] == []
    await mailbox.wait_for(user.email, f"order {order['number']} is confirmed")
    # The rest of the lifecycle as usual; there is nothing to refund.
    url = f"{API}/admin/orders/{order['id']}"
    for status in ("preparing", "ready_for_pickup", "picked_up"):
        r = await client.post(f"{url}/status", headers=staff[1], json={"status": status})
        assert r.status_code == 200, r.text
    assert_problem(await client.post(f"{url}/refund", headers=staff[1], json={"reason": "x"}), 409, "not-refundable")


async def test_guest_free_order_needs_no_payment_provider_and_gets_its_token(app, client, admin, make_settings,
                                                                             stripe_double):
    app.state.runtime.stripe = StripeGateway(make_settings())  # STRIPE_SECRET_KEY unset
    await open_shop(app, client, admin[1])
    await _promo(client, admin[1], "GIFTED", 4500)
    product = await make_product()
    cart = await guest_cart(client, product)
    assert (await client.post(f"{API}/cart/promo", headers=cart, json={"code": "GIFTED"})).status_code == 200
    r = await checkout(client, cart, checkout_body(guest=True, method="pickup"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["order"]["status"], body["payment"]["method"]) == ("paid", "free")
    r = await client.get(f"{API}/orders/{body['order']['id']}", headers={"X-Order-Token": body["access_token"]})
    assert r.status_code == 200 and r.json()["payment_status"] == "paid"


async def test_total_below_the_card_minimum_is_refused_before_anything_is_held(app, client, admin, customer,
                                                                               stripe_double):
    await open_shop(app, client, admin[1])
    await _promo(client, admin[1], "ALMOST", 4480)  # 45.00 - 44.80 = 0.20
    _, h = customer
    product = await make_product(stock={"standard": 3})
    await _cart_with_code(client, h, product, "ALMOST")
    before = await _ledger(product, "ALMOST")
    for _ in range(2):  # the same key again: refused again, never replayed as something else
        r = await checkout(client, h, checkout_body(method="pickup"), key="tiny-total-1")
        body = assert_problem(r, 422, "amount-below-minimum")
        assert (body["minimum"], body["total"], body["currency"]) == (50, 20, "USD")
        assert "$0.50" in body["detail"]
    assert await _ledger(product, "ALMOST") == before == {"stock": 3, "slots": 0, "promo_uses": 0, "orders": []}
    assert stripe_double.requests == []
    # No minimum applies at the counter.
    r = await checkout(client, h, checkout_body("pay_on_pickup", method="pickup"), key="tiny-total-2")
    assert r.status_code == 201 and r.json()["order"]["amounts"]["total"] == 20


def test_the_minimum_charge_is_a_setting_per_currency():
    assert Settings(_env_file=None).min_charge("USD") == 50
    custom = Settings(_env_file=None, stripe_min_amounts={"EUR": 50, "gbp": 30})
    assert (custom.min_charge("eur"), custom.min_charge("GBP"), custom.min_charge("usd")) == (50, 30, 1)
    for bad in ({"usd": 0}, {"dollars": 50}):
        with pytest.raises(ValidationError):
            Settings(_env_file=None, stripe_min_amounts=bad)


# --- failures after the holds ------------------------------------------------------------------------------
def _refused(double) -> None:
    double.fail_next("/v1/payment_intents", status=400, kind="invalid_request_error", code="parameter_unknown",
                     message="Received unknown parameter: automatic_payment_methods")


def _server_error(double) -> None:
    double.fail_next("/v1/payment_intents", status=500)


def _dropped(double) -> None:
    double.drop_next("/v1/payment_intents")


def _malformed(double) -> None:
    double.respond_next("/v1/payment_intents", 200, {"object": "payment_intent"})  # no id, no client secret


FAILURES = [(_refused, 502, "payment-provider-error"), (_server_error, 503, "payments-unavailable"),
            (_dropped, 503, "payments-unavailable"), (_malformed, 500, "internal-error")]


@pytest.mark.parametrize(("inject", "status", "code"), FAILURES, ids=["refused", "5xx", "dropped", "malformed"])
async def test_payment_start_failing_after_holds_gives_everything_back_once(app, client, admin, customer,
                                                                            stripe_double, inject, status, code):
    await open_shop(app, client, admin[1])
    await _promo(client, admin[1], "FIVEOFF", 500)
    _, h = customer
    product = await make_product(stock={"standard": 3})
    await _cart_with_code(client, h, product, "FIVEOFF")
    inject(stripe_double)

    r = await checkout(client, h, checkout_body(), key="checkout-attempt-1")
    problem = assert_problem(r, status, code)
    if code == "payment-provider-error":
        assert problem["provider_code"] == "parameter_unknown" and "unknown parameter" not in problem["detail"]
    assert await _ledger(product, "FIVEOFF") == {"stock": 3, "slots": 0, "promo_uses": 0,
                                                 "orders": [("payment_failed", True)]}
    failed = await Order.find_one({})
    assert failed.status_history[-1].by == "system" and "could not be started" in failed.status_history[-1].note
    assert await OutboxEmail.find({"template": {"$in": ["order_cancelled", "order_confirmation"]}}).count() == 0

    # The same key runs the checkout again (the failure is not replayed) and the cart is not "already ordered".
    r = await checkout(client, h, checkout_body(), key="checkout-attempt-1")
    assert r.status_code == 201, r.text
    assert "Idempotent-Replayed" not in r.headers and r.json()["order"]["id"] != failed.id
    assert r.json()["payment"]["client_secret"]
    assert await _ledger(product, "FIVEOFF") == {"stock": 2, "slots": 1, "promo_uses": 1,
                                                 "orders": [("payment_failed", True), ("pending_payment", False)]}


async def test_stripe_minimum_refusal_after_holds_is_a_502_with_everything_back(app, client, admin, stripe_double):
    # STRIPE_MIN_AMOUNTS set below Stripe's own minimum: our check passes, Stripe (the double, as Stripe) refuses.
    assert app.state.runtime.settings is app.state.settings
    app.state.settings.stripe_min_amounts = {"usd": 1}
    await open_shop(app, client, admin[1])
    await _promo(client, admin[1], "ALMOST", 4480)
    guest = await guest_cart(client, await make_product(stock={"standard": 1}))
    assert (await client.post(f"{API}/cart/promo", headers=guest, json={"code": "ALMOST"})).status_code == 200
    r = await checkout(client, guest, checkout_body(guest=True, method="pickup"))
    problem = assert_problem(r, 502, "payment-provider-error")
    assert problem["provider_code"] == "amount_too_small" and "access_token" not in problem
    assert [c.form["amount"] for c in stripe_double.calls("POST", "/v1/payment_intents")] == ["20"]
    assert stripe_double.intents == {}
    product_id = (await Order.find_one({})).lines[0].product_id
    assert (await Product.get(product_id)).stock["standard"] == 1
    assert (await PromoCode.find_one(PromoCode.code == "ALMOST")).uses == 0
