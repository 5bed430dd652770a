"""Whole user stories over HTTP: staff stock the shop, shoppers browse, buy, get their bouquet and review it.

Only the staff accounts and the shop clock are set up directly (no API creates the first admin); everything
else goes through the API, Stripe's webhooks (signed, against the local Stripe double) and the SMTP sink.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.catalog_helpers import make_category, make_product
from tests.checkout_helpers import API, DELIVERY_DAY, checkout, checkout_body, delivery_body, open_shop
from tests.services import body_text
from tests.stripe_fixtures import send_webhook
from tests.support import assert_problem, bearer, register


@pytest.fixture
def settings(make_settings, stripe_settings, request):
    """Stripe is configured unless a test is marked ``without_stripe``."""
    return make_settings(**({} if request.node.get_closest_marker("without_stripe") else stripe_settings))


async def sign_up(client: httpx.AsyncClient, email: str, first_name: str) -> dict[str, str]:
    body = await register(client, email, first_name=first_name, last_name="Lane")
    return bearer(body["tokens"]["access_token"])


async def stocked_product(client: httpx.AsyncClient, staff: dict[str, str], category_id: str, name: str,
                          units: int, **fields: Any) -> dict[str, Any]:
    """An active bouquet created by staff with no stock, then restocked through the stock endpoint."""
    sizes = [{"code": "standard", "name": "Standard", "price": fields.pop("price", 5500), "stock": 0}]
    product = await make_product(client, staff, category_id, name, sizes=sizes, **fields)
    r = await client.post(f"{API}/admin/products/{product['id']}/stock", headers=staff,
                          json={"size": "standard", "delta": units, "reason": "restock"})
    assert r.status_code == 201 and r.json()["after"] == units, r.text
    return product


async def available(client: httpx.AsyncClient, slug: str) -> int:
    r = await client.get(f"{API}/products/{slug}")
    assert r.status_code == 200, r.text
    return next(s["available"] for s in r.json()["sizes"] if s["code"] == "standard")


async def staff_moves(client: httpx.AsyncClient, staff: dict[str, str], order_id: str, *statuses: str) -> dict:
    body: dict = {}
    for status in statuses:
        r = await client.post(f"{API}/admin/orders/{order_id}/status", headers=staff,
                              json={"status": status, "note": f"{status} by the shop"})
        assert r.status_code == 200, r.text
        body = r.json()
    return body


async def post_review(client: httpx.AsyncClient, headers: dict[str, str], product_id: str,
                      rating: int) -> dict[str, Any]:
    r = await client.post(f"{API}/products/{product_id}/reviews", headers=headers,
                          json={"rating": rating, "title": "Lovely", "body": "Fresh and beautifully arranged."})
    assert r.status_code == 201, r.text
    return r.json()


async def test_customer_journey(app, client, admin, staff, stripe_double, mailbox):
    admin_h, staff_h = admin[1], staff[1]
    await open_shop(app, client, admin_h, fee=999)

    # Staff stock the shop: the bouquet, plus two that the shopper's filters must leave out.
    category = await make_category(client, staff_h, "Anniversary Flowers")
    product = await stocked_product(client, staff_h, category["id"], "Velvet Anniversary Roses", 4,
                                    occasions=["anniversary"], flower_types=["roses"], colors=["red"])
    await stocked_product(client, staff_h, category["id"], "Birthday Sunflowers", 4, occasions=["birthday"])
    await stocked_product(client, staff_h, category["id"], "Grand Anniversary Orchids", 4, price=15000,
                          occasions=["anniversary"], flower_types=["orchids"])
    slug, product_id = product["slug"], product["id"]
    r = await client.post(f"{API}/admin/promo-codes", headers=admin_h,
                          json={"code": "LOVE10", "kind": "percentage", "percent": 10})
    assert r.status_code == 201, r.text

    # The customer signs up and browses: category + occasion + price range, facets, suggestions, detail.
    nora = await sign_up(client, "nora@example.com", "Nora")
    filters = {"category": category["slug"], "occasion": "anniversary", "min_price": 4000, "max_price": 8000}
    r = await client.get(f"{API}/products", params={**filters, "sort": "price_asc"})
    assert [p["slug"] for p in r.json()["items"]] == [slug]
    facets = (await client.get(f"{API}/products/facets", params=filters)).json()
    assert facets["total"] == 1
    assert [(c["slug"], c["count"]) for c in facets["categories"]] == [(category["slug"], 1)]
    assert {(f["value"], f["count"]) for f in facets["flower_types"] if f["count"]} == {("roses", 1)}
    r = await client.get(f"{API}/search/suggest", params={"q": "velv"})
    assert {"kind": "product", "label": product["name"], "value": slug} in [
        {k: s[k] for k in ("kind", "label", "value")} for s in r.json()["items"]]
    detail = (await client.get(f"{API}/products/{slug}")).json()
    assert detail["id"] == product_id and detail["breadcrumbs"][-1]["id"] == category["id"]
    assert await available(client, slug) == 4

    # Favorite → cart (2 units) → promo code → delivery options.
    assert (await client.put(f"{API}/users/me/favorites/{product_id}", headers=nora)).status_code == 204
    favorites = (await client.get(f"{API}/users/me/favorites", headers=nora)).json()
    assert [(f["product_id"], f["available"]) for f in favorites["items"]] == [(product_id, True)]
    r = await client.post(f"{API}/users/me/favorites/{product_id}/move-to-cart", headers=nora,
                          json={"size": "standard", "quantity": 2, "gift_message": "Happy anniversary"})
    assert r.status_code == 200, r.text
    assert [(ln["product_id"], ln["quantity"]) for ln in r.json()["lines"]] == [(product_id, 2)]
    r = await client.post(f"{API}/cart/promo", headers=nora, json={"code": "love10"})
    assert (r.json()["subtotal"], r.json()["discount"], r.json()["promo_code"]) == (11000, 1100, "LOVE10")
    options = (await client.get(f"{API}/delivery/options",
                                params={"zip": "10012", "date": DELIVERY_DAY.isoformat()})).json()
    assert options["available"] and options["fee"] == 999
    afternoon = next(s for s in options["dates"][0]["slots"] if s["code"] == "afternoon")
    assert afternoon["available"] and afternoon["remaining"] > 0
    quote = (await client.get(f"{API}/cart", headers=nora, params={"zip": "10012"})).json()
    assert quote["delivery_fee"] == 999 and quote["can_checkout"]

    # Checkout with a card; a retry with the same key is the same order.
    body = checkout_body(delivery=delivery_body(slot=afternoon["code"]))
    r = await checkout(client, nora, body, key="nora-checkout-1")
    assert r.status_code == 201, r.text
    order, payment = r.json()["order"], r.json()["payment"]
    assert order["status"] == "pending_payment" and order["promo_code"] == "LOVE10"
    assert order["amounts"]["total"] == quote["total"] == payment["amount"] and payment["client_secret"]
    replay = await checkout(client, nora, body, key="nora-checkout-1")
    assert replay.json()["order"]["id"] == order["id"]
    assert replay.json()["payment"]["payment_intent_id"] == payment["payment_intent_id"]

    # Stripe settles it: paid, cart empty, confirmation email with the summary, stock down.
    r = await send_webhook(client, "payment_intent.succeeded", stripe_double.succeed(payment["payment_intent_id"]))
    assert r.status_code == 200, r.text
    r = await client.get(f"{API}/orders/{order['id']}", headers=nora)
    assert (r.json()["status"], r.json()["payment_status"], r.json()["amount_paid"]) == (
        "paid", "paid", order["amounts"]["total"])
    assert (await client.get(f"{API}/cart", headers=nora)).json()["lines"] == []
    text = body_text((await mailbox.wait_for("nora@example.com", f"{order['number']} is confirmed"))[0])
    for part in ("2 × Velvet Anniversary Roses", "Happy anniversary", "Discount (LOVE10): -$11.00",
                 f"Total: ${order['amounts']['total'] // 100}.", "1 Bleecker St"):
        assert part in text, text
    assert await available(client, slug) == 2

    # Staff prepare and deliver it; the customer is told at each step and sees the history.
    for status, subject in (("preparing", "preparing"), ("out_for_delivery", "out for delivery"),
                            ("delivered", "was delivered")):
        await staff_moves(client, staff_h, order["id"], status)
        await mailbox.wait_for("nora@example.com", subject)
    r = await client.get(f"{API}/orders/{order['id']}/tracking", headers=nora)
    assert [s["status"] for s in r.json()["history"]] == [
        "pending_payment", "paid", "preparing", "out_for_delivery", "delivered"]
    assert r.json()["history"][-1]["note"] == "delivered by the shop"
    r = await client.get(f"{API}/orders", headers=nora)
    assert [(o["id"], o["status"]) for o in r.json()["items"]] == [(order["id"], "delivered")]

    # Her review is a verified purchase; another customer's is not.
    review = await post_review(client, nora, product_id, 5)
    assert review["verified_purchase"] is True and review["author_name"].startswith("Nora")
    other = await sign_up(client, "omar@example.com", "Omar")
    assert (await post_review(client, other, product_id, 4))["verified_purchase"] is False
    r = await client.get(f"{API}/products/{product_id}/reviews")
    assert {(i["author_name"][:4], i["verified_purchase"]) for i in r.json()["items"]} == {
        ("Nora", True), ("Omar", False)}
    rating = (await client.get(f"{API}/products/{slug}")).json()["rating"]
    assert rating == {"average": 4.5, "count": 2}


async def test_guest_journey(app, client, admin, staff, stripe_double, mailbox):
    await open_shop(app, client, admin[1])
    category = await make_category(client, staff[1], "Cheerful")
    product = await stocked_product(client, staff[1], category["id"], "Sunny Gerberas", 3)

    # An anonymous cart: the token comes back on the first add and identifies the cart afterwards.
    r = await client.post(f"{API}/cart/items", json={"product_id": product["id"], "size": "standard"})
    assert r.status_code == 200, r.text
    cart = {"X-Cart-Token": r.headers["X-Cart-Token"]}
    r = await client.post(f"{API}/cart/items", headers=cart, json={"product_id": product["id"], "size": "standard"})
    assert [ln["quantity"] for ln in r.json()["lines"]] == [2]

    r = await checkout(client, cart, checkout_body(guest=True))
    assert r.status_code == 201, r.text
    order, token = r.json()["order"], r.json()["access_token"]
    assert order["contact"] == {"user_id": None, "email": "guest@example.com", "phone": "+12125550100",
                                "name": "Gia Guest"}
    r = await send_webhook(client, "payment_intent.succeeded",
                           stripe_double.succeed(r.json()["payment"]["payment_intent_id"]))
    assert r.status_code == 200, r.text
    text = body_text((await mailbox.wait_for("guest@example.com", "is confirmed"))[0])
    assert f"token={token}" in text and "2 × Sunny Gerberas" in text
    assert await available(client, product["slug"]) == 1

    track = {"X-Order-Token": token}
    r = await client.get(f"{API}/orders/{order['id']}/tracking", headers=track)
    assert (r.json()["status"], r.json()["window_start"][-1]) == ("paid", "Z")
    await staff_moves(client, staff[1], order["id"], "preparing", "out_for_delivery", "delivered")
    r = await client.get(f"{API}/orders/{order['id']}/tracking", headers=track)
    assert r.json()["status"] == "delivered"
    assert [s["status"] for s in r.json()["history"]][-1] == "delivered"
    await mailbox.wait_for("guest@example.com", "was delivered")

    # Another guest's token opens their own order only; no token at all is a 401.
    r = await client.post(f"{API}/cart/items", json={"product_id": product["id"], "size": "standard"})
    other_cart = {"X-Cart-Token": r.headers["X-Cart-Token"]}
    r = await checkout(client, other_cart, checkout_body("pay_on_pickup", guest=True, method="pickup"))
    assert r.status_code == 201, r.text
    other = {"X-Order-Token": r.json()["access_token"]}
    assert (await client.get(f"{API}/orders/{r.json()['order']['id']}", headers=other)).status_code == 200
    assert_problem(await client.get(f"{API}/orders/{order['id']}", headers=other), 404)
    assert_problem(await client.get(f"{API}/orders/{order['id']}/tracking", headers=other), 404)
    assert_problem(await client.get(f"{API}/orders/{order['id']}"), 401)


@pytest.mark.without_stripe
async def test_pickup_journey_paid_at_the_counter(app, client, admin, staff, mailbox):
    await open_shop(app, client, admin[1])
    category = await make_category(client, staff[1], "Garden")
    product = await stocked_product(client, staff[1], category["id"], "Peony Cloud", 2, price=6400)
    pia = await sign_up(client, "pia@example.com", "Pia")
    r = await client.post(f"{API}/cart/items", headers=pia,
                          json={"product_id": product["id"], "size": "standard", "add_ons": ["glass-vase"]})
    assert r.status_code == 200, r.text

    # Without Stripe keys a card is refused outright; store pickup paid at the counter works.
    assert_problem(await checkout(client, pia, checkout_body()), 503)
    options = (await client.get(f"{API}/delivery/options",
                                params={"method": "pickup", "date": DELIVERY_DAY.isoformat()})).json()
    assert options["available"] and options["fee"] == 0
    r = await checkout(client, pia, checkout_body("pay_on_pickup", method="pickup"))
    assert r.status_code == 201, r.text
    order, payment = r.json()["order"], r.json()["payment"]
    assert (order["status"], payment["status"], payment["payment_intent_id"]) == ("confirmed", "unpaid", None)
    amounts = order["amounts"]
    total = amounts["total"]
    assert (amounts["subtotal"], amounts["delivery_fee"], total) == (6400 + 1500, 0, 6400 + 1500 + amounts["tax"])
    text = body_text((await mailbox.wait_for("pia@example.com", "is confirmed"))[0])
    assert "Peony Cloud (Standard, Glass vase)" in text and "Payment: at the counter" in text
    assert await available(client, product["slug"]) == 1

    await staff_moves(client, staff[1], order["id"], "preparing", "ready_for_pickup")
    text = body_text((await mailbox.wait_for("pia@example.com", "ready for pickup"))[0])
    assert f"Please pay ${total // 100}.{total % 100:02d} at the counter" in text
    url = f"{API}/admin/orders/{order['id']}"
    assert_problem(await client.post(f"{url}/status", headers=staff[1], json={"status": "picked_up"}), 409,
                   "payment-not-settled")
    r = await client.post(f"{url}/settle", headers=staff[1], json={"note": "Paid by card at the till"})
    assert r.status_code == 200 and r.json()["payment_status"] == "paid", r.text
    assert (await staff_moves(client, staff[1], order["id"], "picked_up"))["status"] == "picked_up"
    await mailbox.wait_for("pia@example.com", "was picked up")

    r = await client.get(f"{API}/orders/{order['id']}/tracking", headers=pia)
    assert [s["status"] for s in r.json()["history"]] == ["confirmed", "preparing", "ready_for_pickup", "picked_up"]
    r = await client.get(f"{API}/orders/{order['id']}", headers=pia)
    assert (r.json()["payment_status"], r.json()["amount_paid"]) == ("paid", total)
    assert (await post_review(client, pia, product["id"], 5))["verified_purchase"] is True
