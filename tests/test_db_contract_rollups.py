"""Contract tests: the query and update forms of the daily sales rollups (app/services/sales_rollups.py) and of
the reports read from them, asserted by reading back. They run against whatever MONGODB_URL points to.

Divergences of the embedded server written around (the forms below are the ones both servers accept):
- an upsert whose ``$inc`` has dotted paths stores literal ``"a.b"`` keys: a day document is created first with
  ``$setOnInsert`` of its whole zeroed shape, then changed by plain updates;
- a range filter on an array of strings (``{"applied": {"$lt": x}}``) matches every document, even empty
  arrays: tokens are pruned with ``$pull`` and the range, which is evaluated correctly;
- a string ``_id`` that starts with an ISO date and a separator (``"2030-04-09:USD"``) is stored but never
  found by equality: ids are ``sd_2030-04-09_USD``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.core.atomic import ensure_document

pytestmark = pytest.mark.usefixtures("app")

START = datetime(2030, 4, 9, 4, 0, tzinfo=UTC)  # shop midnight in New York (EDT)
END = START + timedelta(days=1)


@pytest.fixture
def settings(make_settings):
    return make_settings(workers_enabled=False)


@pytest.fixture
def db(app, settings):
    return app.state.runtime.mongo[settings.mongodb_db]


ZERO = {"day": "2030-04-09", "currency": "USD", "gross": 0, "orders": 0, "products": {}, "names": {}, "applied": [],
        "rebuilding": False}


async def test_a_change_is_applied_once_per_token(db):
    days = db.c_days
    await ensure_document(days, "sd_2030-04-09_USD", ZERO)
    await ensure_document(days, "sd_2030-04-09_USD", {**ZERO, "gross": 99})  # exists: nothing changes
    guard = {"_id": "sd_2030-04-09_USD", "applied": {"$nin": ["rlt_1"]}, "rebuilding": False}
    change = {"$inc": {"gross": 4500, "orders": 1, "products.prd_a.units": 2, "products.prd_a.revenue": 4000},
              "$max": {"names.prd_a": "2030-04-09T14:00:00.000000Z|Rose"}, "$addToSet": {"applied": "rlt_1"},
              "$currentDate": {"updated_at": True}}
    assert (await days.update_one(guard, change)).matched_count == 1
    assert (await days.update_one(guard, change)).matched_count == 0  # a replay finds its token
    later = {"$inc": {"refunded": 700, "products.prd_b.units": 1},
             "$max": {"names.prd_a": "2030-04-09T09:00:00.000000Z|Old name"}, "$addToSet": {"applied": "rlt_2"}}
    assert (await days.update_one({**guard, "applied": {"$nin": ["rlt_2"]}}, later)).matched_count == 1
    doc = await days.find_one({"_id": "sd_2030-04-09_USD"})
    assert (doc["gross"], doc["orders"], doc["refunded"]) == (4500, 1, 700)
    assert doc["products"] == {"prd_a": {"units": 2, "revenue": 4000}, "prd_b": {"units": 1}}
    assert doc["names"] == {"prd_a": "2030-04-09T14:00:00.000000Z|Rose"}  # $max keeps the latest line's name
    assert doc["applied"] == ["rlt_1", "rlt_2"] and doc["updated_at"].tzinfo is not None

    await days.update_one({"_id": "sd_2030-04-09_USD"}, {"$set": {"rebuilding": True}})
    assert (await days.update_one({**guard, "applied": {"$nin": ["rlt_3"]}}, later)).matched_count == 0
    await days.update_one({"_id": "sd_2030-04-09_USD"}, {"$set": {"rebuilding": False}})
    assert (await days.update_one({**guard, "applied": {"$nin": ["rlt_3"]}}, later)).matched_count == 1


async def test_tokens_are_pruned_by_a_ranged_pull(db):
    await db.c_days.insert_many([{"_id": "sd_2030-04-08_USD", "applied": ["rlt_01A", "rlt_01B", "rlt_02C"]},
                                 {"_id": "sd_2030-04-09_USD", "applied": ["rlt_03D"]},
                                 {"_id": "sd_2030-04-10_USD", "applied": []}])
    await db.c_days.update_many({}, {"$pull": {"applied": {"$lt": "rlt_02"}}})
    stored = {d["_id"]: d["applied"] for d in await db.c_days.find({}).to_list(None)}
    assert stored == {"sd_2030-04-08_USD": ["rlt_02C"], "sd_2030-04-09_USD": ["rlt_03D"], "sd_2030-04-10_USD": []}


async def test_days_of_a_currency_in_a_range_without_the_markers(db):
    await db.c_days.create_index([("currency", 1), ("day", 1)])
    await db.c_days.insert_many([{"_id": f"sd_{day}_{cur}", "day": day, "currency": cur, "gross": 1,
                                  "applied": ["rlt_x"]}
                                 for day in ("2030-04-07", "2030-04-08", "2030-04-09", "2030-04-10")
                                 for cur in ("USD", "EUR")])
    found = await db.c_days.find({"currency": "USD", "day": {"$gte": "2030-04-08", "$lte": "2030-04-09"}},
                                 {"day": 1, "gross": 1}).to_list(None)
    assert sorted((d["_id"], d["day"], d["gross"]) for d in found) == [
        ("sd_2030-04-08_USD", "2030-04-08", 1), ("sd_2030-04-09_USD", "2030-04-09", 1)]
    assert all("applied" not in d for d in found)
    assert await db.c_days.find_one({"day": "2030-04-10"}, {"_id": 1}) is not None


async def test_an_orders_share_is_set_and_its_changes_removed_under_guards(db):
    orders = db.c_orders
    await orders.insert_many([{"_id": "o_old", "version": 3},
                              {"_id": "o_new", "version": 1, "rollup": {"seq": 2, "pending_any": True,
                                                                         "pending": [{"token": "rlt_1"}],
                                                                         "since": START}}])
    # the rebuild's mark: the share, under the version guard (a missing `rollup` is created)
    res = await orders.update_one({"_id": "o_old", "version": 3},
                                  {"$set": {"rollup.counted": {"day_id": "sd_2030-04-09_USD", "gross": 1}},
                                   "$inc": {"version": 1}})
    assert res.matched_count == 1
    assert await orders.find_one({"_id": "o_old"}) == {"_id": "o_old", "version": 4,
                                                        "rollup": {"counted": {"day_id": "sd_2030-04-09_USD",
                                                                               "gross": 1}}}
    # removing applied changes: guarded by rollup.seq
    assert (await orders.update_one({"_id": "o_new", "rollup.seq": 1},
                                    {"$set": {"rollup.pending": []}})).matched_count == 0
    res = await orders.update_one({"_id": "o_new", "rollup.seq": 2},
                                  {"$set": {"rollup.pending": [], "rollup.pending_any": False}})
    assert res.matched_count == 1
    stored = await orders.find_one({"_id": "o_new"})
    assert stored["rollup"]["pending"] == [] and stored["rollup"]["since"] == START
    # the background job's filter: pending orders whose change is older than the retry delay
    await orders.insert_one({"_id": "o_due", "rollup": {"pending_any": True, "since": START}})
    await orders.insert_one({"_id": "o_recent", "rollup": {"pending_any": True, "since": END}})
    due = await orders.find({"rollup.pending_any": True, "rollup.since": {"$lte": START + timedelta(hours=1)}},
                            {"_id": 1}).to_list(None)
    assert [d["_id"] for d in due] == ["o_due"]


async def test_counts_of_a_status_in_a_date_range_and_currencies_of_a_day(db):
    placed = [START - timedelta(milliseconds=1), START, START + timedelta(hours=5), END - timedelta(milliseconds=1),
              END]
    await db.c_orders.insert_many([{"_id": f"o{i}", "status": "paid" if i != 2 else "expired", "created_at": at,
                                    "amounts": {"currency": "EUR" if i == 3 else "USD"}}
                                   for i, at in enumerate(placed)])
    window = {"$gte": START, "$lt": END}
    assert await db.c_orders.count_documents({"status": "paid", "created_at": window}) == 2  # o1, o3
    assert await db.c_orders.count_documents({"status": "expired", "created_at": window}) == 1
    assert sorted(await db.c_orders.distinct("amounts.currency", {"created_at": window})) == ["EUR", "USD"]
    await db.c_users.insert_many([{"_id": "u1", "role": "customer", "created_at": START},
                                  {"_id": "u2", "role": "staff", "created_at": START},
                                  {"_id": "u3", "role": "customer", "created_at": END}])
    assert await db.c_users.count_documents({"role": "customer", "created_at": window}) == 1
