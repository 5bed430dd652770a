"""The failure branches of placing an order: a short later line, a second order for one cart version, a
crashed request's Idempotency-Key, a promo or a line that became unusable after it was put in the cart,
and two promo takes for one order. Over HTTP where a request can reach the branch deterministically,
else through the order and promo services."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from app.core.errors import AppError, Conflict
from app.core.ids import new_id
from app.models.catalog import Product
from app.models.delivery import SlotUsage
from app.models.inventory import StockMovement
from app.models.order import IdempotencyRecord, Order
from app.models.promo import PromoCode, PromoRedemption
from app.models.user import User
from app.schemas.checkout import CheckoutIn
from app.services.checkout import idempotency_scope, request_fingerprint
from app.services.promo import PromoService
from tests.checkout_helpers import API, add_to_cart, checkout, checkout_body, open_shop
from tests.factories import line_for, make_product
from tests.stripe_fixtures import place_order
from tests.support import assert_problem, rewrite


async def test_a_short_later_line_gives_back_what_the_earlier_lines_took(app, stripe_double):
    first, second, short = (await make_product(stock={"standard": 5}), await make_product(stock={"standard": 4}),
                            await make_product(stock={"standard": 1}))
    with pytest.raises(Conflict) as refused:
        await place_order(app, [line_for(first, quantity=2), line_for(second, quantity=3), line_for(short, quantity=2)])
    assert (refused.value.code, refused.value.extra["line"], refused.value.extra["available"]) == ("out-of-stock", 2, 1)
    assert [(await Product.get(p.id)).stock["standard"] for p in (first, second, short)] == [5, 4, 1]
    moves = await StockMovement.find({"product_id": first.id}).sort("_id").to_list()
    assert [(m.delta, m.reason) for m in moves] == [(-2, "sale"), (2, "release")]
    assert await Order.find_all().count() == 0 and stripe_double.requests == []


async def test_a_second_order_for_one_cart_version_is_refused_and_holds_nothing(app, stripe_double):
    product = await make_product(stock={"standard": 5})
    await place_order(app, [line_for(product, quantity=2)], cart_id="crt_same", cart_version=3)
    with pytest.raises(Conflict) as refused:
        await place_order(app, [line_for(product)], cart_id="crt_same", cart_version=3)
    assert refused.value.code == "cart-already-ordered"
    assert (await Product.get(product.id)).stock["standard"] == 3  # only the first order's units are held
    assert await Order.find_all().count() == 1 and len(stripe_double.intents) == 1


async def _stored_key(app, user: User, key: str, body: dict, *, locked_for: timedelta) -> None:
    """An Idempotency-Key record left ``in_progress`` by a request that is still running (or that crashed,
    when ``locked_for`` is negative), as the checkout service stores it (by the app's clock)."""
    await IdempotencyRecord(scope_key=idempotency_scope(user, None, key),
                            request_hash=request_fingerprint(CheckoutIn.model_validate(body)),
                            locked_until=app.state.clock() + locked_for).insert()


async def test_a_running_checkouts_key_is_a_409_and_a_crashed_ones_is_taken_over(app, client, admin, customer,
                                                                                 stripe_double):
    await open_shop(app, client, admin[1])
    user, h = customer
    product = await make_product(stock={"standard": 2})
    await add_to_cart(client, product, headers=h)
    body = checkout_body()
    await _stored_key(app, user, "key-running-1", body, locked_for=timedelta(minutes=1))
    r = await checkout(client, h, body, key="key-running-1")
    assert_problem(r, 409, "checkout-in-progress")
    assert r.headers["Retry-After"] == "2"
    assert await Order.find_all().count() == 0 and (await Product.get(product.id)).stock["standard"] == 2

    record = await IdempotencyRecord.find_one({})
    died = app.state.clock() - timedelta(seconds=1)
    await rewrite(IdempotencyRecord, record.id, locked_until=died)  # its process died
    r = await checkout(client, h, body, key="key-running-1")
    assert r.status_code == 201, r.text
    assert await IdempotencyRecord.find_all().count() == 1
    again = await checkout(client, h, body, key="key-running-1")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["order"]["id"] == r.json()["order"]["id"] and len(stripe_double.intents) == 1


async def _nothing_held(product: Product, units: int) -> None:
    assert (await Product.get(product.id)).stock["standard"] == units
    assert await Order.find_all().count() == 0
    assert sum(u.taken for u in await SlotUsage.find_all().to_list()) == 0


async def test_a_promo_withdrawn_after_it_was_applied_is_refused_at_checkout(app, client, admin, customer,
                                                                             stripe_double):
    await open_shop(app, client, admin[1])
    r = await client.post(f"{API}/admin/promo-codes", headers=admin[1], json={"code": "SPRING", "kind": "fixed",
                                                                               "amount": 500})
    promo_id = r.json()["id"]
    _, h = customer
    product = await make_product()
    await add_to_cart(client, product, headers=h)
    assert (await client.post(f"{API}/cart/promo", headers=h, json={"code": "SPRING"})).status_code == 200
    r = await client.patch(f"{API}/admin/promo-codes/{promo_id}", headers=admin[1], json={"active": False})
    assert r.status_code == 200, r.text
    body = assert_problem(await checkout(client, h, checkout_body()), 409, "promo-not-found")
    assert "promo code on your cart" in body["detail"]
    await _nothing_held(product, 5)
    assert (await PromoCode.get(promo_id)).uses == 0 and stripe_double.requests == []


@pytest.mark.parametrize("change", ["archived", "sold"])
async def test_a_line_that_became_unavailable_or_short_is_refused_at_checkout(app, client, admin, customer,
                                                                              stripe_double, change):
    await open_shop(app, client, admin[1])
    _, h = customer
    other, product = await make_product(stock={"standard": 5}), await make_product(stock={"standard": 3})
    await add_to_cart(client, other, headers=h)
    line = (await add_to_cart(client, product, headers=h, quantity=2)).json()["lines"][1]
    if change == "archived":
        r = await client.patch(f"{API}/admin/products/{product.id}", headers=admin[1], json={"status": "archived"})
        assert r.status_code == 200, r.text
    else:
        r = await client.post(f"{API}/admin/products/{product.id}/stock", headers=admin[1],
                              json={"size": "standard", "delta": -2, "reason": "damaged"})
        assert r.status_code == 201, r.text
    body = assert_problem(await checkout(client, h, checkout_body()), 409,
                          "line-unavailable" if change == "archived" else "out-of-stock")
    assert (body["line"], body["item_id"]) == (1, line["id"])
    if change == "sold":
        assert body["available"] == 1
    await _nothing_held(other, 5)
    assert stripe_double.requests == []


async def _uses(code: str) -> int:
    return (await PromoCode.find_one(PromoCode.code == code)).uses


async def test_two_promo_takes_for_one_order_spend_one_use(app):
    promos = PromoService(app.state.settings)
    await PromoCode(code="ONCE", kind="fixed", amount=300, usage_limit=1).insert()
    await PromoCode(code="MANY", kind="fixed", amount=300).insert()
    first = new_id("ord")
    await promos.take_use("once", order_id=first, user_id=None, email="a@example.com")
    await promos.take_use("ONCE", order_id=first, user_id=None, email="a@example.com")  # a retry: no second use
    assert await _uses("ONCE") == 1
    # Concurrent takes for one order: one records the order's redemption, the others undo what they counted.
    racing = new_id("ord")
    results = await asyncio.gather(*(promos.take_use("MANY", order_id=racing, user_id=None, email="c@example.com")
                                     for _ in range(6)), return_exceptions=True)
    assert results == [None] * 6
    assert await _uses("MANY") == 1 and await PromoRedemption.find_all().count() == 2
    with pytest.raises(AppError) as other:  # an order holds one code's use at most
        await promos.take_use("MANY", order_id=first, user_id=None, email="a@example.com")
    assert other.value.code == "promo-order-conflict" and await _uses("MANY") == 1
    with pytest.raises(AppError) as used_up:
        await promos.take_use("ONCE", order_id=new_id("ord"), user_id=None, email="b@example.com")
    assert used_up.value.code == "promo-used-up"
    await asyncio.gather(*(promos.give_back(order_id) for order_id in (first, first, first, racing, racing)))
    assert (await _uses("ONCE"), await _uses("MANY")) == (0, 0)
