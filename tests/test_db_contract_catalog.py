"""Query and update forms the catalog relies on, each asserted by reading back.

Runs against whatever MONGODB_URL points to (the embedded server by default), so the same file proves
the forms on real MongoDB. Divergences of the embedded server found while building the catalog:
- inside an aggregation ``$match``, keys beside ``$text`` are ignored -> we always use ``{"$and": [...]}``;
- ``$text`` combined with ``$or`` (keyset pagination) returns nothing, and ``textScore`` is 0 when ``$text`` sits
  in an ``$and`` (and field weights are ignored) -> full-text matches are ranked and paged in Python;
- multi-word ``$text`` matches documents with *all* words (MongoDB: any word, ranked), no stemming, and no
  accent folding -> the app no longer uses ``$text``: search matches the folded ``search_words``
  (tests/test_db_contract_search.py); the ``$text`` cases stay here as a record of the divergence;
- an anchored ``$regex`` on an array field matches nothing -> ``{"$elemMatch": {"$regex": ...}}``;
- ``{"arr": value}`` on an array field with a single-field index matches nothing -> ``{"arr": {"$in": [value]}}``;
- ``$set`` of a top-level datetime stores a string -> timestamps are written with ``$currentDate``;
- index names are not kept (``idx_<collection>_<fields>``) -> tests/test_indexes.py compares key patterns.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import TEXT, ReturnDocument


@pytest.fixture
async def coll(app, settings):
    c = app.state.runtime.mongo[settings.mongodb_db]["contract_catalog"]
    await c.create_index([("name", TEXT), ("tags", TEXT)], weights={"name": 10}, name="text")
    await c.create_index([("keys", 1)], name="keys")
    await c.create_index([("path", 1)], name="path")
    await c.insert_many([
        {"_id": "p1", "name": "Red Roses", "tags": ["romance"], "status": "active", "price": 5000,
         "keys": ["red roses", "roses"], "path": ["c1", "c0"], "occ": ["birthday", "love"],
         "stock": {"std": 5, "dlx": 0}, "total": 5, "v": 0},
        {"_id": "p2", "name": "Roses And Lilies", "tags": ["roses"], "status": "draft", "price": 8000,
         "keys": ["roses and lilies"], "path": ["c2", "c0"], "occ": ["wedding"], "stock": {"std": 1}, "total": 1,
         "v": 0},
        {"_id": "p3", "name": "Sunny Tulips", "tags": ["spring"], "status": "active", "price": 5000,
         "keys": ["sunny tulips", "tulips"], "path": ["c1", "c0"], "occ": ["birthday"], "stock": {"std": 0}, "total": 0,
         "v": 0},
        {"_id": "p4", "name": "Pink Roses", "tags": [], "status": "active", "price": 9000,
         "keys": ["pink roses", "roses"], "path": ["c2", "c0"], "occ": ["love"], "stock": {"std": 2}, "total": 2,
         "v": 0},
    ])
    return c


async def _ids(cursor) -> list[str]:
    return [d["_id"] async for d in cursor]


async def test_text_search_with_filters_in_and(coll):
    q = {"$and": [{"$text": {"$search": "roses"}}, {"status": "active"}, {"price": {"$gte": 5000, "$lte": 8000}},
                  {"occ": {"$in": ["birthday", "wedding"]}}, {"path": {"$in": ["c0"]}}]}
    assert await _ids(coll.find(q)) == ["p1"]
    rows = await coll.find({"$and": [{"$text": {"$search": "roses"}}, {"status": "active"}]}, {"name": 1}).to_list(None)
    assert sorted(r["_id"] for r in rows) == ["p1", "p4"]
    agg = await (await coll.aggregate([{"$match": {"$and": [{"$text": {"$search": "roses"}}, {"status": "active"}]}},
                                       {"$count": "n"}])).to_list(None)
    assert agg == [{"n": 2}]


async def test_facet_stages(coll):
    pipeline = [
        {"$match": {"$and": [{"status": "active"}]}},
        {"$facet": {
            "total": [{"$match": {"$and": [{"price": {"$lte": 8000}}]}}, {"$count": "n"}],
            "occ": [{"$match": {"$and": [{"path": {"$in": ["c1"]}}]}}, {"$unwind": "$occ"},
                    {"$group": {"_id": "$occ", "n": {"$sum": 1}}}],
            "path": [{"$unwind": "$path"}, {"$group": {"_id": "$path", "n": {"$sum": 1}}}],
            "price": [{"$bucket": {"groupBy": "$price", "boundaries": [0, 5000, 7500], "default": "over"}}],
        }},
    ]
    res = (await (await coll.aggregate(pipeline)).to_list(None))[0]
    assert res["total"] == [{"n": 2}]
    assert {r["_id"]: r["n"] for r in res["occ"]} == {"birthday": 2, "love": 1}
    assert {r["_id"]: r["n"] for r in res["path"]} == {"c0": 3, "c1": 2, "c2": 1}
    assert {r["_id"]: r["count"] for r in res["price"]} == {5000: 2, "over": 1}


async def test_prefix_regex_on_array_and_membership_on_indexed_array(coll):
    assert sorted(await _ids(coll.find({"keys": {"$elemMatch": {"$regex": "^ros"}}}))) == ["p1", "p2", "p4"]
    assert await _ids(coll.find({"keys": {"$elemMatch": {"$regex": "^tul"}}})) == ["p3"]
    assert sorted(await _ids(coll.find({"path": {"$in": ["c2"]}}))) == ["p2", "p4"]


async def test_conditional_stock_inc_returns_after_and_refuses(coll):
    doc = await coll.find_one_and_update({"_id": "p1", "stock.std": {"$gte": 2}},
                                         {"$inc": {"stock.std": -2, "total": -2}},
                                         projection={"stock": 1, "total": 1}, return_document=ReturnDocument.AFTER)
    assert doc == {"_id": "p1", "stock": {"std": 3, "dlx": 0}, "total": 3}
    assert await coll.find_one_and_update({"_id": "p1", "stock.std": {"$gte": 4}},
                                          {"$inc": {"stock.std": -4, "total": -4}}) is None
    assert (await coll.find_one({"_id": "p1"}))["stock"] == {"std": 3, "dlx": 0}

    async def take():
        return await coll.find_one_and_update({"_id": "p4", "stock.std": {"$gte": 1}},
                                              {"$inc": {"stock.std": -1, "total": -1}})

    results = await asyncio.gather(*(take() for _ in range(10)))
    assert sum(r is not None for r in results) == 2
    doc = await coll.find_one({"_id": "p4"})
    assert doc["stock"] == {"std": 0} and doc["total"] == 0


async def test_guarded_size_change_unset_set_and_version(coll):
    update = {"$set": {"stock.grand": 0}, "$unset": {"stock.dlx": ""}, "$inc": {"v": 1},
              "$currentDate": {"updated_at": True}}
    miss = await coll.update_one({"_id": "p1", "v": 0, "stock.std": 0}, update)
    assert miss.matched_count == 0
    hit = await coll.update_one({"_id": "p1", "v": 0, "stock.dlx": 0}, update)
    assert hit.matched_count == 1
    doc = await coll.find_one({"_id": "p1"})
    assert doc["stock"] == {"std": 5, "grand": 0} and doc["v"] == 1
    assert isinstance(doc["updated_at"], datetime)
    now = datetime.now(UTC)
    assert await _ids(coll.find({"updated_at": {"$gte": now - timedelta(minutes=1)}})) == ["p1"]


async def test_update_many_sets_arrays_and_in_projection(coll):
    res = await coll.update_many({"path": {"$in": ["c1"]}}, {"$set": {"path": ["c1", "c9", "c0"]},
                                                             "$currentDate": {"updated_at": True}})
    assert res.matched_count == 2
    assert sorted(await _ids(coll.find({"path": {"$in": ["c9"]}}))) == ["p1", "p3"]
    rows = await coll.find({"_id": {"$in": ["p1", "p3", "nope"]}}, {"stock": 1}).to_list(None)
    assert sorted((r["_id"], r["stock"]) for r in rows) == [("p1", {"std": 5, "dlx": 0}), ("p3", {"std": 0})]
    assert all(set(r) == {"_id", "stock"} for r in rows)


async def test_keyset_or_with_mixed_directions(coll):
    from app.core.pagination import keyset_filter

    sort = [("price", -1), ("_id", 1)]
    seen: list[str] = []
    after = None
    for _ in range(5):
        q = {"$and": [{"status": {"$in": ["active", "draft"]}}, keyset_filter(sort, after)]} if after else {}
        page = await coll.find(q).sort(sort).limit(2).to_list(None)
        if not page:
            break
        seen.extend(d["_id"] for d in page)
        after = [page[-1]["price"], page[-1]["_id"]]
    assert seen == ["p4", "p2", "p1", "p3"]
