"""Contract of the query and update forms used by marketing email, asserted by reading back (embedded server
and real MongoDB via ``MONGODB_URL``):

- a campaign batch queued with one unordered ``insert_many``: duplicates of the unique ``dedupe_key`` are
  refused one by one (code 11000), the others stored, and the count of what was stored is exact;
- campaign statistics: ``$match campaign_id $in`` + ``$group`` by campaign with ``$sum`` of ``$cond`` /
  ``$in`` per status;
- confirmed subscribers paged by ``status`` equality + ``_id $gt`` cursor, sorted by ``_id``;
- audiences: orders by ``contact.email $in`` + ``status $in`` (the lines are checked in Python:
  ``lines.product_id $in`` and ``$elemMatch`` with ``$in`` match nothing on the embedded server, and
  ``distinct`` ignores an ``$in`` filter there);
- a campaign's schedule inside a sub-document written with ``$set`` stays a date for the due range;
- the abandoned-cart scan: ``user_id $type string`` + ``updated_at`` range + the ``(updated_at, _id)``
  keyset (datetime equality inside ``$or``);
- the job cursor created with ``$setOnInsert`` upsert (a second upsert changes nothing) and its mark written
  as a sub-document;
- waiting back-in-stock requests made due with one ``update_many`` on product, size and status;
- an unsubscribe counted once: ``status $in`` guard, then ``$inc``.
"""

from __future__ import annotations

from datetime import timedelta

from pymongo.errors import BulkWriteError

from app.core.clock import utcnow
from app.core.pagination import keyset_filter
from app.models.cart import Cart
from app.models.marketing import Campaign, JobCursor, NewsletterSubscription, StockAlert
from app.models.order import Order
from app.models.outbox import OutboxEmail
from tests.factories import build_order, line_for, make_product


def outbox(key: str, campaign: str | None = "cmp_1", status: str = "pending") -> dict:
    return OutboxEmail(dedupe_key=key, to=f"{key}@example.com", subject="s", text="t", template="campaign",
                       campaign_id=campaign, status=status, marketing=True).model_dump(by_alias=True)


async def test_unordered_batch_insert_skips_only_the_duplicates(app):
    coll = OutboxEmail.get_pymongo_collection()
    await coll.insert_many([outbox(f"k{i}") for i in range(3)])
    try:
        await coll.insert_many([outbox(f"k{i}") for i in range(1, 6)], ordered=False)
        raise AssertionError("the duplicates were accepted")
    except BulkWriteError as exc:
        assert exc.details["nInserted"] == 3
        assert sorted(e["code"] for e in exc.details["writeErrors"]) == [11000, 11000]
    assert sorted(d["dedupe_key"] for d in await coll.find({}, {"dedupe_key": 1}).to_list(None)) == [
        f"k{i}" for i in range(6)]


async def test_campaign_statistics_aggregation(app):
    coll = OutboxEmail.get_pymongo_collection()
    statuses = ["sent", "sent", "bounced", "failed", "pending", "cancelled"]
    await coll.insert_many([outbox(f"a{i}", "cmp_a", s) for i, s in enumerate(statuses)]
                           + [outbox("b0", "cmp_b", "sent"), outbox("other", None, "sent")])

    def count(*values: str) -> dict:
        return {"$sum": {"$cond": [{"$in": ["$status", list(values)]}, 1, 0]}}

    rows = await (await coll.aggregate([
        {"$match": {"campaign_id": {"$in": ["cmp_a", "cmp_b", "cmp_c"]}}},
        {"$group": {"_id": "$campaign_id", "recipients": {"$sum": 1}, "sent": count("sent"),
                    "failed": count("failed", "bounced"), "queued": count("pending")}}])).to_list(None)
    assert sorted((r["_id"], r["recipients"], r["sent"], r["failed"], r["queued"]) for r in rows) == [
        ("cmp_a", 6, 2, 2, 1), ("cmp_b", 1, 1, 0, 0)]


async def test_confirmed_subscribers_page_after_a_cursor(app):
    docs = [NewsletterSubscription(email=f"s{i}@example.com", status="confirmed" if i % 3 else "pending")
            for i in range(12)]
    await NewsletterSubscription.insert_many(docs)
    confirmed = sorted(d.id for d in docs if d.status == "confirmed")
    page = await NewsletterSubscription.find({"status": "confirmed", "_id": {"$gt": confirmed[2]}}).sort(
        [("_id", 1)]).limit(4).to_list()
    assert [d.id for d in page] == confirmed[3:7]
    first = await NewsletterSubscription.find({"status": "confirmed", "_id": {"$gt": ""}}).sort(
        [("_id", 1)]).limit(2).to_list()
    assert [d.id for d in first] == confirmed[:2]


async def test_audience_orders_by_address_and_status(app):
    product = await make_product()
    for i, (email, status) in enumerate([("a@example.com", "paid"), ("b@example.com", "expired"),
                                         ("c@example.com", "delivered"), ("a@example.com", "cancelled")]):
        order = build_order([line_for(product)], number=f"AF-5{i}", email=email)
        order.status = status
        await order.insert()
    rows = await Order.get_pymongo_collection().find(
        {"contact.email": {"$in": ["a@example.com", "b@example.com", "c@example.com"]},
         "status": {"$in": ["paid", "delivered"]}}, {"contact": 1, "lines": 1, "created_at": 1}).to_list(None)
    assert sorted(r["contact"]["email"] for r in rows) == ["a@example.com", "c@example.com"]
    assert all(r["lines"][0]["product_id"] == product.id and r["created_at"].tzinfo for r in rows)


async def test_schedule_sub_document_stays_a_date(app):
    coll = Campaign.get_pymongo_collection()
    campaign = Campaign(name="n", subject="s", created_by="usr_x")
    await campaign.insert()
    now = utcnow()
    await coll.update_one({"_id": campaign.id}, {"$set": {"status": "scheduled", "schedule": {"send_at": now}}})
    due = {"status": "scheduled", "schedule.send_at": {"$lte": now + timedelta(seconds=1)}}
    assert await coll.count_documents(due) == 1
    assert await coll.count_documents({**due, "schedule.send_at": {"$lte": now - timedelta(seconds=1)}}) == 0


async def test_cart_scan_window_and_keyset(app):
    end = utcnow()
    carts = [Cart(id=f"crt_{i}", user_id=f"usr_{i}" if i % 2 else None, updated_at=end - timedelta(minutes=i % 4))
             for i in range(8)]
    for cart in carts:
        await cart.insert()
    order = [("updated_at", 1), ("_id", 1)]
    after = keyset_filter(order, [end - timedelta(minutes=3), "crt_3"])
    query = {"$and": [{"user_id": {"$type": "string"}, "updated_at": {"$lte": end - timedelta(minutes=1)}}, after]}
    found = [c.id for c in await Cart.find(query).sort(order).to_list()]
    # crt_3 (3 min, the cursor itself) is excluded, crt_7 (3 min, later id) included; guests and fresh carts not.
    assert found == ["crt_7", "crt_1", "crt_5"]


async def test_job_cursor_upsert_and_mark(app):
    coll = JobCursor.get_pymongo_collection()
    for _ in range(2):
        await coll.update_one({"_id": "scan"}, {"$setOnInsert": {"mark": None, "lease": None}}, upsert=True)
    at = utcnow()
    await coll.update_one({"_id": "scan"}, {"$set": {"mark": {"at": at, "id": "crt_1"}}})
    await coll.update_one({"_id": "scan"}, {"$setOnInsert": {"mark": None, "lease": None}}, upsert=True)
    cursor = await JobCursor.get("scan")
    assert cursor.mark.at == at and cursor.mark.id == "crt_1"
    assert await coll.count_documents({"mark.at": {"$gte": at}}) == 1


async def test_waiting_requests_become_due_by_product_and_size(app):
    rows = [("prd_a", "std", "waiting"), ("prd_a", "std", "waiting"), ("prd_a", "dlx", "waiting"),
            ("prd_b", "std", "waiting"), ("prd_a", "std", "sent")]
    for i, (product, size, status) in enumerate(rows):
        await StockAlert(product_id=product, size=size, email=f"{i}@example.com", status=status,
                         dedupe_key=f"k{i}").insert()
    res = await StockAlert.get_pymongo_collection().update_many(
        {"product_id": "prd_a", "size": "std", "status": "waiting"}, {"$set": {"status": "due"}})
    assert res.modified_count == 2
    stored = sorted((a.dedupe_key, a.status) for a in await StockAlert.find_all().to_list())
    assert stored == [("k0", "due"), ("k1", "due"), ("k2", "waiting"), ("k3", "waiting"), ("k4", "sent")]


async def test_unsubscribe_is_counted_once(app):
    sub = NewsletterSubscription(email="x@example.com", status="confirmed")
    await sub.insert()
    coll = NewsletterSubscription.get_pymongo_collection()
    changed = []
    for _ in range(2):
        res = await coll.update_one({"_id": sub.id, "status": {"$in": ["pending", "confirmed"]}},
                                    {"$set": {"status": "unsubscribed", "unsubscribed_via": "cmp_1"},
                                     "$currentDate": {"unsubscribed_at": True}})
        changed.append(res.modified_count)
    assert changed == [1, 0]
    stored = await NewsletterSubscription.get(sub.id)
    assert stored.status == "unsubscribed" and stored.unsubscribed_at is not None
