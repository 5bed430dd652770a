"""Contract tests: the query and write forms of the audit log (app/services/audit.py) and of the analytics
events (app/services/analytics.py, app/services/shopper_reports.py), asserted by reading back.

They run against whatever MONGODB_URL points to. Found on the embedded server (nx-27017 0.8.1) and written
around: a date range compares whole seconds only (``{"at": {"$gte": 10:00:00.275}}`` also matches
10:00:00.257), so the audit list's time range is an ``_id`` range — the ids carry their instant to the
millisecond — and the shopper reports bound their ranges at whole seconds (shop midnights), where the
comparison is exact on both servers; ``$in`` on a field inside an array of sub-documents
(``{"events.order_id": {"$in": [...]}}``, indexed) finds nothing, so a bucket also lists its order ids as
scalars (``orders``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from app.core.ids import id_floor, new_id_at

pytestmark = pytest.mark.usefixtures("app")

T = datetime(2030, 4, 9, 14, 0, 0, 257000, tzinfo=UTC)
MIDNIGHT = datetime(2030, 4, 9, 4, 0, tzinfo=UTC)  # a shop midnight in New York (EDT)


@pytest.fixture
def settings(make_settings):
    return make_settings(workers_enabled=False, analytics_enabled=False)


@pytest.fixture
def db(app, settings):
    return app.state.runtime.mongo[settings.mongodb_db]


async def test_an_id_range_selects_entries_by_their_instant_to_the_millisecond(db):
    coll = db.c_audit
    instants = [T, T + timedelta(milliseconds=18), T + timedelta(milliseconds=28), T + timedelta(seconds=1)]
    docs = [{"_id": new_id_at("aud", at), "at": at, "actor_id": "usr_a" if n % 2 else "usr_b"}
            for n, at in enumerate(instants)]
    await coll.insert_many(docs)
    since, until = instants[1], instants[3]
    query = {"actor_id": "usr_a", "_id": {"$gte": id_floor("aud", since), "$lt": id_floor("aud", until)}}
    got = await coll.find(query).sort([("_id", -1)]).limit(10).to_list(None)
    assert [d["at"] for d in got] == [instants[1]]
    everything = await coll.find({"_id": {"$gte": id_floor("aud", since + timedelta(microseconds=1))}}) \
        .sort([("_id", -1)]).to_list(None)
    assert [d["at"] for d in everything] == [instants[3], instants[2]]  # rounded up: strictly after 18 ms


async def test_an_intent_is_replaced_by_its_entry_and_resolved_once(db):
    coll = db.c_audit
    entry = {"_id": "aud_1", "state": "pending", "at": T, "changes": []}
    await coll.insert_one(entry)
    # The recovery job's pending query: state + at before a cutoff (whole seconds are enough here).
    due = await coll.find({"state": "pending", "at": {"$lt": T + timedelta(seconds=5)}}).sort("at", 1).to_list(None)
    assert [d["_id"] for d in due] == ["aud_1"]
    committed = {**entry, "state": "committed", "changes": [{"field": "is_active", "before": True, "after": False},
                                                            {"field": "tags", "before": ["a"], "after": None}]}
    res = await coll.replace_one({"_id": "aud_1", "state": "pending"}, committed)
    assert res.matched_count == 1
    again = await coll.replace_one({"_id": "aud_1", "state": "pending"}, {**committed, "recovered": True})
    assert again.matched_count == 0  # already resolved: a second resolver changes nothing
    stored = await coll.find_one({"_id": "aud_1"})
    assert stored["changes"][0] == {"field": "is_active", "before": True, "after": False} and "recovered" not in stored
    assert stored["at"] == T  # a replaced document keeps its datetime a date
    # The request's own close is unconditional and may run after a recovery removed the intent: upsert.
    assert (await coll.delete_one({"_id": "aud_1", "state": "committed"})).deleted_count == 1
    await coll.replace_one({"_id": "aud_1"}, committed, upsert=True)
    assert (await coll.find_one({"_id": "aud_1"}))["state"] == "committed"


async def test_an_unordered_batch_keeps_what_the_database_accepts_and_names_what_it_refused(db):
    coll = db.c_buckets
    await coll.create_index("kind", unique=True)
    batch = [{"_id": "b1", "kind": "search"}, {"_id": "b2", "kind": "search"}, {"_id": "b3", "kind": "cart_add"}]
    with pytest.raises(BulkWriteError) as caught:
        await coll.insert_many(batch, ordered=False)
    assert caught.value.details["nInserted"] == 2
    assert [e["index"] for e in caught.value.details["writeErrors"]] == [1]
    assert sorted(d["_id"] for d in await coll.find({}).to_list(None)) == ["b1", "b3"]


async def test_buckets_overlapping_shop_days_and_the_bucket_of_an_order(db):
    coll = db.c_buckets
    await coll.create_index([("kind", 1), ("start", 1)])
    await coll.create_index("orders")
    end = MIDNIGHT + timedelta(days=1)

    def bucket(bid: str, kind: str, start: datetime, stop: datetime, **extra) -> dict:
        events = [{"at": start, "visitor_id": "v"}, {"at": stop, "user_id": "usr_c"}]
        return {"_id": bid, "kind": kind, "start": start, "end": stop, "events": events, **extra}

    await coll.insert_many([
        bucket("before", "product_view", MIDNIGHT - timedelta(seconds=9), MIDNIGHT - timedelta(milliseconds=1)),
        bucket("across", "product_view", MIDNIGHT - timedelta(seconds=2), MIDNIGHT + timedelta(seconds=3)),
        bucket("inside", "product_view", MIDNIGHT + timedelta(hours=2), MIDNIGHT + timedelta(hours=2, seconds=1)),
        bucket("last", "product_view", end - timedelta(seconds=1), end + timedelta(milliseconds=300)),
        bucket("after", "product_view", end, end + timedelta(seconds=2)),
        bucket("other", "search", MIDNIGHT + timedelta(hours=1), MIDNIGHT + timedelta(hours=1)),
        bucket("co", "checkout_start", MIDNIGHT, MIDNIGHT, orders=["ord_1", "ord_2"]),
        bucket("co2", "checkout_start", MIDNIGHT, MIDNIGHT, orders=["ord_3"]),
    ])
    query = {"kind": "product_view", "start": {"$lt": end}, "end": {"$gte": MIDNIGHT}}
    docs = await coll.find(query, {"events": 1}).to_list(None)
    assert sorted(d["_id"] for d in docs) == ["across", "inside", "last"]
    inside = next(d for d in docs if d["_id"] == "inside")
    assert set(inside) == {"_id", "events"}
    assert inside["events"][0] == {"at": MIDNIGHT + timedelta(hours=2), "visitor_id": "v"}  # dates stay dates
    found = await coll.find({"kind": "checkout_start", "orders": {"$in": ["ord_2", "ord_9"]}}, {"events": 1}) \
        .to_list(None)
    assert [d["_id"] for d in found] == ["co"]


async def test_product_view_days_are_upserted_counted_and_read_by_a_day_range(db):
    """The writer's form for ``analytics_product_views``: one unordered bulk write of upserts, each ``$inc`` of the
    views and ``$addToSet`` + ``$each`` of the shoppers (or, with none, ``$setOnInsert`` of an empty list), with
    ``$setOnInsert`` of the day, product and expiry (a date stays a date, for the TTL); a refused upsert is named
    by its index; the reports read a range of ISO day strings."""
    coll = db.c_views
    await coll.create_index("day")
    expires = MIDNIGHT + timedelta(days=181)

    def upsert(day: str, pid: str, views: int, viewers: list[str]) -> UpdateOne:
        on_insert = {"day": day, "product_id": pid, "expires_at": expires}
        update = {"$setOnInsert": on_insert, "$inc": {"views": views}}
        if viewers:
            update["$addToSet"] = {"viewers": {"$each": viewers}}
        else:
            on_insert["viewers"] = []
        return UpdateOne({"_id": f"apv_{day}_{pid}"}, update, upsert=True)

    first = await coll.bulk_write([upsert("2030-04-08", "prd_a", 2, ["v:1"]), upsert("2030-04-09", "prd_a", 1, []),
                                   upsert("2030-04-10", "prd_b", 1, ["u:usr_c"])], ordered=False)
    assert (first.upserted_count, first.matched_count) == (3, 0)
    again = await coll.bulk_write([upsert("2030-04-08", "prd_a", 3, ["v:1", "v:2", "u:usr_c"]),
                                   upsert("2030-04-09", "prd_a", 1, ["v:3"])], ordered=False)
    assert (again.upserted_count, again.matched_count) == (0, 2)
    docs = await coll.find({"day": {"$gte": "2030-04-08", "$lte": "2030-04-09"}},
                           {"day": 1, "product_id": 1, "views": 1, "viewers": 1}).to_list(None)
    by_id = {d["_id"]: d for d in docs}
    assert set(by_id) == {"apv_2030-04-08_prd_a", "apv_2030-04-09_prd_a"}
    assert (by_id["apv_2030-04-08_prd_a"]["views"], sorted(by_id["apv_2030-04-08_prd_a"]["viewers"])) == \
        (5, ["u:usr_c", "v:1", "v:2"])
    assert (by_id["apv_2030-04-09_prd_a"]["views"], by_id["apv_2030-04-09_prd_a"]["viewers"]) == (2, ["v:3"])
    stored = await coll.find_one({"_id": "apv_2030-04-10_prd_b"})
    assert (stored["day"], stored["product_id"], stored["expires_at"]) == ("2030-04-10", "prd_b", expires)
    assert await coll.count_documents({"expires_at": {"$lte": expires}}) == 3  # dates, comparable
    # A refused upsert (here by a unique index on the product) is named by its index; the others are written.
    refusing = db.c_views_refusing
    await refusing.create_index("product_id", unique=True, name="one_day_per_product")
    await refusing.bulk_write([upsert("2030-04-10", "prd_b", 1, [])])
    with pytest.raises(BulkWriteError) as caught:
        await refusing.bulk_write([upsert("2030-04-11", "prd_c", 1, []), upsert("2030-04-11", "prd_b", 1, [])],
                                  ordered=False)
    assert [(e["index"], e["code"]) for e in caught.value.details["writeErrors"]] == [(1, 11000)]
    assert [(d["_id"], d["views"]) for d in await refusing.find({}).sort("_id").to_list(None)] == [
        ("apv_2030-04-10_prd_b", 1), ("apv_2030-04-11_prd_c", 1)]
