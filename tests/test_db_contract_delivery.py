"""Contract tests: each query/update form that delivery, promo codes and the cart rely on, asserted by
reading back. They run against whatever MONGODB_URL points to (the embedded server by default)."""

from __future__ import annotations

import asyncio

import pytest
from pymongo.errors import DuplicateKeyError

from app.core.atomic import ensure_document
from app.models.cart import Cart


@pytest.fixture
def db(app, settings):
    return app.state.runtime.mongo[settings.mongodb_db]


async def test_ensure_document_races_to_one_document(db):
    coll = db.c_slots
    await asyncio.gather(*[ensure_document(coll, "k", {"taken": 0, "holds": []}) for _ in range(20)])
    assert await coll.count_documents({}) == 1
    await coll.update_one({"_id": "k"}, {"$inc": {"taken": 2}})
    await ensure_document(coll, "k", {"taken": 0, "holds": []})  # leaves an existing document alone
    assert (await coll.find_one({"_id": "k"}))["taken"] == 2


async def test_conditional_take_with_nin_and_addtoset(db):
    coll = db.c_slots
    await coll.insert_one({"_id": "k", "taken": 0, "holds": []})

    async def take(order_id: str) -> int:
        res = await coll.update_one({"_id": "k", "taken": {"$lt": 3}, "holds": {"$nin": [order_id]}},
                                    {"$inc": {"taken": 1}, "$addToSet": {"holds": order_id}})
        return res.modified_count

    results = await asyncio.gather(*[take(f"ord_{i}") for i in range(10)])
    assert sum(results) == 3
    doc = await coll.find_one({"_id": "k"})
    assert doc["taken"] == 3 and len(doc["holds"]) == 3
    # The same order cannot take a second place, even with room left.
    await coll.update_one({"_id": "k"}, {"$set": {"taken": 1, "holds": ["ord_a"]}})
    assert await take("ord_a") == 0
    assert await coll.find_one({"_id": "k"}) == {"_id": "k", "taken": 1, "holds": ["ord_a"]}


async def test_nin_on_array_in_update_filter(db):
    """Documents the embedded server's divergence: in an update filter, ``{"holds": {"$ne": x}}`` matches
    although ``x`` is in the array (find/count evaluate it correctly). The app uses ``$nin: [x]`` instead.
    On real MongoDB both forms miss; this test accepts either so it passes there too, and fails if a new
    server version makes ``$nin`` wrong as well."""
    coll = db.c_slots
    await coll.insert_one({"_id": "k", "holds": ["ord_a"]})
    assert await coll.count_documents({"_id": "k", "holds": {"$ne": "ord_a"}}) == 0
    assert (await coll.update_one({"_id": "k", "holds": {"$nin": ["ord_a"]}}, {"$set": {"x": 1}})).matched_count == 0
    assert (await coll.update_one({"_id": "k", "holds": {"$nin": ["ord_b"]}}, {"$set": {"x": 1}})).matched_count == 1


async def test_membership_in_an_indexed_array_with_in(db):
    """Divergence: on the embedded server, ``find({"holds": x})`` returns nothing when ``holds`` has an index
    (count and updates still match). ``{"holds": {"$in": [x]}}`` is right on both servers; the app uses it."""
    coll = db.c_indexed
    await coll.create_index("holds", name="holds")
    await coll.create_index([("active", 1), ("zips", 1)], name="active_zips")
    await coll.insert_one({"_id": "k", "active": True, "holds": ["ord_a", "ord_b"], "zips": ["10012"]})
    await coll.update_one({"_id": "k"}, {"$addToSet": {"holds": "ord_c"}})
    for order_id in ("ord_a", "ord_c"):
        assert [d["_id"] for d in await coll.find({"holds": {"$in": [order_id]}}).to_list()] == ["k"]
        assert (await coll.find_one({"_id": "k", "holds": {"$in": [order_id]}})) is not None
    assert await coll.find_one({"holds": {"$in": ["ord_x"]}}) is None
    assert [d["_id"] for d in await coll.find({"active": True, "zips": {"$in": ["10012"]}}).to_list()] == ["k"]


async def test_release_by_membership_pull_and_dec_happens_once(db):
    coll = db.c_slots
    await coll.create_index("holds", name="holds")
    await coll.insert_one({"_id": "k", "taken": 2, "holds": ["ord_a", "ord_b"]})

    async def release() -> bool:
        return await coll.find_one_and_update({"holds": {"$in": ["ord_a"]}},
                                              {"$pull": {"holds": "ord_a"}, "$inc": {"taken": -1}}) is not None

    assert sum(await asyncio.gather(*[release() for _ in range(10)])) == 1
    assert await coll.find_one({"_id": "k"}) == {"_id": "k", "taken": 1, "holds": ["ord_b"]}


async def test_in_on_string_ids_and_zone_lookup_or(db):
    coll = db.c_zones
    await coll.insert_many([
        {"_id": "z1", "active": True, "zip_codes": ["10012", "10013"], "zip_prefixes": []},
        {"_id": "z2", "active": True, "zip_codes": [], "zip_prefixes": ["100", "11"]},
        {"_id": "z3", "active": False, "zip_codes": ["10012"], "zip_prefixes": []},
    ])
    query = {"active": True, "$or": [{"zip_codes": "10012"}, {"zip_prefixes": {"$in": ["1", "10", "100", "1001"]}}]}
    assert sorted(d["_id"] for d in await coll.find(query).to_list()) == ["z1", "z2"]
    query = {"active": True, "$or": [{"zip_codes": "11201"}, {"zip_prefixes": {"$in": ["1", "11", "112", "1120"]}}]}
    assert [d["_id"] for d in await coll.find(query).to_list()] == ["z2"]
    assert sorted(d["_id"] for d in await coll.find({"_id": {"$in": ["z1", "z3", "nope"]}}).to_list()) == ["z1", "z3"]
    overlap = {"$and": [{"$or": [{"zip_codes": {"$in": ["10013", "99999"]}}]}, {"_id": {"$ne": "z3"}}]}
    assert [d["_id"] for d in await coll.find(overlap).to_list()] == ["z1"]


async def test_counter_take_with_limit_in_filter(db):
    coll = db.c_promos
    await coll.insert_many([{"_id": "p1", "active": True, "uses": 0, "usage_limit": 1},
                            {"_id": "p2", "active": True, "uses": 5, "usage_limit": None}])

    async def use() -> int:
        res = await coll.update_one({"_id": "p1", "active": True, "usage_limit": 1, "uses": {"$lt": 1}},
                                    {"$inc": {"uses": 1}})
        return res.modified_count

    assert sum(await asyncio.gather(*[use() for _ in range(20)])) == 1
    assert (await coll.find_one({"_id": "p1"}))["uses"] == 1
    # A changed limit makes the filter miss; `usage_limit: None` matches an unlimited code.
    assert (await coll.update_one({"_id": "p1", "usage_limit": 2}, {"$inc": {"uses": 1}})).modified_count == 0
    assert (await coll.update_one({"_id": "p2", "usage_limit": None}, {"$inc": {"uses": 1}})).modified_count == 1
    assert (await coll.find_one({"_id": "p2"}))["uses"] == 6
    # Decrement guarded at zero.
    await coll.update_one({"_id": "p1", "uses": {"$gt": 0}}, {"$inc": {"uses": -1}})
    await coll.update_one({"_id": "p1", "uses": {"$gt": 0}}, {"$inc": {"uses": -1}})
    assert (await coll.find_one({"_id": "p1"}))["uses"] == 0


async def test_status_transition_claims_once(db):
    coll = db.c_redemptions
    await coll.insert_one({"_id": "ord_1", "status": "taken"})

    async def claim() -> bool:
        return await coll.find_one_and_update({"_id": "ord_1", "status": "taken"},
                                              {"$set": {"status": "released"}}) is not None

    assert sum(await asyncio.gather(*[claim() for _ in range(10)])) == 1
    assert (await coll.find_one({"_id": "ord_1"}))["status"] == "released"


async def test_find_one_and_delete_claims_once(db):
    coll = db.c_carts
    await coll.insert_one({"_id": "crt_1", "token_hash": "h", "user_id": None})

    async def claim() -> bool:
        return await coll.find_one_and_delete({"token_hash": "h", "user_id": None}) is not None

    assert sum(await asyncio.gather(*[claim() for _ in range(10)])) == 1
    assert await coll.count_documents({}) == 0


async def test_cart_partial_unique_indexes(app):
    # Many carts without a user (guests) and many without a token (customers) may coexist ...
    await Cart(token_hash="a").insert()
    await Cart(token_hash="b").insert()
    await Cart(user_id="usr_1").insert()
    await Cart(user_id="usr_2").insert()
    # ... but a user or a token has at most one cart.
    with pytest.raises(DuplicateKeyError):
        await Cart(user_id="usr_1").insert()
    with pytest.raises(DuplicateKeyError):
        await Cart(token_hash="a").insert()
    assert await Cart.find_all().count() == 4


async def test_whole_array_write_under_version_keeps_subdocuments(app):
    from app.core.versioned import update_versioned
    from app.models.cart import CartLine

    cart = Cart(user_id="usr_1")
    await cart.insert()

    async def add(i: int) -> None:
        line = CartLine(product_id=f"prd_{i}", size="standard", quantity=1, unit_price_at_add=100,
                        product_name="P", size_name="Standard")
        await update_versioned(Cart, cart.id, lambda doc: {"lines": [*(x.model_dump() for x in doc.lines),
                                                                      line.model_dump()]})

    await asyncio.gather(*[add(i) for i in range(10)])
    stored = await Cart.get(cart.id)
    assert sorted(x.product_id for x in stored.lines) == sorted(f"prd_{i}" for i in range(10))
    assert stored.version == 10 and all(isinstance(x, CartLine) for x in stored.lines)


async def test_scalar_pull_from_favorites(db):
    coll = db.c_users
    await coll.insert_one({"_id": "usr_1", "favorites": ["prd_a", "prd_b"]})
    await coll.update_one({"_id": "usr_1"}, {"$pull": {"favorites": "prd_a"}})
    assert (await coll.find_one({"_id": "usr_1"}))["favorites"] == ["prd_b"]


async def test_datetime_writes_that_keep_real_dates(db):
    """Divergence: the embedded server stores a datetime given directly to ``$set`` (``{"$set": {"at": dt}}``)
    as a naive string. These forms keep an aware BSON date on both servers, and the app uses only them:
    insert, ``replace_one``, ``$setOnInsert``, ``$currentDate``, and datetimes inside a ``$set`` sub-document."""
    from datetime import UTC, datetime, timedelta

    from app.core.clock import utcnow

    coll = db.c_dates
    now = utcnow()
    later = now + timedelta(days=3)
    await coll.insert_one({"_id": "a", "at": now, "version": 0})
    await coll.replace_one({"_id": "a", "version": 0}, {"at": later, "version": 1})
    await coll.update_one({"_id": "b"}, {"$setOnInsert": {"at": now}}, upsert=True)
    await coll.update_one({"_id": "a"}, {"$currentDate": {"touched": True},
                                         "$set": {"lines": [{"added_at": now}], "sub": {"t": now}}})
    a, b = await coll.find_one({"_id": "a"}), await coll.find_one({"_id": "b"})
    assert a["at"] == later and b["at"] == now
    assert a["lines"][0]["added_at"] == now and a["sub"]["t"] == now
    assert isinstance(a["touched"], datetime) and a["touched"].tzinfo is not None
    assert abs(a["touched"] - datetime.now(UTC)) < timedelta(minutes=5)
    assert [d["_id"] for d in await coll.find({"at": {"$gt": now}}).to_list()] == ["a"]


async def test_replace_under_version_guard(db):
    coll = db.c_versioned
    await coll.insert_one({"_id": "a", "version": 0, "n": 0})

    async def bump() -> int:
        raw = await coll.find_one({"_id": "a"})
        res = await coll.replace_one({"_id": "a", "version": raw["version"]},
                                     {"version": raw["version"] + 1, "n": raw["n"] + 1})
        return res.matched_count

    results = await asyncio.gather(*[bump() for _ in range(10)])
    doc = await coll.find_one({"_id": "a"})
    assert doc["n"] == sum(results) == doc["version"] >= 1
