"""Database contract of the session and one-time-link forms (app/services/auth.py), each read back."""

from __future__ import annotations

import asyncio

from app.core.clock import utcnow


async def test_ending_a_family_marks_sessions_with_and_without_the_field(db):  # noqa: F811
    """``update_many({family, ended_reason: None})`` must match sessions stored before the field existed."""
    await db.sessions.insert_many([
        {"_id": "old", "family_id": "f", "revoked_at": utcnow(), "revoked_reason": "rotated"},  # no ended_reason
        {"_id": "cur", "family_id": "f", "revoked_at": None, "ended_reason": None},
        {"_id": "gone", "family_id": "f", "ended_reason": "logout"},
        {"_id": "other", "family_id": "g", "revoked_at": None, "ended_reason": None},
    ])
    await db.sessions.update_many({"family_id": "f", "ended_reason": None}, {"$set": {"ended_reason": "reuse"}})
    got = {d["_id"]: d.get("ended_reason") async for d in db.sessions.find({})}
    assert got == {"old": "reuse", "cur": "reuse", "gone": "logout", "other": None}
    # The per-request check: one _id lookup projected to two fields.
    raw = await db.sessions.find_one({"_id": "other"}, {"user_id": 1, "ended_reason": 1})
    assert raw == {"_id": "other", "ended_reason": None}


async def test_spending_a_link_by_id_under_a_null_guard_happens_once(db):  # noqa: F811
    await db.tokens.insert_one({"_id": "t", "used_at": None, "stamp": 0})

    async def spend():
        res = await db.tokens.update_one({"_id": "t", "used_at": None}, {"$set": {"used_at": utcnow()}})
        return res.modified_count

    assert sorted(await asyncio.gather(*(spend() for _ in range(8)))) == [0] * 7 + [1]
    assert (await db.tokens.find_one({"_id": "t"}))["used_at"] is not None


async def test_inc_creates_a_missing_counter(db):  # noqa: F811
    """``$inc`` of ``security_stamp`` on a user stored before the field existed starts it at 1."""
    await db.users.insert_one({"_id": "u"})
    await db.users.update_one({"_id": "u"}, {"$inc": {"security_stamp": 1}})
    assert (await db.users.find_one({"_id": "u"}))["security_stamp"] == 1
