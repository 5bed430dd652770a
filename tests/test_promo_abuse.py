"""Business-flow abuse of promo codes: refused attempts are rate limited per IP and per cart/account (429 with
Retry-After, in memory and in Redis), and a free-delivery code cannot spend a use on an order with no
delivery fee (store pickup): checkout refuses it with ``promo-no-delivery-fee``."""

from __future__ import annotations

import pytest

from app.models.catalog import Product
from app.models.order import Order
from app.models.promo import PromoCode
from tests.checkout_helpers import add_to_cart, checkout, checkout_body, open_shop
from tests.conftest import create_user, login_headers
from tests.factories import make_product
from tests.support import API, assert_problem, new_client, random_ip


@pytest.fixture(params=["memory", "redis"])
def storage(request) -> dict:
    if request.param == "memory":
        return {"redis_url": None}
    return {"redis_url": request.getfixturevalue("redis_url")}


def assert_429(r) -> None:
    assert_problem(r, 429, "rate-limited")
    assert 1 <= int(r.headers["retry-after"]) <= 3600


async def _guest_cart(c, product) -> dict[str, str]:
    r = await c.post(f"{API}/cart/items", json={"product_id": product.id, "size": "standard"})
    assert r.status_code == 200, r.text
    return {"X-Cart-Token": r.headers["X-Cart-Token"]}


async def _try(c, headers, code: str):
    return await c.post(f"{API}/cart/promo", headers=headers, json={"code": code})


async def test_wrong_codes_are_limited_per_cart(make_settings, app_factory, storage):
    settings = make_settings(rate_limit_promo_cart="3/hour", rate_limit_promo_ip="100/hour", **storage)
    async with app_factory(settings) as application, new_client(application, random_ip()) as c:
        await PromoCode(code="REAL10", kind="percentage", percent_bps=1000).insert()
        product = await make_product()
        cart = await _guest_cart(c, product)
        for guess in ("AAAA1", "AAAA2", "AAAA3"):
            assert_problem(await _try(c, cart, guess), 422, "promo-not-found")
        assert_429(await _try(c, cart, "AAAA4"))
        assert_429(await _try(c, cart, "REAL10"))  # once the guesses are spent, even a right code waits
        # Another cart from the same address still has its own attempts.
        other = await _guest_cart(c, product)
        r = await _try(c, other, "REAL10")
        assert r.status_code == 200 and r.json()["promo_code"] == "REAL10", r.text


async def test_wrong_codes_are_limited_per_ip_across_carts(make_settings, app_factory, storage):
    settings = make_settings(rate_limit_promo_cart="100/hour", rate_limit_promo_ip="4/hour", **storage)
    async with app_factory(settings) as application:
        product = await make_product()
        ip = random_ip()
        async with new_client(application, ip) as c:
            for _ in range(2):
                cart = await _guest_cart(c, product)
                for i in range(2):
                    assert_problem(await _try(c, cart, f"GUESS{i}"), 422, "promo-not-found")
            assert_429(await _try(c, await _guest_cart(c, product), "GUESS9"))
        async with new_client(application, random_ip()) as other_ip:
            assert_problem(await _try(other_ip, await _guest_cart(other_ip, product), "GUESS9"), 422)


async def test_wrong_codes_are_limited_per_account(make_settings, app_factory):
    settings = make_settings(rate_limit_promo_cart="2/hour", rate_limit_promo_ip="100/hour")
    async with app_factory(settings) as application:
        user = await create_user()
        product = await make_product()
        async with new_client(application, random_ip()) as c:
            headers = await login_headers(c, user.email)
            r = await c.post(f"{API}/cart/items", headers=headers, json={"product_id": product.id, "size": "standard"})
            assert r.status_code == 200, r.text
            for guess in ("NOPE1", "NOPE2"):
                assert_problem(await _try(c, headers, guess), 422, "promo-not-found")
        async with new_client(application, random_ip()) as c:  # another address: the account's count holds
            assert_429(await _try(c, await login_headers(c, user.email), "NOPE3"))


async def test_successful_attempts_are_not_counted(make_settings, app_factory):
    settings = make_settings(rate_limit_promo_cart="2/hour", rate_limit_promo_ip="2/hour")
    async with app_factory(settings) as application, new_client(application, random_ip()) as c:
        await PromoCode(code="REAL10", kind="percentage", percent_bps=1000).insert()
        cart = await _guest_cart(c, await make_product())
        for _ in range(5):
            assert (await _try(c, cart, "real10")).status_code == 200


async def test_a_free_delivery_code_is_refused_on_a_pickup_order_and_spends_no_use(app, client, admin):
    await open_shop(app, client, admin[1])
    await PromoCode(code="FREESHIP", kind="free_delivery", usage_limit=1).insert()
    product = await make_product()
    r = await add_to_cart(client, product)
    cart = {"X-Cart-Token": r.headers["X-Cart-Token"]}
    r = await client.post(f"{API}/cart/promo", headers=cart, json={"code": "FREESHIP"})
    assert r.status_code == 200 and r.json()["promo_code"] == "FREESHIP", r.text

    r = await checkout(client, cart, checkout_body("pay_on_pickup", guest=True, method="pickup"))
    body = assert_problem(r, 409, "promo-no-delivery-fee")
    assert "FREESHIP" in body["detail"]
    assert (await PromoCode.find_one(PromoCode.code == "FREESHIP")).uses == 0
    assert await Order.count() == 0
    assert (await Product.get(product.id)).stock["standard"] == 5  # nothing held

    # Without the code the pickup order goes through; the code keeps its only use for a delivery.
    assert (await client.delete(f"{API}/cart/promo", headers=cart)).status_code == 200
    r = await checkout(client, cart, checkout_body("pay_on_pickup", guest=True, method="pickup"))
    assert r.status_code == 201 and r.json()["order"]["promo_code"] is None, r.text
    assert (await PromoCode.find_one(PromoCode.code == "FREESHIP")).uses == 0
