"""Contract of the query and update forms used by live events, asserted by reading back (embedded server and
real MongoDB via ``MONGODB_URL``):

- the stock change ``$inc`` of a size, ``stock_total`` and ``stock_seq`` in one conditional update, with the
  document returned AFTER it (the event's numbers and its order), under concurrent writers;
- a stream ticket taken with ``find_one_and_delete`` on ``{_id, scope, order_id}``: only an exact match is
  taken, and of concurrent takers exactly one gets it;
- the staff board's ``status $in`` + ``created_at`` sort + limit;
- the session re-check: ``family_id`` equality with ``revoked_at: None`` (null equality beside an equality,
  no range: the expiry is compared in Python).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pymongo import ReturnDocument

from app.core.clock import utcnow
from app.core.ids import new_id
from app.models.auth import RefreshSession
from app.models.events import StreamTicket
from app.models.order import Order
from tests.factories import make_order_doc, make_product


async def test_stock_change_increments_its_sequence_atomically(app):
    product = await make_product(stock={"standard": 30}, prices={"standard": 4500}, stock_total=30)
    coll = product.get_pymongo_collection()

    async def take() -> dict | None:
        return await coll.find_one_and_update(
            {"_id": product.id, "stock.standard": {"$gte": 1}},
            {"$inc": {"stock.standard": -1, "stock_total": -1, "stock_seq": 1}},
            projection={"stock": 1, "stock_seq": 1, "status": 1}, return_document=ReturnDocument.AFTER)

    results = [r for r in await asyncio.gather(*(take() for _ in range(40))) if r is not None]
    assert len(results) == 30
    assert sorted(r["stock_seq"] for r in results) == list(range(1, 31))  # each change has its own sequence
    assert sorted(r["stock"]["standard"] for r in results) == list(range(0, 30))
    assert all(r["stock"]["standard"] == 30 - r["stock_seq"] for r in results)  # the state after that change
    raw = await coll.find_one({"_id": product.id})
    assert (raw["stock"]["standard"], raw["stock_total"], raw["stock_seq"]) == (0, 0, 30)


async def test_a_ticket_is_taken_once_and_only_by_an_exact_match(app):
    coll = StreamTicket.get_pymongo_collection()
    order_id = new_id("ord")
    await StreamTicket(id="h1", scope="order", order_id=order_id, user_id="usr_x",
                       expires_at=utcnow() + timedelta(seconds=30)).insert()
    assert await coll.find_one_and_delete({"_id": "h1", "scope": "staff", "order_id": ""}) is None
    assert await coll.find_one_and_delete({"_id": "h1", "scope": "order", "order_id": new_id("ord")}) is None
    takers = await asyncio.gather(*(coll.find_one_and_delete({"_id": "h1", "scope": "order", "order_id": order_id})
                                    for _ in range(10)))
    taken = [t for t in takers if t is not None]
    assert len(taken) == 1 and taken[0]["user_id"] == "usr_x"
    assert StreamTicket.model_validate(taken[0]).expires_at > utcnow()  # a real (aware) date after the round trip
    assert await coll.count_documents({"_id": "h1"}) == 0


async def test_board_orders_by_status_newest_first(app):
    docs = [make_order_doc(status=s) for s in ("paid", "pending_payment", "confirmed", "paid", "cancelled")]
    for i, doc in enumerate(docs):
        doc.created_at = utcnow() + timedelta(seconds=i)
        await doc.insert()
    found = await Order.find({"status": {"$in": ["paid", "confirmed"]}}).sort([("created_at", -1)]).limit(2).to_list()
    assert [o.id for o in found] == [docs[3].id, docs[2].id]


async def test_live_sessions_of_a_family(app):
    family = new_id("fam")
    later = utcnow() + timedelta(days=1)
    for revoked in (utcnow(), None, utcnow()):
        await RefreshSession(user_id="usr_x", family_id=family, token_hash=new_id("h"), expires_at=later,
                             revoked_at=revoked).insert()
    await RefreshSession(user_id="usr_x", family_id=new_id("fam"), token_hash=new_id("h"), expires_at=later).insert()
    live = await RefreshSession.find({"family_id": family, "revoked_at": None}).to_list()
    assert len(live) == 1 and live[0].expires_at > utcnow()
    await RefreshSession.get_pymongo_collection().update_many({"family_id": family, "revoked_at": None},
                                                              {"$set": {"revoked_at": utcnow()}})
    assert await RefreshSession.find({"family_id": family, "revoked_at": None}).to_list() == []
