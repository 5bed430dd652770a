"""Contract of the query and update forms used by reviews, favorites and product images.

Each test asserts the effect by reading back, so it holds on the embedded server and on real MongoDB
(``MONGODB_URL``). Divergences of the embedded server found on the way, and how the code avoids them:

- ``$set`` of a top-level datetime stores a naive *string* (nested datetimes inside a ``$set`` dict or
  list are fine); ``$currentDate`` reads back as an aware datetime and sorts right, but range queries
  on such a value match nothing. → timestamps after insert use ``$currentDate`` and are never range-queried.
- ``$set`` of a bool stores 0/1; equality on ``True``/``False`` still matches. → harmless; pydantic reads it back.
- ``{"favorites": {"$ne": x}}`` (array non-membership) matches although ``x`` is in the array;
  ``{"favorites": {"$size": n}}`` for n > 0 matches nothing (``$size: 0`` is right); equality with an
  empty array (``{"images": []}``) fails with "type 'list' is not supported" once any document has a
  non-empty array; ``$ifNull`` inside ``$expr`` makes updates report
  success without applying; a ``$expr``/``$size`` cap guard under concurrent writers reports more matches
  than it applies. → the favorites cap uses the version guard.
"""

from __future__ import annotations

import asyncio

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.core.pagination import PageParams, paginate
from app.models.catalog import Product
from app.models.review import Review
from app.models.user import User
from tests.catalog_fixtures import make_product
from tests.conftest import create_user


def products():
    return Product.get_pymongo_collection()


def reviews():
    return Review.get_pymongo_collection()


async def test_inc_returning_the_fresh_sums_then_guarded_set(app):
    product = await make_product()
    doc = await products().find_one_and_update({"_id": product.id}, {"$inc": {"rating_sum": 4, "rating_count": 1}},
                                               projection={"rating_sum": 1, "rating_count": 1},
                                               return_document=ReturnDocument.AFTER)
    assert (doc["rating_sum"], doc["rating_count"]) == (4, 1)
    stale = await products().update_one({"_id": product.id, "rating_sum": 5, "rating_count": 1},
                                         {"$set": {"rating_avg": 5.0}})
    fresh = await products().update_one({"_id": product.id, "rating_sum": 4, "rating_count": 1},
                                        {"$set": {"rating_avg": 4.0}})
    assert (stale.matched_count, fresh.matched_count) == (0, 1)
    back = await products().find_one({"_id": product.id})
    assert (back["rating_sum"], back["rating_count"], back["rating_avg"]) == (4, 1, 4.0)


async def test_concurrent_incs_are_exact(app):
    product = await make_product()

    async def inc(n):
        return await products().find_one_and_update({"_id": product.id}, {"$inc": {"rating_sum": n, "rating_count": 1}},
                                                    return_document=ReturnDocument.AFTER)

    seen = await asyncio.gather(*(inc(n % 5 + 1) for n in range(40)))
    back = await products().find_one({"_id": product.id})
    assert (back["rating_sum"], back["rating_count"]) == (sum(n % 5 + 1 for n in range(40)), 40)
    assert sorted(d["rating_count"] for d in seen) == list(range(1, 41))  # each saw its own increment


async def test_flag_flip_returns_the_pre_image_once(app):
    await Review(product_id="prd_a", user_id="usr_a", rating=3, title="t").insert()
    rid = (await Review.find_one({"user_id": "usr_a"})).id
    first = await reviews().find_one_and_update({"_id": rid, "hidden": False},
                                                {"$set": {"hidden": True, "hidden_by": "usr_s"},
                                                 "$currentDate": {"hidden_at": True}},
                                                return_document=ReturnDocument.BEFORE)
    again = await reviews().find_one_and_update({"_id": rid, "hidden": False}, {"$set": {"hidden": True}},
                                                return_document=ReturnDocument.BEFORE)
    assert first["hidden"] is False and first["rating"] == 3 and again is None
    back = await Review.get(rid)
    assert back.hidden is True and back.hidden_by == "usr_s" and back.hidden_at.tzinfo is not None
    assert await Review.find({"_id": rid, "hidden": True}).count() == 1
    assert await Review.find({"_id": rid, "hidden": False}).count() == 0


async def test_guarded_rating_change_and_current_date(app):
    review = Review(product_id="prd_a", user_id="usr_a", rating=2, title="t")
    await review.insert()
    miss = await reviews().update_one({"_id": review.id, "rating": 5}, {"$set": {"rating": 1}})
    hit = await reviews().update_one({"_id": review.id, "user_id": "usr_a", "hidden": False, "rating": 2},
                                     {"$set": {"rating": 4, "title": "u"}, "$currentDate": {"updated_at": True}})
    assert (miss.matched_count, hit.matched_count) == (0, 1)
    back = await Review.get(review.id)
    assert (back.rating, back.title) == (4, "u")
    assert back.updated_at.tzinfo is not None and back.updated_at >= back.created_at


async def test_find_one_and_delete_by_owner(app):
    review = Review(product_id="prd_a", user_id="usr_a", rating=5, title="t")
    await review.insert()
    assert await reviews().find_one_and_delete({"_id": review.id, "user_id": "usr_b", "hidden": False}) is None
    assert await Review.get(review.id) is not None
    gone = await reviews().find_one_and_delete({"_id": review.id, "user_id": "usr_a", "hidden": False})
    assert gone["rating"] == 5 and await Review.get(review.id) is None


async def test_one_review_per_product_and_user(app):
    await Review(product_id="prd_a", user_id="usr_a", rating=5, title="t").insert()
    await Review(product_id="prd_b", user_id="usr_a", rating=5, title="t").insert()
    try:
        await Review(product_id="prd_a", user_id="usr_a", rating=1, title="t").insert()
        raise AssertionError("duplicate review was stored")
    except DuplicateKeyError:
        pass
    assert await Review.find({"product_id": "prd_a"}).count() == 1


async def test_star_histogram_aggregation(app):
    for i, rating in enumerate([5, 5, 4, 1, 5, 3]):
        await Review(product_id="prd_h", user_id=f"usr_{i}", rating=rating, title="t", hidden=(i == 0)).insert()
    await Review(product_id="prd_other", user_id="usr_x", rating=2, title="t").insert()
    pipeline = [{"$match": {"product_id": "prd_h", "hidden": False}},
                {"$group": {"_id": "$rating", "n": {"$sum": 1}}}]
    rows = await (await reviews().aggregate(pipeline)).to_list()
    assert {r["_id"]: r["n"] for r in rows} == {5: 2, 4: 1, 1: 1, 3: 1}


async def test_keyset_pages_with_mixed_directions(app):
    ratings = [3, 5, 1, 5, 2, 4, 3, 5, 1, 4, 2]
    for i, rating in enumerate(ratings):
        await Review(product_id="prd_k", user_id=f"usr_{i}", rating=rating, title="t").insert()
    expected = [(r.rating, r.id) for r in await Review.find({"product_id": "prd_k"}).to_list()]
    expected.sort(key=lambda x: x[1], reverse=True)
    expected.sort(key=lambda x: -x[0])  # stable: rating desc, then _id desc
    got, cursor = [], None
    while True:
        docs, cursor, _ = await paginate(Review, {"product_id": "prd_k", "hidden": False},
                                         [("rating", -1), ("_id", -1)], PageParams(limit=4, cursor=cursor))
        got += [(d.rating, d.id) for d in docs]
        if cursor is None:
            break
    assert got == expected


async def test_string_id_in_query(app):
    a, b, _ = [await make_product() for _ in range(3)]
    found = await Product.find({"_id": {"$in": [a.id, b.id, "prd_missing"]}}).to_list()
    assert {p.id for p in found} == {a.id, b.id}


async def test_version_guarded_add_to_set_cap_under_concurrency(app):
    user = await create_user(favorites=["p_x"])
    coll = User.get_pymongo_collection()

    async def add(i: int) -> bool:
        while True:
            doc = await coll.find_one({"_id": user.id}, {"favorites": 1, "version": 1})
            if len(doc["favorites"]) >= 5:
                return False
            res = await coll.update_one({"_id": user.id, "version": doc["version"]},
                                        {"$addToSet": {"favorites": f"p_{i}"}, "$inc": {"version": 1}})
            if res.matched_count == 1:
                return True

    results = await asyncio.gather(*(add(i) for i in range(25)))
    stored = (await coll.find_one({"_id": user.id}))["favorites"]
    assert results.count(True) == 4 and len(stored) == 5
    assert set(stored) == {"p_x"} | {f"p_{i}" for i, ok in enumerate(results) if ok}


async def test_add_to_set_is_idempotent_and_pull_removes(app):
    user = await create_user()
    coll = User.get_pymongo_collection()
    for _ in range(2):
        await coll.update_one({"_id": user.id}, {"$addToSet": {"favorites": "p_1"}})
    await coll.update_one({"_id": user.id}, {"$addToSet": {"favorites": "p_2"}})
    assert (await coll.find_one({"_id": user.id}))["favorites"] == ["p_1", "p_2"]
    await coll.update_one({"_id": user.id}, {"$pull": {"favorites": "p_1"}})
    await coll.update_one({"_id": user.id}, {"$pull": {"favorites": "p_missing"}})
    assert (await coll.find_one({"_id": user.id}))["favorites"] == ["p_2"]


async def test_empty_array_equality_and_whole_array_write(app):
    bare = await make_product()
    image = {"id": "img_1", "storage_key": "k.jpg", "backend": "local", "url": "u", "alt": "a", "width": 300,
             "height": 300, "variants": {"320": "v"}}
    res = await products().update_one({"_id": bare.id, "version": bare.version},
                                      {"$set": {"images": [image, {**image, "id": "img_2"}]}, "$inc": {"version": 1},
                                       "$currentDate": {"updated_at": True}})
    other = await make_product()
    assert res.matched_count == 1
    assert {p.id for p in await Product.find({"images": {"$size": 0}}).to_list()} == {other.id}
    back = await Product.get(bare.id)
    assert [i.id for i in back.images] == ["img_1", "img_2"] and back.images[0].variants == {"320": "v"}
    assert back.version == bare.version + 1 and back.updated_at.tzinfo is not None
