"""Checkout over HTTP: amounts from the server, stock/slot/promo holds, Idempotency-Key, concurrency."""

from __future__ import annotations

import asyncio

from app.models.catalog import Product
from app.models.delivery import SlotUsage
from app.models.order import Order
from app.models.promo import PromoCode
from app.services.stripe_integration.gateway import StripeGateway
from tests.checkout_helpers import (
    API,
    add_to_cart,
    checkout,
    checkout_body,
    guest_cart,
    open_shop,
)
from tests.factories import make_product
from tests.support import assert_problem


async def test_customer_checkout_snapshots_the_cart_and_creates_a_payment_intent(app, client, admin, customer,
                                                                                  stripe_double):
    await open_shop(app, client, admin[1], fee=999)
    user, h = customer
    product = await make_product(stock={"standard": 5, "deluxe": 5})
    await add_to_cart(client, product, headers=h, quantity=2, add_ons=["glass-vase"], gift_message="For Mum")
    await add_to_cart(client, product, headers=h, size="deluxe")
    r = await checkout(client, h, checkout_body(), key="key-customer-1")
    assert r.status_code == 201, r.text
    body = r.json()
    order = body["order"]
    assert order["number"].startswith("AF-1") and order["status"] == "pending_payment"
    assert [(ln["size"], ln["quantity"], ln["unit_price"], ln["line_total"]) for ln in order["lines"]] == [
        ("standard", 2, 6000, 12000), ("deluxe", 1, 6500, 6500)]
    assert order["lines"][0]["gift_message"] == "For Mum" and order["lines"][0]["add_ons"][0]["code"] == "glass-vase"
    a = order["amounts"]
    assert (a["subtotal"], a["delivery_fee"], a["total"]) == (18500, 999, 18500 + 999 + a["tax"])
    assert order["delivery"]["zone_id"] and order["delivery"]["window_start"].endswith("Z")
    assert order["contact"]["email"] == user.email and body["access_token"] is None
    pay = body["payment"]
    assert pay["client_secret"].startswith(pay["payment_intent_id"]) and pay["amount"] == a["total"]
    created = stripe_double.calls("POST", "/v1/payment_intents")
    assert len(created) == 1
    sent = created[0]
    assert (sent.form["amount"], sent.form["currency"]) == (str(a["total"]), "usd")
    assert sent.form["metadata[order_id]"] == order["id"] and sent.form["metadata[order_number]"] == order["number"]
    assert sent.idempotency_key == f"{order['id']}:payment-intent"
    fresh = await Product.get(product.id)
    assert fresh.stock == {"standard": 3, "deluxe": 4} and fresh.ever_ordered
    stored = await Order.get(order["id"])
    assert stored.reservation.slot_held and stored.expires_at is not None
    assert [u.taken for u in await SlotUsage.find_all().to_list()] == [1]


async def test_price_tampering_is_refused_and_changes_nothing(app, client, admin, customer, stripe_double):
    await open_shop(app, client, admin[1])
    _, h = customer
    product = await make_product()
    await add_to_cart(client, product, headers=h)
    for tampered in (checkout_body(total=1), checkout_body(amounts={"total": 1}),
                     {**checkout_body(), "delivery": {**checkout_body()["delivery"], "fee": 0}},
                     {**checkout_body(), "payment_method": {"$ne": ""}}):
        r = await checkout(client, h, tampered)
        assert r.status_code == 422, r.text
    assert await Order.find_all().count() == 0 and stripe_double.requests == []
    r = await checkout(client, h, checkout_body())
    assert r.json()["order"]["amounts"]["subtotal"] == 4500


async def test_idempotency_key_same_body_same_order_other_body_422(app, client, admin, customer, stripe_double):
    await open_shop(app, client, admin[1])
    _, h = customer
    await add_to_cart(client, await make_product(), headers=h)
    results = await asyncio.gather(*(checkout(client, h, checkout_body(), key="same-key-123") for _ in range(10)))
    # However the ten interleave, each answer is the one order or "still in progress" (the deterministic
    # in-progress and crashed-key cases are in test_placement_branches.py).
    outcomes = {(r.status_code, r.json()["order"]["id"] if r.status_code == 201 else r.json()["type"].rsplit("/")[-1])
                for r in results}
    ok = [r.json() for r in results if r.status_code == 201]
    assert ok and outcomes <= {(201, ok[0]["order"]["id"]), (409, "checkout-in-progress")}, outcomes
    assert len({b["payment"]["client_secret"] for b in ok}) == 1
    assert all(r.headers["Retry-After"] == "2" for r in results if r.status_code == 409)
    assert await Order.find_all().count() == 1 and len(stripe_double.intents) == 1
    again = await checkout(client, h, checkout_body(), key="same-key-123")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["order"]["id"] == ok[0]["order"]["id"]
    other = await checkout(client, h, checkout_body(method="pickup"), key="same-key-123")
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")
    # Another key on the same cart version: the cart already has its order.
    r = await checkout(client, h, checkout_body(), key="other-key-456")
    assert r.status_code == 409 and r.json()["type"].endswith("/cart-already-ordered")
    # Once that order ends unpaid, the cart can be checked out again.
    assert (await client.post(f"{API}/orders/{ok[0]['order']['id']}/cancel", headers=h)).status_code == 200
    assert (await checkout(client, h, checkout_body(), key="other-key-456")).status_code == 201
    assert (await client.post(f"{API}/checkout", json=checkout_body(), headers=h)).status_code == 422


async def test_fifty_concurrent_checkouts_for_five_units(app, client, admin, stripe_double):
    await open_shop(app, client, admin[1])
    product = await make_product(stock={"standard": 5})
    carts = [await guest_cart(client, product) for _ in range(50)]
    results = await asyncio.gather(*(checkout(client, c, checkout_body(guest=True, method="pickup"))
                                     for c in carts))
    codes = [r.status_code for r in results]
    assert codes.count(201) == 5 and codes.count(409) == 45, codes
    short = next(r.json() for r in results if r.status_code == 409)
    assert short["type"].endswith("/out-of-stock") and short["available"] == 0 and short["line"] == 0
    assert (await Product.get(product.id)).stock["standard"] == 0
    orders = await Order.find_all().to_list()
    assert len(orders) == 5 and all(o.reservation.stock[0].quantity == 1 for o in orders)
    assert len(stripe_double.intents) == 5


async def test_two_lines_of_one_size_are_summed_when_reserving(app, client, admin, stripe_double):
    await open_shop(app, client, admin[1])
    product = await make_product(stock={"standard": 5})
    carts = []
    for i in range(20):
        c = await guest_cart(client, product, gift_message=f"Love {i}")
        await add_to_cart(client, product, headers=c, gift_message=f"Hugs {i}")
        carts.append(c)
    results = await asyncio.gather(*(checkout(client, c, checkout_body(guest=True, method="pickup"))
                                     for c in carts))
    assert [r.status_code for r in results].count(201) == 2
    assert (await Product.get(product.id)).stock["standard"] == 1
    orders = await Order.find_all().to_list()
    assert all(len(o.lines) == 2 and o.reservation.stock[0].quantity == 2 for o in orders)


async def test_guest_checkout_gets_a_token_and_pay_on_pickup_needs_no_stripe(app, client, admin, make_settings):
    await open_shop(app, client, admin[1])
    product = await make_product()
    cart = await guest_cart(client, product)
    r = await checkout(client, cart, checkout_body("pay_on_pickup"))
    assert r.status_code == 422  # delivery orders are paid by card
    r = await checkout(client, cart, checkout_body("pay_on_pickup", method="pickup"))
    assert r.status_code == 422 and r.json()["type"].endswith("/contact-required")
    r = await checkout(client, cart, checkout_body("pay_on_pickup", guest=True, method="pickup"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["order"]["status"] == "confirmed" and body["payment"]["client_secret"] is None
    assert body["order"]["amounts"]["delivery_fee"] == 0
    token = body["access_token"]
    r = await client.get(f"{API}/orders/{body['order']['id']}", headers={"X-Order-Token": token})
    assert r.status_code == 200 and r.json()["contact"]["email"] == "guest@example.com"


async def test_card_without_stripe_keys_is_503_and_holds_nothing(app, client, admin, customer, make_settings):
    app.state.runtime.stripe = StripeGateway(make_settings())  # STRIPE_SECRET_KEY unset
    await open_shop(app, client, admin[1])
    _, h = customer
    product = await make_product(stock={"standard": 2})
    await add_to_cart(client, product, headers=h)
    r = await checkout(client, h, checkout_body())
    assert r.status_code == 503 and r.json()["type"].endswith("/payments-unavailable")
    assert (await Product.get(product.id)).stock["standard"] == 2 and await Order.find_all().count() == 0


async def test_promo_use_taken_once_and_given_back_on_cancel(app, client, admin, user_factory, stripe_double):
    await open_shop(app, client, admin[1])
    r = await client.post(f"{API}/admin/promo-codes", headers=admin[1],
                          json={"code": "LAST1", "kind": "fixed", "amount": 500, "usage_limit": 1})
    assert r.status_code == 201, r.text
    product = await make_product()
    buyers = [await user_factory() for _ in range(2)]
    for _, h in buyers:
        await add_to_cart(client, product, headers=h)
        assert (await client.post(f"{API}/cart/promo", headers=h, json={"code": "last1"})).status_code == 200
    results = await asyncio.gather(*(checkout(client, h, checkout_body()) for _, h in buyers))
    codes = sorted(r.status_code for r in results)
    assert codes == [201, 409], [r.text for r in results]
    won = next(r.json() for r in results if r.status_code == 201)
    lost = next((r.json(), h) for r, (_, h) in zip(results, buyers, strict=True) if r.status_code == 409)
    assert won["order"]["amounts"]["discount"] == 500 and won["order"]["promo_code"] == "LAST1"
    assert "promo" in lost[0]["type"]
    assert (await Product.get(product.id)).stock["standard"] == 4  # the loser holds nothing
    assert (await PromoCode.find_one(PromoCode.code == "LAST1")).uses == 1
    winner_headers = buyers[[r.status_code for r in results].index(201)][1]
    r = await client.post(f"{API}/orders/{won['order']['id']}/cancel", headers=winner_headers)
    assert r.status_code == 200
    assert (await PromoCode.find_one(PromoCode.code == "LAST1")).uses == 0
    assert [u.taken for u in await SlotUsage.find_all().to_list()] == [0]
    assert (await Product.get(product.id)).stock["standard"] == 5


async def test_slot_with_capacity_three_and_ten_concurrent_checkouts(app, client, admin, stripe_double):
    await open_shop(app, client, admin[1])
    r = await client.patch(f"{API}/admin/delivery/config", headers=admin[1], json={
        "slots": {"afternoon": {"start": "12:00", "end": "17:00", "capacity": 3}}})
    assert r.status_code == 200, r.text
    product = await make_product(stock={"standard": 20})
    carts = [await guest_cart(client, product) for _ in range(10)]
    results = await asyncio.gather(*(checkout(client, c, checkout_body(guest=True)) for c in carts))
    codes = [r.status_code for r in results]
    assert codes.count(201) == 3 and codes.count(409) == 7, codes
    assert all(r.json()["type"].endswith("/slot-full") for r in results if r.status_code == 409)
    assert (await Product.get(product.id)).stock["standard"] == 17  # the refused ones gave their units back
    assert [u.taken for u in await SlotUsage.find_all().to_list()] == [3]
    r = await client.get(f"{API}/delivery/options", params={"zip": "10012", "date": "2030-04-10"})
    afternoon = next(s for s in r.json()["dates"][0]["slots"] if s["code"] == "afternoon")
    assert afternoon["available"] is False


async def test_a_zip_plus_4_address_is_delivered_by_the_zone_of_its_first_five_digits(app, client, admin, customer,
                                                                                      stripe_double):
    await open_shop(app, client, admin[1], fee=999)
    _, h = customer
    await add_to_cart(client, await make_product(), headers=h)
    body = checkout_body()
    body["delivery"]["address"]["zip"] = "10012-1234"  # as saved addresses and /delivery/options accept it
    r = await checkout(client, h, body)
    assert r.status_code == 201, r.text
    order = r.json()["order"]
    assert order["delivery"]["zone_id"] and order["amounts"]["delivery_fee"] == 999
    assert order["delivery"]["address"]["zip"] == "10012-1234"
    bad = checkout_body()
    bad["delivery"]["address"]["zip"] = "10012-12"
    assert_problem(await checkout(client, h, bad), 422, "validation-error")
