"""Contract tests: the query forms the reports rely on (app/services/reports.py), asserted by reading back.

They run against whatever MONGODB_URL points to. The reports read with ``find`` (an ``$in`` plus a
half-open ``created_at`` range plus a nested equality, whole top-level fields projected) and bucket in
Python, because the embedded server's aggregation gets dates wrong: ``$dateToString`` ignores
``timezone``, and a ``$match`` on a date range inside ``aggregate`` matches nothing. Those forms are not
used, so they are not certified here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.models.order import Order
from app.services.reports import SETTLED_VALUES, local_midnight

pytestmark = pytest.mark.usefixtures("app")

START = datetime(2030, 4, 9, 4, 0, tzinfo=UTC)  # shop midnight in New York (EDT)
END = START + timedelta(days=1)
RANGE = {"$gte": START, "$lt": END}


@pytest.fixture
def settings(make_settings):
    return make_settings(workers_enabled=False)


@pytest.fixture
def db(app, settings):
    return app.state.runtime.mongo[settings.mongodb_db]


def _order(oid: str, at: datetime, payment_status: str = "paid", currency: str = "USD") -> dict:
    return {"_id": oid, "created_at": at, "payment_status": payment_status, "status": "paid", "amount_paid": 1000,
            "amount_refunded": 0, "amounts": {"total": 1000, "currency": currency},
            "lines": [{"product_id": "prd_a", "product_name": "Rose", "quantity": 2, "line_total": 1000}],
            "contact": {"user_id": None, "email": "a@example.com"}, "notes": [{"text": "not projected"}]}


async def test_paid_orders_in_a_half_open_utc_range_with_whole_fields_projected(db):
    coll = db.c_orders
    await coll.insert_many([
        _order("o_before", START - timedelta(milliseconds=1)),
        _order("o_first", START),
        _order("o_refunded", START + timedelta(hours=5), payment_status="refunded"),
        _order("o_partial", START + timedelta(hours=6), payment_status="partially_refunded"),
        _order("o_unpaid", START + timedelta(hours=7), payment_status="unpaid"),
        _order("o_eur", START + timedelta(hours=8), currency="EUR"),
        _order("o_last", END - timedelta(milliseconds=1)),
        _order("o_end", END),
    ])
    query = {"payment_status": {"$in": SETTLED_VALUES}, "created_at": RANGE, "amounts.currency": "USD"}
    fields = ("created_at", "amount_paid", "amount_refunded", "lines", "contact")
    docs = await coll.find(query, {f: 1 for f in fields}).limit(10).to_list(None)
    assert sorted(d["_id"] for d in docs) == ["o_first", "o_last", "o_partial", "o_refunded"]
    first = next(d for d in docs if d["_id"] == "o_first")
    assert set(first) == {"_id", *fields}
    assert first["created_at"] == START and first["created_at"].tzinfo is not None
    assert first["lines"] == [{"product_id": "prd_a", "product_name": "Rose", "quantity": 2, "line_total": 1000}]
    assert first["contact"] == {"user_id": None, "email": "a@example.com"}
    # the cap: limit(n + 1) tells "more than n" apart
    assert len(await coll.find(query, {"_id": 1}).limit(3).to_list(None)) == 3


async def test_created_range_alone_and_with_a_role(db):
    await db.c_orders.insert_many([_order("o1", START), _order("o2", END), _order("o3", START + timedelta(hours=1),
                                                                                  payment_status="unpaid")])
    docs = await db.c_orders.find({"created_at": RANGE}, {"status": 1, "payment_status": 1, "amounts": 1}).to_list(None)
    assert sorted((d["_id"], d["payment_status"], d["amounts"]["currency"]) for d in docs) == [
        ("o1", "paid", "USD"), ("o3", "unpaid", "USD")]

    await db.c_users.insert_many([
        {"_id": "u1", "role": "customer", "created_at": START + timedelta(hours=23)},
        {"_id": "u2", "role": "staff", "created_at": START + timedelta(hours=1)},
        {"_id": "u3", "role": "customer", "created_at": START - timedelta(seconds=1)},
    ])
    users = await db.c_users.find({"role": "customer", "created_at": RANGE}, {"created_at": 1}).to_list(None)
    assert users == [{"_id": "u1", "created_at": START + timedelta(hours=23)}]


async def test_count_by_status_equality(db):
    await db.c_orders.insert_many([{"_id": f"o{i}", "status": s} for i, s in
                                   enumerate(["pending_payment", "paid", "pending_payment", "expired"])])
    assert await db.c_orders.count_documents({"status": "pending_payment"}) == 2


def test_local_midnight_follows_the_shop_zone():
    from zoneinfo import ZoneInfo

    ny = ZoneInfo("America/New_York")
    assert local_midnight(datetime(2030, 4, 9).date(), ny) == START
    assert local_midnight(datetime(2030, 1, 9).date(), ny) == datetime(2030, 1, 9, 5, tzinfo=UTC)
    # Santiago skips its midnight when DST starts (2030-09-08): the day starts at the first existing instant.
    assert local_midnight(datetime(2030, 9, 8).date(), ZoneInfo("America/Santiago")) == \
        datetime(2030, 9, 8, 4, tzinfo=UTC)


async def test_report_index_exists():
    info = await Order.get_pymongo_collection().index_information()
    assert ("payment_status", "created_at") in {tuple(k for k, _ in ix["key"]) for ix in info.values()}
