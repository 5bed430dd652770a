"""Cart rules test_cart.py leaves out: what a guest cart's merge at sign-in skips (and that it never fails a
sign-in), lines whose size or add-on was withdrawn, merges over the line limit, an empty cart and a code,
and a customer's first two concurrent adds (made deterministic with tests/interleave.py)."""

from __future__ import annotations

from datetime import timedelta

from app.core.clock import utcnow
from app.models.cart import Cart
from app.models.catalog import Product
from app.services.cart import CartService
from tests.conftest import PASSWORD
from tests.factories import make_product
from tests.interleave import interleave
from tests.support import rewrite
from tests.test_cart import CART, ITEMS, add, guest
from tests.test_promo import promo_creator

LOGIN = "/api/v1/auth/login"


async def login_with(client, token: str, email: str):
    r = await client.post(LOGIN, headers=guest(token), json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r


async def test_merge_moves_only_what_can_still_be_bought_and_brings_the_guests_code(client, user_factory, admin):
    user, headers = await user_factory()
    archived = await make_product(name="Archived Bouquet")
    resized = await make_product(name="Resized Bouquet")
    sold_out = await make_product(name="Sold Out Bouquet")
    kept = await make_product(name="Kept Bouquet")
    token = (await add(client, archived)).headers["X-Cart-Token"]
    await add(client, resized, headers=guest(token), size="deluxe")
    await add(client, sold_out, headers=guest(token), quantity=2)
    await add(client, kept, headers=guest(token), quantity=2)
    await promo_creator(client, admin)("GUEST10")
    assert (await client.post(f"{CART}/promo", headers=guest(token), json={"code": "guest10"})).status_code == 200
    await Product.find_one(Product.id == archived.id).update({"$set": {"status": "archived"}})
    await rewrite(Product, resized.id, sizes=[s.model_dump() for s in resized.sizes if s.code == "standard"])
    await Product.find_one(Product.id == sold_out.id).update({"$set": {"stock.standard": 0}})
    await login_with(client, token, user.email)
    cart = (await client.get(CART, headers=headers)).json()
    assert [(x["product_name"], x["quantity"]) for x in cart["lines"]] == [("Kept Bouquet", 2)]
    assert cart["promo_code"] == "GUEST10" and cart["discount"] == 900


async def test_merge_keeps_the_customers_own_code_and_respects_the_line_limit(client, user_factory, admin):
    user, headers = await user_factory()
    product = await make_product(stock={"standard": 100, "deluxe": 100})
    assert (await add(client, product, headers=headers, quantity=19)).status_code == 200
    create = promo_creator(client, admin)
    await create("MINE5", percent=5)
    await create("GUEST10")
    await client.post(f"{CART}/promo", headers=headers, json={"code": "MINE5"})
    token = (await add(client, product, quantity=5)).headers["X-Cart-Token"]
    await add(client, product, headers=guest(token), size="deluxe", quantity=2)
    await client.post(f"{CART}/promo", headers=guest(token), json={"code": "GUEST10"})
    await login_with(client, token, user.email)
    cart = (await client.get(CART, headers=headers)).json()
    assert [(x["size"], x["quantity"]) for x in cart["lines"]] == [("standard", 20), ("deluxe", 2)]
    assert cart["promo_code"] == "MINE5"


async def test_merge_of_an_expired_or_emptied_guest_cart_moves_nothing(client, user_factory):
    user, headers = await user_factory()
    product = await make_product()
    expired = (await add(client, product, quantity=2)).headers["X-Cart-Token"]
    cart_id = (await client.get(CART, headers=guest(expired))).json()["id"]
    await rewrite(Cart, cart_id, expires_at=utcnow() - timedelta(minutes=1))
    await login_with(client, expired, user.email)
    emptied = (await add(client, product)).headers["X-Cart-Token"]
    line = (await client.get(CART, headers=guest(emptied))).json()["lines"][0]
    await client.delete(f"{ITEMS}/{line['id']}", headers=guest(emptied))
    await login_with(client, emptied, user.email)
    assert (await client.get(CART, headers=headers)).json()["lines"] == []
    assert await Cart.find({"user_id": None}).count() == 0  # both guest carts were claimed


async def test_a_failed_merge_never_fails_the_sign_in(client, user_factory, monkeypatch):
    user, headers = await user_factory()
    product = await make_product()
    token = (await add(client, product)).headers["X-Cart-Token"]

    async def customer_cart_vanishes():  # e.g. the account's cart was deleted by a concurrent request
        await Cart.get_pymongo_collection().delete_many({"user_id": user.id})

    interleave(monkeypatch, CartService, "_customer_cart", customer_cart_vanishes)
    r = await login_with(client, token, user.email)
    assert r.json()["user"]["id"] == user.id
    assert (await client.get(CART, headers=headers)).json()["lines"] == []


async def test_withdrawn_size_or_add_on_flags_the_line(client, customer):
    _, headers = customer
    product = await make_product()
    await add(client, product, headers=headers, size="deluxe")
    await add(client, product, headers=headers, add_ons=["chocolates"])
    await add(client, product, headers=headers)
    await rewrite(Product, product.id, sizes=[s.model_dump() for s in product.sizes if s.code == "standard"],
                  add_ons=[a.model_dump() for a in product.add_ons if a.code != "chocolates"])
    cart = (await client.get(CART, headers=headers)).json()
    reasons = [(x["size"], x["flags"]["unavailable_reason"], x["unit_price"]) for x in cart["lines"]]
    assert reasons == [("deluxe", "size-removed", 6500), ("standard", "add-on-removed", 4500),
                       ("standard", None, 4500)]
    assert cart["subtotal"] == 4500 and cart["can_checkout"] is False
    assert cart["lines"][0]["flags"]["available"] is None


async def test_a_change_that_merges_two_lines_over_the_line_limit_is_refused(client, customer):
    _, headers = customer
    product = await make_product(stock={"standard": 100, "deluxe": 100})
    await add(client, product, headers=headers, quantity=15)
    lines = (await add(client, product, headers=headers, quantity=10, gift_message="Hi")).json()["lines"]
    r = await client.patch(f"{ITEMS}/{lines[1]['id']}", headers=headers, json={"gift_message": None})
    assert r.status_code == 409 and r.json()["type"].endswith("/line-quantity-limit")
    assert r.json()["max_quantity"] == 20
    cart = (await client.get(CART, headers=headers)).json()
    assert [(x["quantity"], x["gift_message"]) for x in cart["lines"]] == [(15, None), (10, "Hi")]


async def test_empty_without_a_cart_and_a_code_on_an_empty_cart(client, customer, admin):
    _, headers = customer
    assert (await client.delete(CART, headers=headers)).status_code == 204
    assert await Cart.find_all().count() == 0  # emptying nothing creates nothing
    product = await make_product()
    line = (await add(client, product, headers=headers)).json()["lines"][0]
    await client.delete(f"{ITEMS}/{line['id']}", headers=headers)
    await promo_creator(client, admin)("EMPTY10")
    r = await client.post(f"{CART}/promo", headers=headers, json={"code": "EMPTY10"})
    assert r.status_code == 422 and r.json()["type"].endswith("/cart-empty")
    assert (await client.get(CART, headers=headers)).json()["promo_code"] is None


async def test_a_customers_first_two_adds_at_once_share_one_cart(client, customer, monkeypatch):
    """The second request creates the cart between the first one's look-up and its insert."""
    _, headers = customer
    roses, tulips = await make_product(name="Roses"), await make_product(name="Tulips")
    rival = interleave(monkeypatch, CartService, "_load_raw", lambda: add(client, tulips, headers=headers))
    r = await add(client, roses, headers=headers)
    assert [x.status_code for x in rival] == [200]
    assert r.status_code == 200
    assert sorted(x["product_name"] for x in r.json()["lines"]) == ["Roses", "Tulips"]
    assert await Cart.find_all().count() == 1
