"""Favorites over HTTP: idempotent add, remove, unavailable products flagged, the 200 cap (also under races)."""

from __future__ import annotations

import asyncio

from app.models.catalog import Product, ProductStatus
from app.models.user import User
from app.services.favorites import MAX_FAVORITES
from tests.catalog_fixtures import make_product

API = "/api/v1/users/me/favorites"


async def stored_favorites(user_id: str) -> list[str]:
    return (await User.get(user_id)).favorites


async def test_add_is_idempotent_and_remove_works(client, customer):
    user, headers = customer
    first, second = await make_product(), await make_product(name="Sunny Tulips", colors=["yellow"])
    for _ in range(2):
        assert (await client.put(f"{API}/{first.id}", headers=headers)).status_code == 204
    assert (await client.put(f"{API}/{second.id}", headers=headers)).status_code == 204
    assert await stored_favorites(user.id) == [first.id, second.id]

    r = await client.get(API, headers=headers)
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 2 and body["max"] == MAX_FAVORITES
    assert [i["product_id"] for i in body["items"]] == [second.id, first.id]  # most recent first
    item = body["items"][0]
    assert item == {"product_id": second.id, "name": "Sunny Tulips", "slug": second.slug, "price_min": 4500,
                    "currency": "USD", "image": None, "rating_avg": 0.0, "rating_count": 0, "in_stock": True,
                    "available": True}

    for _ in range(2):
        assert (await client.delete(f"{API}/{first.id}", headers=headers)).status_code == 204
    assert await stored_favorites(user.id) == [second.id]
    assert [i["product_id"] for i in (await client.get(API, headers=headers)).json()["items"]] == [second.id]


async def test_unknown_draft_or_malformed_products_are_refused(client, customer):
    user, headers = customer
    draft = await make_product(status=ProductStatus.draft)
    assert (await client.put(f"{API}/{draft.id}", headers=headers)).status_code == 404
    assert (await client.put(f"{API}/prd_01JD7Z00000000000000000000", headers=headers)).status_code == 404
    assert (await client.put(f"{API}/not-a-product", headers=headers)).status_code == 422
    assert (await client.put(f"{API}/%7B%22%24ne%22%3A%22%22%7D", headers=headers)).status_code == 422
    assert await stored_favorites(user.id) == []


async def test_anonymous_gets_401(client):
    product = await make_product()
    assert (await client.get(API)).status_code == 401
    assert (await client.put(f"{API}/{product.id}")).status_code == 401
    assert (await client.delete(f"{API}/{product.id}")).status_code == 401


async def test_withdrawn_products_are_flagged_not_dropped(client, customer):
    _, headers = customer
    archived, drafted, active, deleted = [await make_product() for _ in range(4)]
    for p in (archived, drafted, active, deleted):
        assert (await client.put(f"{API}/{p.id}", headers=headers)).status_code == 204
    await Product.find_one(Product.id == archived.id).update({"$set": {"status": "archived", "stock": {"standard": 0}}})
    await Product.find_one(Product.id == drafted.id).update({"$set": {"status": "draft"}})
    await deleted.delete()

    items = (await client.get(API, headers=headers)).json()["items"]
    flags = {i["product_id"]: (i["available"], i["in_stock"]) for i in items}
    assert flags == {archived.id: (False, False), drafted.id: (False, True), active.id: (True, True)}


async def test_cap_of_200(client, customer):
    user, headers = customer
    filler = [f"prd_01JD7Z{n:020d}" for n in range(MAX_FAVORITES - 1)]
    await User.find_one(User.id == user.id).update({"$set": {"favorites": filler}})
    last, one_too_many = await make_product(), await make_product()
    assert (await client.put(f"{API}/{last.id}", headers=headers)).status_code == 204
    r = await client.put(f"{API}/{one_too_many.id}", headers=headers)
    assert r.status_code == 409 and r.json()["type"].endswith("too-many-favorites")
    # Re-adding one that is already there is still fine at the cap.
    assert (await client.put(f"{API}/{last.id}", headers=headers)).status_code == 204
    stored = await stored_favorites(user.id)
    assert len(stored) == MAX_FAVORITES and stored[-1] == last.id and one_too_many.id not in stored
    assert (await client.delete(f"{API}/{last.id}", headers=headers)).status_code == 204
    assert (await client.put(f"{API}/{one_too_many.id}", headers=headers)).status_code == 204


async def test_cap_holds_under_concurrent_adds(client, customer):
    user, headers = customer
    room = 5
    filler = [f"prd_01JD7Z{n:020d}" for n in range(MAX_FAVORITES - room)]
    await User.find_one(User.id == user.id).update({"$set": {"favorites": filler}})
    products = [await make_product() for _ in range(20)]
    results = await asyncio.gather(*(client.put(f"{API}/{p.id}", headers=headers) for p in products))
    codes = [r.status_code for r in results]
    assert sorted(codes) == [204] * room + [409] * (20 - room)
    stored = await stored_favorites(user.id)
    added = {p.id for p, r in zip(products, results, strict=True) if r.status_code == 204}
    assert len(stored) == MAX_FAVORITES and set(stored[-room:]) == added
