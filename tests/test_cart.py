"""Cart over HTTP: guest token flow, merge at sign-in, server-side pricing, stock, flags, line changes."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

from app.core.clock import utcnow
from app.models.cart import Cart
from app.models.catalog import Product, ProductStatus
from app.models.user import User
from tests.conftest import PASSWORD
from tests.factories import make_product

CART = "/api/v1/cart"
ITEMS = "/api/v1/cart/items"


async def add(client, product, *, headers=None, quantity=1, size="standard", **extra):
    body = {"product_id": product.id, "size": size, "quantity": quantity, **extra}
    return await client.post(ITEMS, json=body, headers=headers or {})


def guest(token: str) -> dict[str, str]:
    return {"X-Cart-Token": token}


async def test_guest_cart_token_flow(client, settings):
    empty = await client.get(CART)
    assert empty.status_code == 200 and empty.json()["id"] is None and empty.json()["lines"] == []
    product = await make_product()
    r = await add(client, product, quantity=2)
    assert r.status_code == 200, r.text
    token = r.headers["X-Cart-Token"]
    body = r.json()
    assert body["cart_token"] == token and len(token) >= 32
    assert body["subtotal"] == 9000 and body["total"] == 9000 and body["currency"] == "USD"
    assert body["delivery_fee"] is None and body["tax"] == 0 and body["item_count"] == 2
    # Only the token's SHA-256 is stored; the guest cart expires after GUEST_CART_DAYS.
    stored = await Cart.get(body["id"])
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest() and stored.user_id is None
    assert token not in str(stored.model_dump())
    expected = utcnow() + timedelta(days=settings.guest_cart_days)
    assert abs((stored.expires_at - expected).total_seconds()) < 60
    # The token finds the cart again; adding more does not issue a new token.
    r = await add(client, product, headers=guest(token))
    assert "X-Cart-Token" not in r.headers and r.json()["cart_token"] is None and r.json()["id"] == body["id"]
    assert r.json()["lines"][0]["quantity"] == 3
    assert (await client.get(CART, headers=guest(token))).json()["id"] == body["id"]
    # An unknown or malformed token is no cart.
    assert (await client.get(CART, headers=guest("x" * 43))).json()["id"] is None
    assert (await client.get(CART, headers=guest("not a token!"))).json()["id"] is None


async def test_expired_guest_cart_is_gone(client):
    product = await make_product()
    r = await add(client, product)
    token, cart_id = r.headers["X-Cart-Token"], r.json()["id"]
    await Cart.find_one(Cart.id == cart_id).update({"$set": {"expires_at": utcnow() - timedelta(minutes=1)}})
    assert (await client.get(CART, headers=guest(token))).json()["id"] is None
    r = await add(client, product, headers=guest(token))
    assert r.json()["id"] != cart_id and r.headers["X-Cart-Token"] != token


async def test_same_item_adds_up_other_options_make_new_lines(client, customer):
    _, headers = customer
    product = await make_product(stock={"standard": 20, "deluxe": 20})
    await add(client, product, headers=headers, size="deluxe", add_ons=["glass-vase", "chocolates"])
    r = await add(client, product, headers=headers, size="deluxe", add_ons=["chocolates", "glass-vase"], quantity=2)
    lines = r.json()["lines"]
    assert len(lines) == 1 and lines[0]["quantity"] == 3
    assert lines[0]["unit_price"] == 6500 + 1500 + 1200 and lines[0]["line_total"] == 3 * 9200
    assert [a["code"] for a in lines[0]["add_ons"]] == ["chocolates", "glass-vase"]
    assert lines[0]["size_name"] == "Deluxe" and lines[0]["product_name"] == product.name
    r = await add(client, product, headers=headers, size="deluxe", add_ons=["chocolates", "glass-vase"],
                  gift_message="Happy birthday, Mum!")
    r = await add(client, product, headers=headers)
    body = r.json()
    assert [(x["size"], x["quantity"], x["gift_message"]) for x in body["lines"]] == [
        ("deluxe", 3, None), ("deluxe", 1, "Happy birthday, Mum!"), ("standard", 1, None)]
    assert body["subtotal"] == 4 * 9200 + 4500 and body["total"] == body["subtotal"]


async def test_client_cannot_send_prices_or_operators(client, customer):
    _, headers = customer
    product = await make_product()
    for extra in ({"price": 1}, {"unit_price": 1}, {"line_total": 0}, {"quantity": 21}, {"quantity": 0},
                  {"add_ons": ["a", "b", "c", "d", "e", "f"]}, {"add_ons": ["chocolates", "chocolates"]},
                  {"gift_message": "x" * 251}, {"size": {"$ne": ""}}):
        r = await add(client, product, headers=headers, **extra)
        assert r.status_code == 422, extra
        assert r.headers["content-type"].startswith("application/problem+json")
    r = await client.post(ITEMS, headers=headers, json={"product_id": {"$ne": ""}, "size": "standard"})
    assert r.status_code == 422
    r = await add(client, product, headers=headers, quantity=2)
    assert r.json()["subtotal"] == 9000  # only the catalog sets prices
    r = await client.patch(f"{ITEMS}/{r.json()['lines'][0]['id']}", headers=headers, json={"unit_price": 1})
    assert r.status_code == 422


async def test_unknown_product_size_or_add_on(client, customer):
    _, headers = customer
    product = await make_product()
    draft = await make_product(status=ProductStatus.draft)
    assert (await add(client, draft, headers=headers)).status_code == 404
    r = await client.post(ITEMS, headers=headers, json={"product_id": "prd_01JD7Z0000000000000000000A",
                                                        "size": "standard"})
    assert r.status_code == 404
    r = await add(client, product, headers=headers, size="giant")
    assert r.status_code == 422 and r.json()["sizes"] == ["standard", "deluxe"]
    r = await add(client, product, headers=headers, add_ons=["balloon"])
    assert r.status_code == 422 and r.json()["type"].endswith("/unknown-add-on")


async def test_stock_conflict_reports_available(client, customer):
    _, headers = customer
    product = await make_product(stock={"standard": 3, "deluxe": 0})
    r = await add(client, product, headers=headers, quantity=5)
    assert r.status_code == 409 and r.json()["available"] == 3 and r.json()["type"].endswith("/insufficient-stock")
    assert (await add(client, product, headers=headers, quantity=2)).status_code == 200
    # Lines that differ only in the message draw on the same units.
    r = await add(client, product, headers=headers, quantity=2, gift_message="For you")
    assert r.status_code == 409 and r.json()["available"] == 3
    r = await add(client, product, headers=headers, size="deluxe")
    assert r.status_code == 409 and r.json()["available"] == 0
    cart = (await client.get(CART, headers=headers)).json()
    assert [(x["quantity"], x["gift_message"]) for x in cart["lines"]] == [(2, None)]


async def test_lines_are_flagged_not_silently_changed(client, customer):
    _, headers = customer
    archived = await make_product(name="Autumn Glow")
    repriced = await make_product(name="Peony Cloud", stock={"standard": 5, "deluxe": 5})
    await add(client, archived, headers=headers)
    await add(client, repriced, headers=headers, quantity=4, add_ons=["glass-vase"])
    await Product.find_one(Product.id == archived.id).update({"$set": {"status": "archived"}})
    new_sizes = [s.model_copy(update={"price": s.price + 500}).model_dump() for s in repriced.sizes]
    await Product.find_one(Product.id == repriced.id).update({"$set": {"sizes": new_sizes, "stock.standard": 2}})
    cart = (await client.get(CART, headers=headers)).json()
    gone, changed = cart["lines"]
    assert gone["flags"] == {"unavailable": True, "unavailable_reason": "product-archived", "price_changed": False,
                             "insufficient_stock": False, "available": 5}
    assert changed["flags"] == {"unavailable": False, "unavailable_reason": None, "price_changed": True,
                                "insufficient_stock": True, "available": 2}
    assert changed["unit_price_at_add"] == 6000 and changed["unit_price"] == 6500
    assert cart["subtotal"] == 4 * 6500  # the archived line is left out
    assert cart["can_checkout"] is False
    r = await client.patch(f"{ITEMS}/{gone['id']}", headers=headers, json={"quantity": 2})
    assert r.status_code == 409 and r.json()["type"].endswith("/product-unavailable")
    assert (await client.delete(f"{ITEMS}/{gone['id']}", headers=headers)).status_code == 200
    assert (await add(client, archived, headers=headers)).status_code == 404  # archived: not for sale
    # A deleted product keeps its name from when it was added.
    await Product.find_one(Product.id == archived.id).update({"$set": {"status": "active"}})
    await add(client, archived, headers=headers)
    await Product.find_one(Product.id == archived.id).delete()
    cart = (await client.get(CART, headers=headers)).json()
    deleted = next(x for x in cart["lines"] if x["product_id"] == archived.id)
    assert deleted["product_name"] == "Autumn Glow" and deleted["flags"]["unavailable_reason"] == "product-deleted"


async def test_change_and_remove_lines(client, customer):
    _, headers = customer
    product = await make_product(stock={"standard": 10, "deluxe": 10})
    await add(client, product, headers=headers, gift_message="Love")
    r = await add(client, product, headers=headers, quantity=2)
    love, plain = r.json()["lines"]
    r = await client.patch(f"{ITEMS}/{plain['id']}", headers=headers, json={"quantity": 3, "size": "deluxe"})
    assert r.status_code == 200
    line = r.json()["lines"][1]
    assert (line["quantity"], line["size"], line["unit_price"], line["unit_price_at_add"]) == (3, "deluxe", 6500, 6500)
    assert line["flags"]["price_changed"] is False
    r = await client.patch(f"{ITEMS}/{plain['id']}", headers=headers, json={"quantity": 11})
    assert r.status_code == 409 and r.json()["available"] == 10
    # Clearing the message makes the first line identical to... nothing; changing it to match merges.
    r = await client.patch(f"{ITEMS}/{love['id']}", headers=headers, json={"gift_message": None, "size": "deluxe"})
    assert [(x["quantity"], x["size"], x["gift_message"]) for x in r.json()["lines"]] == [(4, "deluxe", None)]
    merged_id = r.json()["lines"][0]["id"]
    assert (await client.patch(f"{ITEMS}/{plain['id']}", headers=headers, json={"quantity": 1})).status_code == 404
    r = await client.delete(f"{ITEMS}/{merged_id}", headers=headers)
    assert r.status_code == 200 and r.json()["lines"] == [] and r.json()["total"] == 0
    assert (await client.delete(f"{ITEMS}/{merged_id}", headers=headers)).status_code == 404
    await add(client, product, headers=headers)
    assert (await client.delete(CART, headers=headers)).status_code == 204
    assert (await client.get(CART, headers=headers)).json()["lines"] == []


async def test_another_customers_line_is_not_found(client, user_factory):
    _, alice = await user_factory()
    _, bob = await user_factory()
    product = await make_product()
    line_id = (await add(client, product, headers=alice)).json()["lines"][0]["id"]
    assert (await client.delete(f"{ITEMS}/{line_id}", headers=bob)).status_code == 404
    assert (await client.patch(f"{ITEMS}/{line_id}", headers=bob, json={"quantity": 2})).status_code == 404
    assert len((await client.get(CART, headers=alice)).json()["lines"]) == 1


async def test_line_and_cart_limits(client, customer):
    _, headers = customer
    product = await make_product(stock={"standard": 100, "deluxe": 100})
    assert (await add(client, product, headers=headers, quantity=20)).status_code == 200
    r = await add(client, product, headers=headers)
    assert r.status_code == 409 and r.json()["type"].endswith("/line-quantity-limit")
    for i in range(29):
        assert (await add(client, product, headers=headers, gift_message=f"card {i}")).status_code == 200
    r = await add(client, product, headers=headers, gift_message="one too many")
    assert r.status_code == 409 and r.json()["type"].endswith("/cart-full")


async def test_concurrent_adds_lose_nothing(client, customer):
    _, headers = customer
    product = await make_product(stock={"standard": 50, "deluxe": 50})
    await add(client, product, headers=headers)
    results = await asyncio.gather(*[add(client, product, headers=headers, gift_message=f"m{i}") for i in range(10)])
    assert all(r.status_code == 200 for r in results)
    cart = (await client.get(CART, headers=headers)).json()
    assert len(cart["lines"]) == 11 and cart["cart_version"] == 11


async def test_guest_cart_merges_at_login(client, user_factory):
    user, headers = await user_factory()
    roses = await make_product(name="Red Roses", stock={"standard": 5, "deluxe": 5})
    tulips = await make_product(name="Tulips")
    await add(client, roses, headers=headers, quantity=3)
    r = await add(client, roses, quantity=4)
    token = r.headers["X-Cart-Token"]
    await add(client, tulips, headers=guest(token), gift_message="Cheer up")
    r = await client.post("/api/v1/auth/login", headers=guest(token), json={"email": user.email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    cart = (await client.get(CART, headers=headers)).json()
    assert [(x["product_name"], x["quantity"], x["gift_message"]) for x in cart["lines"]] == [
        ("Red Roses", 5, None), ("Tulips", 1, "Cheer up")]  # 3 + 4 capped by the 5 in stock
    assert await Cart.find({"token_hash": hashlib.sha256(token.encode()).hexdigest()}).count() == 0
    assert (await client.get(CART, headers=guest(token))).json()["id"] is None
    # Signing in again with the spent token changes nothing.
    r = await client.post("/api/v1/auth/login", headers=guest(token), json={"email": user.email, "password": PASSWORD})
    assert r.status_code == 200
    assert len((await client.get(CART, headers=headers)).json()["lines"]) == 2


async def test_guest_cart_becomes_the_new_accounts_cart(client):
    product = await make_product()
    token = (await add(client, product, quantity=2)).headers["X-Cart-Token"]
    r = await client.post("/api/v1/auth/register", headers=guest(token), json={
        "email": "new@example.com", "password": "Velvet-Tulips-2026", "first_name": "New", "last_name": "Buyer"})
    assert r.status_code == 201, r.text
    headers = {"Authorization": f"Bearer {r.json()['tokens']['access_token']}"}
    cart = (await client.get(CART, headers=headers)).json()
    assert cart["lines"][0]["quantity"] == 2 and cart["id"] is not None
    assert (await Cart.get(cart["id"])).user_id == r.json()["user"]["id"]


async def test_move_favorite_to_cart(client, customer):
    user, headers = customer
    product = await make_product(stock={"standard": 2, "deluxe": 2})
    other = await make_product()
    await User.find_one(User.id == user.id).update({"$set": {"favorites": [product.id]}})
    url = f"/api/v1/users/me/favorites/{product.id}/move-to-cart"
    assert (await client.post(url, json={"size": "standard"})).status_code == 401
    r = await client.post(url, headers=headers, json={"size": "deluxe", "quantity": 2, "add_ons": ["glass-vase"]})
    assert r.status_code == 200, r.text
    assert r.json()["lines"][0]["unit_price"] == 8000 and r.json()["lines"][0]["quantity"] == 2
    assert (await User.get(user.id)).favorites == [product.id]  # stays unless asked
    r = await client.post(url, headers=headers, json={"size": "deluxe", "quantity": 1, "remove_from_favorites": True})
    assert r.status_code == 409 and r.json()["available"] == 2
    assert (await User.get(user.id)).favorites == [product.id]  # nothing happens on a refused move
    r = await client.post(url, headers=headers, json={"size": "standard", "remove_from_favorites": True})
    assert r.status_code == 200 and len(r.json()["lines"]) == 2
    assert (await User.get(user.id)).favorites == []
    r = await client.post(f"/api/v1/users/me/favorites/{other.id}/move-to-cart", headers=headers,
                          json={"size": "standard"})
    assert r.status_code == 404


async def test_delivery_fee_estimate_for_a_zip(client, customer, admin):
    _, headers = customer
    r = await client.post("/api/v1/admin/delivery/zones", headers=admin[1],
                          json={"name": "SoHo", "zip_codes": ["10012"], "fee": 999})
    assert r.status_code == 201
    await add(client, await make_product(), headers=headers)
    assert (await client.get(CART, headers=headers)).json()["delivery_fee"] is None
    body = (await client.get(CART, headers=headers, params={"zip": "10012"})).json()
    assert body["delivery_fee"] == 999 and body["total"] == 4500 + 999
    assert (await client.get(CART, headers=headers, params={"zip": "94110"})).json()["delivery_fee"] is None
    assert (await client.get(CART, headers=headers, params={"zip": "1"})).status_code == 422
