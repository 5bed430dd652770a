"""Counting and flat-filter forms (``app.core.filters``), each asserted against what ``find`` returns.

Runs against MONGODB_URL when set (real MongoDB) and the embedded nx-27017 server otherwise. Divergences of
the embedded server (0.8.1) behind the forms chosen:
- an ``$and`` sends a query down its per-document path (5-6x slower than the same filter flat) -> filters are
  flat (``all_of``);
- ``count_documents`` (``$match`` + ``$group``) is 20-30x slower than ``$match`` + ``$count``, and misses
  dates written by ``$currentDate`` in a range -> lists count with ``$count``;
- inside ``aggregate``, a date range matches wrongly (``$gte`` alone matches every document, ``$lt`` none,
  both together none) -> a filter holding a datetime is counted with the ``count`` command;
- inside ``aggregate``, equality on an array field matches nothing, whatever its index -> array membership is
  written ``{"field": {"$in": [value]}}`` (as the app already does for ``find``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.core.filters import all_of, capped_count, count_matching
from app.core.pagination import keyset_filter

BASE = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
async def products(db):
    await db.products.create_index([("status", 1), ("category_path", 1), ("price_min", 1)])
    await db.products.create_index([("name_keys", 1)])
    await db.products.insert_many([
        {"_id": f"prd_{i:03d}", "status": "active" if i % 5 else "draft", "price_min": 3000 + 500 * (i % 9),
         "category_path": ["cat_roses", "cat_bouquets"] if i % 2 else ["cat_tulips", "cat_bouquets"],
         "occasions": ["birthday", "love"] if i % 3 else ["sympathy"], "featured": i % 4 == 0,
         "stock_total": i % 6, "rating_avg": (i % 5) + 0.5, "units_sold": i * 7 % 13,
         "name_keys": [f"rose {i}", f"{i}"] if i % 2 else [f"tulip {i}"]}
        for i in range(60)])
    # booleans written by $set read back as 0/1 on the embedded server: equality must still count them
    await db.products.update_many({"_id": {"$in": ["prd_001", "prd_002"]}}, {"$set": {"featured": True}})
    await db.products.update_one({"_id": "prd_000"}, {"$set": {"featured": False}})
    return db.products


async def _found(coll, query) -> int:
    return len(await coll.find(query).to_list(None))


@pytest.mark.parametrize("clauses", [
    # /products: category + price range (+ occasion), the bench's filter
    [{"status": "active"}, {"category_path": {"$in": ["cat_roses"]}}, {"price_min": {"$gte": 4000, "$lte": 6000}}],
    [{"status": "active"}, {"occasions": {"$in": ["birthday", "sympathy"]}}, {"price_min": {"$gte": 3500}}],
    [{"status": "active"}, {"stock_total": {"$gt": 0}}, {"rating_avg": {"$gte": 2.5}}, {"featured": True}],
    [{"status": "active"}, {"stock_total": {"$lte": 0}}],
    [{"status": "active"}, {"featured": False}],
    # /products/{id}/related and the admin list's name search
    [{"status": "active"}, {"_id": {"$ne": "prd_001"}}, {"stock_total": {"$gt": 0}},
     {"$or": [{"category_path": {"$in": ["cat_tulips"]}}, {"occasions": {"$in": ["love"]}}]}],
    [{"status": "draft"}, {"name_keys": {"$elemMatch": {"$regex": "^rose"}}}],
    # two clauses on one key stay in $and
    [{"name_keys": {"$elemMatch": {"$regex": "^rose"}}}, {"name_keys": {"$elemMatch": {"$regex": "^1"}}}],
])
async def test_flat_filters_count_what_find_returns(products, clauses):
    flat = all_of(*clauses)
    wrapped = {"$and": clauses}
    expected = await _found(products, wrapped)
    assert expected > 0
    assert await _found(products, flat) == expected
    assert await count_matching(products, flat) == expected
    assert await count_matching(products, flat, limit=3) == min(3, expected)


async def test_keyset_pages_on_a_flat_filter_cover_every_match_once(products):
    query = all_of({"status": "active"}, {"category_path": {"$in": ["cat_bouquets"]}},
                   {"price_min": {"$gte": 3500, "$lte": 6500}})
    sort = [("price_min", 1), ("_id", 1)]
    expected = [d["_id"] async for d in products.find(query).sort(sort)]
    seen: list[str] = []
    after = None
    while True:
        full = all_of(query, keyset_filter(sort, after)) if after else query
        assert "$and" not in full
        page = await products.find(full).sort(sort).limit(7).to_list(None)
        seen += [d["_id"] for d in page]
        if len(page) < 7:
            break
        after = [page[-1]["price_min"], page[-1]["_id"]]
    assert seen == expected and len(seen) == await count_matching(products, query)


async def test_capped_count_says_when_more_match(products):
    query = {"status": "active"}
    n = await _found(products, query)
    assert await capped_count(products, query, n) == (n, False)
    assert await capped_count(products, query, n - 1) == (n - 1, True)
    assert await capped_count(products, {"status": "gone"}, 10) == (0, False)


async def test_date_ranges_count_what_find_returns(db):
    orders = db.orders
    await orders.create_index([("created_at", -1)])
    await orders.insert_many([{"_id": f"ord_{i:02d}", "status": "paid" if i % 2 else "pending_payment",
                               "created_at": BASE + timedelta(days=i)} for i in range(10)])
    for i in range(3):  # dates written by $currentDate (as the app's touches are)
        await orders.insert_one({"_id": f"ord_cd{i}", "status": "paid"})
        await orders.update_one({"_id": f"ord_cd{i}"}, {"$currentDate": {"created_at": True}})
    now = datetime.now(UTC)
    cases = [
        ({"created_at": {"$gte": BASE + timedelta(days=2), "$lt": BASE + timedelta(days=6)}}, 4),
        ({"created_at": {"$gte": BASE + timedelta(days=2)}, "status": "paid"}, 4 + 3),
        ({"created_at": {"$lt": BASE + timedelta(days=6)}}, 6),
        ({"created_at": {"$gte": now - timedelta(hours=1), "$lt": now + timedelta(hours=1)}}, 3),
        ({"created_at": {"$gte": datetime(2099, 1, 1, tzinfo=UTC)}}, 0),
    ]
    for query, expected in cases:
        assert await _found(orders, query) == expected, query
        assert await count_matching(orders, query) == expected, query
        assert await count_matching(orders, query, limit=2) == min(2, expected), query


async def test_all_of_merges_disjoint_clauses_and_keeps_shared_keys_in_and():
    assert all_of() == {} and all_of({}, None) == {}
    assert all_of({"status": "active"}) == {"status": "active"}
    assert all_of({"$and": [{"a": 1}]}, {"b": {"$gt": 2}}) == {"a": 1, "b": {"$gt": 2}}
    assert all_of({"a": 1}, {"$or": [{"b": 1}, {"c": 1}]}) == {"a": 1, "$or": [{"b": 1}, {"c": 1}]}
    assert all_of({"a": 1}, {"w": {"$elemMatch": {"$regex": "^x"}}}, {"w": {"$elemMatch": {"$regex": "^y"}}}) == {
        "a": 1, "$and": [{"w": {"$elemMatch": {"$regex": "^x"}}}, {"w": {"$elemMatch": {"$regex": "^y"}}}]}
    with pytest.raises(ValueError):
        await count_matching(None, {}, limit=0)
