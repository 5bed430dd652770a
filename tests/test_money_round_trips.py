"""How many database round trips the money path costs: add-to-cart, checkout and the payment webhook, over HTTP.

Counted with a PyMongo command listener on the test's own database (tests/round_trips.py); the counts are
what bench/checkout.py reports. A change that adds a round trip to these requests fails here: make it
deliberately, and update the numbers with the reason. The shop is warmed up first (the delivery
configuration and the day's sales rollup exist), as it is after its first order.

Customer requests include the access-token check: the account and its session (2 reads).
"""

from __future__ import annotations

from collections import Counter

import pytest

from app.models.order import Order
from tests.checkout_helpers import API, add_to_cart, checkout, checkout_body, open_shop
from tests.factories import make_product
from tests.round_trips import Recording, recording
from tests.stripe_fixtures import send_webhook


@pytest.fixture
def settings(make_settings, stripe_settings):
    # Shopper events are written by a background flush, off the request path, whenever its batch timer fires:
    # with recording on, that write would land in whichever request's count is open at the time.
    return make_settings(workers_enabled=False, analytics_enabled=False, **stripe_settings)


def summary(rec: Recording) -> str:
    return ", ".join(f"{n}× {c}" for c, n in Counter(str(c) for c in rec.commands).items())


async def test_round_trips_of_an_order(app, client, admin, customer, stripe_double, settings):
    await open_shop(app, client, admin[1])
    _, h = customer
    rose, tulip = await make_product(name="Rose"), await make_product(name="Tulip")
    db = settings.mongodb_db

    async def pay(order_id: str):
        order = await Order.get(order_id)
        with recording(db) as rec:
            r = await send_webhook(client, "payment_intent.succeeded", stripe_double.succeed(order.payment_intent_id))
        assert r.status_code == 200 and r.json()["result"] == "processed", r.text
        return rec

    await add_to_cart(client, rose, headers=h)  # warm-up: the first order of the shop and of the day
    first = await checkout(client, h, checkout_body())
    await pay(first.json()["order"]["id"])

    with recording(db) as new_cart:  # the customer's cart was emptied when the order was paid
        await add_to_cart(client, rose, headers=h)
    with recording(db) as second_line:
        await add_to_cart(client, tulip, headers=h, quantity=2)
    with recording(db) as placed:
        r = await checkout(client, h, checkout_body())
    assert r.status_code == 201, r.text
    paid = await pay(r.json()["order"]["id"])
    with recording(db) as guest_cart:
        r = await client.post(f"{API}/cart/items", json={"product_id": rose.id, "size": "standard", "quantity": 1})
    assert r.status_code == 200 and r.headers["X-Cart-Token"]

    # users + refresh_sessions (the token), the cart, the products (one query), one write of the cart
    assert len(new_cart) == 5, summary(new_cart)
    assert len(second_line) == 5, summary(second_line)
    # a guest's first item: the product, then the new cart inserted with its line
    assert len(guest_cart) == 2, summary(guest_cart)
    # token (2), key (1), cart, already-ordered check, delivery config and zone, products (4), order number (1),
    # per line: stock take + movement (2 x 2), slot (1), order insert + payment intent id (2)
    assert len(placed) == 16, summary(placed)
    # event (2), order read and its paid write (2), the day's rollup and the order's rollup marker (2), units sold,
    # cart cleared, the customer's account and the receipt (4)
    assert len(paid) == 10, summary(paid)
