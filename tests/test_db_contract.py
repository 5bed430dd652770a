"""Database contract: every query/update form the foundation relies on, each asserted by reading back.

Runs against MONGODB_URL when set (real MongoDB) and the embedded nx-27017 server otherwise, so the same
file certifies both. A new query form enters the app together with its test here (or in
tests/test_db_contract_<area>.py).
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.core.clock import utcnow
from app.core.ids import new_id
from app.core.jobs import claim, release
from app.core.pagination import decode_cursor, encode_cursor, keyset_filter


async def test_unique_index_violation_raises_duplicate_key(db):
    await db.users.create_indexes([IndexModel([("email", ASCENDING)], unique=True, name="email_unique")])
    await db.users.insert_one({"_id": new_id("usr"), "email": "a@example.com"})
    with pytest.raises(DuplicateKeyError):
        await db.users.insert_one({"_id": new_id("usr"), "email": "a@example.com"})
    assert await db.users.count_documents({"email": "a@example.com"}) == 1


async def test_unique_index_under_concurrent_inserts_admits_one(db):
    await db.users.create_indexes([IndexModel([("email", ASCENDING)], unique=True)])

    async def insert():
        try:
            await db.users.insert_one({"_id": new_id("usr"), "email": "race@example.com"})
            return True
        except DuplicateKeyError:
            return False

    assert sorted(await asyncio.gather(*(insert() for _ in range(10)))) == [False] * 9 + [True]
    assert await db.users.count_documents({}) == 1


async def test_version_guarded_whole_array_write_hits_and_misses(db):
    now = utcnow()
    addresses = [{"id": "adr_1", "zip": "10012", "is_default": True, "created_at": now}]
    await db.users.insert_one({"_id": "usr_1", "addresses": addresses, "version": 0})

    new = [*addresses, {"id": "adr_2", "zip": "94105", "is_default": False, "created_at": now}]
    hit = await db.users.update_one({"_id": "usr_1", "version": 0},
                                    {"$set": {"addresses": new}, "$inc": {"version": 1}})
    assert hit.matched_count == 1
    stale = await db.users.update_one({"_id": "usr_1", "version": 0},
                                      {"$set": {"addresses": []}, "$inc": {"version": 1}})
    assert stale.matched_count == 0

    doc = await db.users.find_one({"_id": "usr_1"})
    assert doc["version"] == 1
    assert doc["addresses"] == new  # sub-documents intact, not JSON strings
    assert doc["addresses"][1]["created_at"] == now and doc["addresses"][1]["created_at"].tzinfo is not None


async def test_version_guard_on_a_document_without_the_field(db):
    await db.users.insert_one({"_id": "usr_old", "addresses": []})
    res = await db.users.update_one({"_id": "usr_old", "version": {"$exists": False}},
                                    {"$set": {"addresses": [{"id": "adr_1"}]}, "$inc": {"version": 1}})
    assert res.matched_count == 1
    assert await db.users.find_one({"_id": "usr_old"}) == {"_id": "usr_old", "addresses": [{"id": "adr_1"}],
                                                            "version": 1}
    again = await db.users.update_one({"_id": "usr_old", "version": {"$exists": False}}, {"$set": {"addresses": []}})
    assert again.matched_count == 0


async def test_scalar_add_to_set_and_pull(db):
    await db.users.insert_one({"_id": "usr_1", "favorites": ["prd_a"]})
    await db.users.update_one({"_id": "usr_1"}, {"$addToSet": {"favorites": "prd_b"}})
    await db.users.update_one({"_id": "usr_1"}, {"$addToSet": {"favorites": "prd_a"}})  # already there
    assert (await db.users.find_one({"_id": "usr_1"}))["favorites"] == ["prd_a", "prd_b"]
    await db.users.update_one({"_id": "usr_1"}, {"$pull": {"favorites": "prd_a"}})
    assert (await db.users.find_one({"_id": "usr_1"}))["favorites"] == ["prd_b"]


async def test_null_matches_missing_and_null_but_not_values(db):
    await db.s.insert_many([{"_id": "a"}, {"_id": "b", "revoked_at": None}, {"_id": "c", "revoked_at": utcnow()}])
    assert {d["_id"] async for d in db.s.find({"revoked_at": None})} == {"a", "b"}


async def test_boolean_set_by_update_matches_equality_filters(db):
    """Deactivate/reactivate and the last-admin count. (The embedded server stores a ``$set`` boolean as
    0/1, which reads back as an int but matches True/False filters; models coerce it to bool.)"""
    await db.users.insert_many([{"_id": "a", "is_active": True}, {"_id": "b", "is_active": False}])
    await db.users.update_one({"_id": "a"}, {"$set": {"is_active": False}})
    await db.users.update_one({"_id": "b"}, {"$set": {"is_active": True}})
    assert [d["_id"] async for d in db.users.find({"is_active": True})] == ["b"]
    assert [d["_id"] async for d in db.users.find({"is_active": False})] == ["a"]
    assert not (await db.users.find_one({"_id": "a"}))["is_active"]


async def test_update_many_changes_only_matching_documents(db):
    now = utcnow()
    await db.sessions.insert_many([
        {"_id": "s1", "user_id": "u1", "family_id": "f1", "revoked_at": None},
        {"_id": "s2", "user_id": "u1", "family_id": "f1", "revoked_at": None},
        {"_id": "s3", "user_id": "u1", "family_id": "f2", "revoked_at": None},
        {"_id": "s4", "user_id": "u2", "family_id": "f1x", "revoked_at": None},
    ])
    res = await db.sessions.update_many({"family_id": "f1", "revoked_at": None},
                                        {"$set": {"revoked_at": now, "revoked_reason": "reuse-detected"}})
    assert res.matched_count == 2
    docs = {d["_id"]: d async for d in db.sessions.find({})}
    assert docs["s1"]["revoked_reason"] == docs["s2"]["revoked_reason"] == "reuse-detected"
    assert docs["s3"]["revoked_at"] is None and docs["s4"]["revoked_at"] is None
    assert "revoked_reason" not in docs["s3"]


async def test_datetime_range_with_tz_aware_client(db):
    now = utcnow()
    await db.tokens.insert_many([
        {"_id": "past", "expires_at": now - timedelta(minutes=1), "used_at": None},
        {"_id": "future", "expires_at": now + timedelta(minutes=59), "used_at": None},
    ])
    assert [d["_id"] async for d in db.tokens.find({"expires_at": {"$gt": now}})] == ["future"]
    assert [d["_id"] async for d in db.tokens.find({"expires_at": {"$lte": now}})] == ["past"]
    back = await db.tokens.find_one({"_id": "future"})
    assert back["expires_at"] == now + timedelta(minutes=59) and back["expires_at"].utcoffset() == timedelta(0)


async def test_single_use_consume_with_find_one_and_update(db):
    now = utcnow()
    await db.tokens.insert_one({"_id": "t", "token_hash": "h", "expires_at": now + timedelta(hours=1), "used_at": None})

    async def consume():
        return await db.tokens.find_one_and_update(
            {"token_hash": "h", "used_at": None, "expires_at": {"$gt": utcnow()}}, {"$set": {"used_at": utcnow()}})

    results = await asyncio.gather(*(consume() for _ in range(8)))
    assert sum(r is not None for r in results) == 1
    assert (await db.tokens.find_one({"_id": "t"}))["used_at"] is not None


async def test_datetime_inside_a_sub_document_set_by_update_stays_a_date(db):
    """The form leases rely on (see app/core/jobs.py); a scalar datetime ``$set`` is stored as a string
    by the embedded server, so nothing the app range-queries is written that way."""
    now = utcnow()
    await db.items.insert_one({"_id": "i"})
    await db.items.update_one({"_id": "i"}, {"$set": {"lease": {"owner": "w", "until": now - timedelta(seconds=1)}}})
    back = await db.items.find_one({"_id": "i"})
    assert back["lease"]["until"] == now - timedelta(seconds=1) and back["lease"]["until"].tzinfo is not None
    assert await db.items.count_documents({"lease.until": {"$lt": now}}) == 1
    assert await db.items.count_documents({"lease.until": {"$gte": now}}) == 0


async def test_claim_takes_free_or_expired_items_in_order_and_never_a_held_one(db):
    now = utcnow()
    await db.jobs.insert_many([
        {"_id": "b_missing", "status": "pending", "at": now - timedelta(seconds=4)},
        {"_id": "a_null", "status": "pending", "at": now - timedelta(seconds=5), "lease": None},
        {"_id": "c_expired", "status": "pending", "at": now - timedelta(seconds=3),
         "lease": {"owner": "dead", "token": "t0", "until": now - timedelta(seconds=1)}},
        {"_id": "d_held", "status": "pending", "at": now - timedelta(seconds=9),
         "lease": {"owner": "alive", "token": "t1", "until": now + timedelta(minutes=1)}},
        {"_id": "e_done", "status": "sent", "at": now - timedelta(seconds=9)},
        {"_id": "f_later", "status": "pending", "at": now + timedelta(minutes=5)},
    ])
    due = {"status": "pending", "at": {"$lte": utcnow()}}
    taken = []
    while (item := await claim(db.jobs, due, lease_seconds=60, sort_key="at")) is not None:
        taken.append(item)
        assert len(taken) <= 3
    assert [t["_id"] for t in taken] == ["a_null", "b_missing", "c_expired"]
    stored = await db.jobs.find_one({"_id": "c_expired"})
    assert stored["lease"]["token"] == taken[2]["lease"]["token"] != "t0"
    assert stored["lease"]["until"] > utcnow()

    # Releasing needs the claim's own token; a retry time holds the item for nobody until then.
    assert await release(db.jobs, {**taken[0], "lease": {"token": "t0"}}, changes={"status": "x"}) is False
    retry_at = utcnow() + timedelta(seconds=30)
    assert await release(db.jobs, taken[0], changes={"attempts": 1}, retry_at=retry_at) is True
    assert await release(db.jobs, taken[1], changes={"status": "sent"}) is True
    a, b = await db.jobs.find_one({"_id": "a_null"}), await db.jobs.find_one({"_id": "b_missing"})
    assert a["lease"] == {"owner": None, "token": None, "until": retry_at} and a["attempts"] == 1
    assert b["lease"] is None and b["status"] == "sent"
    assert await claim(db.jobs, due, lease_seconds=60, sort_key="at") is None  # a waits for its retry time


async def test_string_id_not_equal_with_count(db):
    await db.users.insert_many([{"_id": "usr_a", "role": "admin", "is_active": True},
                                {"_id": "usr_b", "role": "admin", "is_active": True},
                                {"_id": "usr_c", "role": "admin", "is_active": False}])
    assert await db.users.count_documents({"role": "admin", "is_active": True, "_id": {"$ne": "usr_a"}}) == 1


@pytest.mark.parametrize("sort", [
    [("_id", -1)],
    [("_id", 1)],
    [("price", 1), ("_id", 1)],
    [("price", -1), ("_id", -1)],
    [("price", 1), ("_id", -1)],
])
async def test_cursor_pagination_on_string_ids(db, sort):
    docs = [{"_id": new_id("prd"), "price": (i * 7) % 5 * 100} for i in range(23)]  # repeated prices
    await db.p.insert_many(docs)
    expected = [d["_id"] async for d in db.p.find({}).sort(sort)]
    assert len(expected) == 23
    seen: list[str] = []
    cursor = None
    while True:
        kinds = [str if f == "_id" else int for f, _ in sort]
        query = keyset_filter(sort, decode_cursor(cursor, kinds, "p")) if cursor else {}
        page = await db.p.find(query).sort(sort).limit(5).to_list()
        seen += [d["_id"] for d in page]
        if len(page) < 5:
            break
        cursor = encode_cursor([page[-1][f] for f, _ in sort], "p")
    assert seen == expected


async def test_regex_search_anchored_case_insensitive_and_escaped(db):
    await db.users.insert_many([
        {"_id": "1", "email": "rose@example.com", "first_name": "Rose"},
        {"_id": "2", "email": "rosemary@example.com", "first_name": "ROSEMARY"},
        {"_id": "3", "email": "primrose@example.com", "first_name": "Primrose"},
        {"_id": "4", "email": "abc@example.com", "first_name": "A.c"},
    ])
    anchored = {d["_id"] async for d in db.users.find({"first_name": {"$regex": "^ros", "$options": "i"}})}
    assert anchored == {"1", "2"}
    contains = {d["_id"] async for d in db.users.find({"first_name": {"$regex": "rose", "$options": "i"}})}
    assert contains == {"1", "2", "3"}
    literal = {d["_id"] async for d in db.users.find({"first_name": {"$regex": re.escape("a.c"), "$options": "i"}})}
    assert literal == {"4"}
    either = {d["_id"] async for d in db.users.find({"$or": [{"email": {"$regex": re.escape("abc@")}},
                                                             {"first_name": {"$regex": "^prim", "$options": "i"}}]})}
    assert either == {"3", "4"}


async def test_find_one_and_update_returns_the_document_after(db):
    await db.c.insert_one({"_id": "x", "n": 1})
    after = await db.c.find_one_and_update({"_id": "x"}, {"$inc": {"n": 1}}, return_document=ReturnDocument.AFTER)
    assert after["n"] == 2 and (await db.c.find_one({"_id": "x"}))["n"] == 2


async def test_exists_filter_and_unset_used_by_the_migration(db):
    await db.users.insert_many([{"_id": "old"}, {"_id": "new", "preferences": {"newsletter": True}}])
    await db.users.update_many({"preferences": {"$exists": False}},
                               {"$set": {"preferences": {"newsletter": False}, "prefs_migrated": True}})
    assert (await db.users.find_one({"_id": "old"}))["preferences"] == {"newsletter": False}
    assert (await db.users.find_one({"_id": "new"}))["preferences"] == {"newsletter": True}
    await db.users.update_many({"prefs_migrated": True}, {"$unset": {"preferences": "", "prefs_migrated": ""}})
    assert await db.users.find_one({"_id": "old"}) == {"_id": "old"}
