"""The query and update forms orders rely on, each asserted by reading back (see embedded-mongo.md)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from pymongo.errors import DuplicateKeyError

from app.core.clock import utcnow
from app.models.order import IdempotencyRecord, Order
from app.models.stripe_event import Event
from app.services.inventory import return_stock, take_stock
from app.services.orders import OrderService
from tests.factories import make_order_doc, make_product

pytestmark = pytest.mark.usefixtures("app")


@pytest.fixture
def settings(make_settings):
    return make_settings(workers_enabled=False)  # no background job may touch the documents under test


async def test_counter_inc_upsert_gives_distinct_numbers(app):
    rt = app.state.runtime
    service = OrderService(app.state.settings, rt.email, rt.stripe, stock=rt)
    numbers = await asyncio.gather(*(service.next_number() for _ in range(30)))
    assert len(set(numbers)) == 30
    assert sorted(numbers)[0] == "AF-10001" and sorted(numbers)[-1] == "AF-10030"


async def test_conditional_stock_take_on_keyed_size_is_atomic(app):
    rt = app.state.runtime
    product = await make_product(stock={"standard": 5, "deluxe": 2})
    results = await asyncio.gather(*(take_stock(rt, product.id, "standard", 1) for _ in range(40)))
    assert results.count(True) == 5
    assert await take_stock(rt, product.id, "deluxe", 3) is False
    await return_stock(rt, product.id, "standard", 2)
    fresh = await product.get(product.id)
    assert fresh.stock == {"standard": 2, "deluxe": 2}
    assert fresh.ever_ordered is True


async def test_partial_unique_cart_version_index():
    await make_order_doc(cart_id=None).insert()
    await make_order_doc(cart_id=None).insert()  # orders without a cart never collide
    await make_order_doc(cart_id="crt_A", cart_version=1).insert()
    await make_order_doc(cart_id="crt_A", cart_version=2).insert()
    with pytest.raises(DuplicateKeyError):
        await make_order_doc(cart_id="crt_A", cart_version=1).insert()
    assert await Order.find({"cart_id": "crt_A"}).count() == 2


async def test_unique_number_and_idempotency_scope():
    await make_order_doc(number="AF-1").insert()
    with pytest.raises(DuplicateKeyError):
        await make_order_doc(number="AF-1").insert()
    await IdempotencyRecord(scope_key="k", request_hash="h", locked_until=utcnow()).insert()
    with pytest.raises(DuplicateKeyError):
        await IdempotencyRecord(scope_key="k", request_hash="h2", locked_until=utcnow()).insert()


async def test_boolean_marker_claim_happens_once_and_stamps_a_real_date():
    order = make_order_doc()
    await order.insert()
    coll = Order.get_pymongo_collection()

    async def claim_release():
        return await coll.find_one_and_update(
            {"_id": order.id, "reservation.released": False},
            {"$set": {"reservation.released": True}, "$currentDate": {"reservation.released_at": True}})

    results = await asyncio.gather(*(claim_release() for _ in range(10)))
    assert sum(r is not None for r in results) == 1
    raw = await coll.find_one({"_id": order.id})
    assert Order.model_validate(raw).reservation.released is True  # the embedded server stores 1
    assert isinstance(raw["reservation"]["released_at"], datetime)
    assert raw["reservation"]["stock"] == [h.model_dump() for h in order.reservation.stock]
    not_released = {"status": {"$in": ["pending_payment", "cancelled"]}, "reservation.released": False}
    assert await coll.find(not_released).to_list() == []


async def test_current_date_stamps_compare_as_dates_and_nested_dates_survive_set():
    order = make_order_doc()
    await order.insert()
    coll = Order.get_pymongo_collection()
    history = [{"at": utcnow(), "by": "system", "from_status": None, "to_status": "pending_payment", "note": None}]
    await coll.update_one({"_id": order.id}, {"$set": {"status_history": history},
                                              "$currentDate": {"updated_at": True, "job_failed_at": True}})
    raw = await coll.find_one({"_id": order.id})
    assert isinstance(raw["updated_at"], datetime) and isinstance(raw["status_history"][0]["at"], datetime)
    assert await coll.find_one({"_id": order.id, "job_failed_at": {"$gte": utcnow() - timedelta(minutes=1)}})
    # Backdating (tests) goes through replace_one, which keeps datetimes as dates.
    await coll.replace_one({"_id": order.id}, {**raw, "job_failed_at": utcnow() - timedelta(minutes=5)})
    assert await coll.find_one({"_id": order.id, "job_failed_at": {"$lt": utcnow() - timedelta(minutes=1)}})


async def test_leased_claim_by_current_date_stamp():
    past = utcnow() - timedelta(minutes=1)
    due = make_order_doc(expires_at=past, payment_intent_id="pi_1")
    later = make_order_doc(expires_at=utcnow() + timedelta(hours=1))
    closed = make_order_doc(status="cancelled")
    for o in (due, later, closed):
        await o.insert()
    coll = Order.get_pymongo_collection()

    async def take(query):
        return await coll.find_one_and_update(
            {**query, "leased_at": {"$lt": utcnow() - timedelta(seconds=60)}},
            {"$set": {"lease_owner": "me"}, "$currentDate": {"leased_at": True}}, sort=[("expires_at", 1)])

    expiring = {"status": "pending_payment", "expires_at": {"$lte": utcnow()}}
    claims = await asyncio.gather(*(take(expiring) for _ in range(5)))
    assert [c["_id"] for c in claims if c] == [due.id]
    stale = {"status": {"$in": ["cancelled", "expired"]}, "reservation.released": False,
             "updated_at": {"$lte": utcnow()}}
    assert (await take(stale))["_id"] == closed.id
    assert await take(stale) is None
    reconcile = {"status": "pending_payment", "payment_method": "card", "created_at": {"$lte": utcnow()},
                 "reconciled_at": {"$lte": utcnow()}}
    assert [d["_id"] for d in await coll.find(reconcile).sort("created_at", 1).to_list()] == [due.id, later.id]


async def test_array_membership_on_line_product_and_status_in():
    order = make_order_doc(status="delivered", user_id="usr_X")
    await order.insert()
    product_id = order.lines[0].product_id
    q = {"contact.user_id": "usr_X", "lines.product_id": product_id, "status": {"$in": ["delivered", "picked_up"]}}
    assert len(await Order.find(q).to_list()) == 1
    assert len(await Order.find({**q, "lines.product_id": "prd_other"}).to_list()) == 0


async def test_ranges_on_created_and_delivery_date_strings():
    a = make_order_doc(delivery_date="2026-02-13")
    b = make_order_doc(delivery_date="2026-02-14")
    for o in (a, b):
        await o.insert()
    found = await Order.find({"delivery.date": {"$gte": "2026-02-14", "$lte": "2026-02-14"}}).to_list()
    assert [o.id for o in found] == [b.id]
    newest = await Order.find({"created_at": {"$gte": utcnow() - timedelta(minutes=1)}}).sort(
        [("created_at", -1), ("_id", -1)]).to_list()
    assert [o.id for o in newest] == [b.id, a.id]


async def test_event_id_inserted_once():
    await Event(id="stripe:evt_1", kind="x").insert()
    with pytest.raises(DuplicateKeyError):
        await Event(id="stripe:evt_1", kind="x").insert()


async def test_event_marked_processed_with_its_outcome_in_one_update():
    """The webhook's last write: ``$set`` of a string beside ``$currentDate`` (a real date, not a string)."""
    await Event(id="stripe:evt_2", kind="x").insert()
    before = utcnow()
    await Event.get_pymongo_collection().update_one(
        {"_id": "stripe:evt_2"}, {"$set": {"outcome": "ignored: no order"}, "$currentDate": {"processed_at": True}})
    raw = await Event.get_pymongo_collection().find_one({"_id": "stripe:evt_2"})
    assert raw["outcome"] == "ignored: no order" and isinstance(raw["processed_at"], datetime)
    # find, not count: count_documents runs as an aggregate $match, whose date ranges the embedded server gets wrong
    found = await Event.find({"processed_at": {"$gte": before - timedelta(seconds=1)}}).to_list()
    assert [e.id for e in found] == ["stripe:evt_2"]


async def test_order_list_indexes_exist():
    expected = {
        Order: {("number",), ("cart_id", "cart_version"), ("contact.user_id", "created_at"),
                ("contact.email", "created_at"), ("status", "created_at"), ("created_at",),
                ("delivery.date", "delivery.slot"), ("delivery.zone_id", "delivery.date"),
                ("status", "expires_at"), ("status", "payment_method", "created_at"), ("payment_intent_id",),
                ("lines.product_id", "status"), ("refunds_pending",)},
        IdempotencyRecord: {("scope_key",), ("created_at",)},
    }
    for document, keys in expected.items():
        info = await document.get_pymongo_collection().index_information()
        assert keys <= {tuple(k for k, _ in index["key"]) for index in info.values()}, document.__name__
    unique = {tuple(k for k, _ in index["key"]) for index in
              (await Order.get_pymongo_collection().index_information()).values() if index.get("unique")}
    assert {("number",), ("cart_id", "cart_version")} <= unique
