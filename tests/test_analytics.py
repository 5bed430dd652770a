"""Shopper-behaviour analytics over HTTP: funnel events recorded off the request path with the visitor and the
user, the staff reports on seeded events (shop days in New York), a failing write or a full queue never failing
a request, and forwarding to an external collector with retries."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pymongo import AsyncMongoClient

from app.core.metrics import ANALYTICS_EVENTS, ANALYTICS_FORWARD
from app.models.analytics import AnalyticsBucket, EventKind, ProductViewDay
from app.models.order import OrderStatus, PaymentStatus
from app.models.user import Role
from app.services.analytics_store import ViewTallies, bucket_documents
from app.services.sales_rollups import local_midnight
from tests.checkout_helpers import checkout, checkout_body, open_shop
from tests.conftest import create_user, login_headers
from tests.factories import build_order, line_for, make_product
from tests.support import API, assert_problem, new_client
from tests.test_cli import MIGRATIONS, cli_db, distance_back_to  # noqa: F401, F811 (the fixture)

NY = ZoneInfo("America/New_York")
VISITOR = "3f0c7d1e-9b2a-4c5d-8e6f-0a1b2c3d4e5f"
FAST = {"analytics_flush_seconds": 0.05, "analytics_batch_size": 50}
EVENT_FIELDS = {"at", "visitor_id", "user_id", "product_id", "quantity", "query", "results", "order_id"}
RETENTION = dt.timedelta(days=180)


@pytest.fixture
def settings(make_settings):
    return make_settings(**FAST)


async def stored(count: int, kind: str | None = None) -> list[dict[str, Any]]:
    """Poll until ``count`` events (of ``kind``) are written (the writer runs every 50 ms here); each event
    with its bucket's ``kind`` and ``bucket`` id, in time order."""
    coll = AnalyticsBucket.get_pymongo_collection()
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        buckets = await coll.find({"kind": kind} if kind else {}).to_list(None)
        events = sorted(({**e, "kind": b["kind"], "bucket": b["_id"]} for b in buckets for e in b["events"]),
                        key=lambda e: e["at"])
        if len(events) >= count:
            return events
        assert asyncio.get_running_loop().time() < deadline, (kind, events)
        await asyncio.sleep(0.02)


async def viewed(count: int) -> list[dict[str, Any]]:
    """Poll until ``count`` product views are counted; the product-view day documents."""
    coll = ProductViewDay.get_pymongo_collection()
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        days = await coll.find({}).to_list(None)
        if sum(d["views"] for d in days) >= count:
            return days
        assert asyncio.get_running_loop().time() < deadline, days
        await asyncio.sleep(0.02)


def counter(metric, label: str) -> float:
    return metric.labels(label)._value.get()


async def test_the_funnel_is_recorded_with_the_visitor_and_the_user(app, client, admin, staff):
    await open_shop(app, client, admin[1])
    product = await make_product(name="Pêche Peonies")
    visitor = {"X-Visitor-Id": VISITOR}
    assert (await client.get(f"{API}/products/{product.id}", headers=visitor)).status_code == 200
    assert (await client.get(f"{API}/products/{product.id}", headers={"X-Visitor-Id": "not a visitor!"})) \
        .status_code == 200  # an id of the wrong shape is ignored, not refused
    assert (await client.get(f"{API}/products", params={"q": "PECHE peonies!"}, headers=visitor)).status_code == 200
    assert (await client.get(f"{API}/products", params={"q": "cactus"}, headers=visitor)).status_code == 200
    buyer = await create_user(Role.customer, email="pia@example.com")
    signed_in = {**await login_headers(client, buyer.email), **visitor}
    r = await client.post(f"{API}/cart/items", headers=signed_in,
                          json={"product_id": product.id, "size": "standard", "quantity": 2})
    assert r.status_code == 200, r.text
    r = await checkout(client, signed_in, checkout_body("pay_on_pickup", method="pickup"))
    assert r.status_code == 201, r.text
    order_id = r.json()["order"]["id"]
    assert (await client.post(f"{API}/admin/orders/{order_id}/settle", headers=staff[1])).status_code == 200

    events = await stored(5)
    kinds = [(e["kind"], e.get("visitor_id"), e.get("user_id")) for e in events]
    assert kinds == [("search", VISITOR, None), ("search", VISITOR, None), ("cart_add", VISITOR, buyer.id),
                     ("checkout_start", VISITOR, buyer.id), ("order_paid", None, buyer.id)]
    assert [(e["query"], e["results"]) for e in events[:2]] == [("peche peonies", 1), ("cactus", 0)]
    assert (events[2]["product_id"], events[2]["quantity"]) == (product.id, 2)
    assert events[3]["order_id"] == events[4]["order_id"] == order_id
    # Product views are counted per shop day and product, with the distinct shoppers (the bad id: none).
    (day,) = await viewed(2)
    today = dt.datetime.now(NY).date()
    assert (day["_id"], day["day"], day["product_id"], day["views"], day["viewers"]) == \
        (f"apv_{today.isoformat()}_{product.id}", today.isoformat(), product.id, 2, [f"v:{VISITOR}"])
    assert day["expires_at"] == local_midnight(today + dt.timedelta(days=1), NY) + RETENTION
    # ids and figures only: no names, emails or addresses
    assert all(set(e) - {"kind", "bucket"} <= EVENT_FIELDS for e in events)
    for bucket in await AnalyticsBucket.get_pymongo_collection().find({}).to_list(None):
        assert bucket["expires_at"] - bucket["end"] == RETENTION and bucket["start"] <= bucket["end"]
        assert bucket["orders"] == [e["order_id"] for e in bucket["events"]] if bucket["kind"] in (
            "checkout_start", "order_paid") else "orders" not in bucket


async def test_answers_from_the_response_store_and_304s_are_counted_too(app, client):
    """Repeated catalog reads are answered from ready responses without the router; each is still a view or a
    search, with the visitor of that request (not of the one that filled the store)."""
    product = await make_product(name="Ranunculus Dream")
    url = f"{API}/products/{product.id}"
    first = await client.get(url, headers={"X-Visitor-Id": "visitor-one-0000000001"})
    again = await client.get(url, headers={"X-Visitor-Id": "visitor-two-0000000002"})
    etag = again.headers["etag"]
    assert (await client.get(url, headers={"If-None-Match": etag})).status_code == 304
    assert app.state.runtime.built_catalog_cache._responses  # the store answered the later ones
    for _ in range(2):
        assert (await client.get(f"{API}/products", params={"q": "ranunculus"})).json()["total"] == 1
    assert (await client.get(f"{API}/products", params={"q": "ranunculus", "limit": 1})).status_code == 200
    assert first.status_code == again.status_code == 200
    (day,) = await viewed(3)
    assert (day["product_id"], day["views"], sorted(day["viewers"])) == (
        product.id, 3, ["v:visitor-one-0000000001", "v:visitor-two-0000000002"])
    assert [(e["query"], e["results"]) for e in await stored(3, "search")] == [("ranunculus", 1)] * 3


def test_the_visitor_header_is_declared():
    # The published document (CI proves it equals the live schema: `export-openapi --check`).
    doc = json.loads((Path(__file__).resolve().parents[1] / "openapi.json").read_text())
    ops = {op["operationId"]: op for path in doc["paths"].values() for op in path.values()}
    for op_id in ("products_get", "products_list", "cart_items_add", "checkout_create"):
        assert "X-Visitor-Id" in {p.get("name") for p in ops[op_id]["parameters"]}, op_id


async def test_browsers_may_send_the_visitor_header(client):
    r = await client.options(f"{API}/products", headers={"Origin": "http://localhost:5173",
                                                         "Access-Control-Request-Method": "GET",
                                                         "Access-Control-Request-Headers": "x-visitor-id"})
    assert r.status_code == 200 and "x-visitor-id" in r.headers["access-control-allow-headers"].lower()


def ny(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=NY).astimezone(dt.UTC)


def event(kind: str, at: dt.datetime, visitor: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, "at": at, **({"visitor_id": visitor} if visitor else {}), **fields}


async def insert_buckets(events: list[dict[str, Any]], size: int = 3) -> None:
    """Store events as the writer does: product views counted per New York day and product, the others in
    buckets (small here, so a range cuts through some of them)."""
    events = sorted(events, key=lambda e: e["at"])
    views = ViewTallies(NY).add_events(e for e in events if e["kind"] == "product_view")
    if views.tallies:
        await ProductViewDay.get_pymongo_collection().insert_many(
            [views.document(doc_id, RETENTION) for doc_id in views.tallies])
    if others := [e for e in events if e["kind"] != "product_view"]:
        await AnalyticsBucket.get_pymongo_collection().insert_many(bucket_documents(others, RETENTION, size))


async def test_reports_on_seeded_events(app, client, staff, customer):
    rose = await make_product(name="Rose Cloud")
    tulip = await make_product(name="Tulip Parade")
    # Apr 8 (NY): A views rose twice and tulip, adds, checks out o1, pays it on Apr 9 just after midnight.
    # B views rose, adds, never checks out. An event without any id counts as a view but has no shopper.
    # Apr 9: C (signed in, no visitor id) views tulip, adds and checks out o2, never pays.
    # 23:59:59.9 Apr 9 belongs to Apr 9; 00:00:00.2 Apr 10 is outside the range.
    a, b = "visitor-aaaaaaaaaaaaaaaa", "visitor-bbbbbbbbbbbbbbbb"
    c = customer[0].id
    await insert_buckets([
        event("product_view", ny(2030, 4, 8, 0, 0, 0), a, product_id=rose.id),
        event("product_view", ny(2030, 4, 8, 10, 0, 0), a, product_id=rose.id),
        event("product_view", ny(2030, 4, 8, 10, 1, 0), a, product_id=tulip.id),
        event("product_view", ny(2030, 4, 8, 11, 0, 0), b, product_id=rose.id),
        event("product_view", ny(2030, 4, 8, 12, 0, 0), None, product_id=rose.id),
        event("search", ny(2030, 4, 8, 9, 0, 0), a, query="roses", results=3),
        event("search", ny(2030, 4, 8, 9, 5, 0), b, query="roses", results=2),
        event("search", ny(2030, 4, 8, 9, 6, 0), b, query="cactus", results=0),
        event("search", ny(2030, 4, 9, 9, 0, 0), None, query="cactus", results=0),
        event("search", ny(2030, 4, 9, 9, 1, 0), a, query="tulips", results=4),
        event("cart_add", ny(2030, 4, 8, 10, 5, 0), a, user_id=None, product_id=rose.id, quantity=1),
        event("cart_add", ny(2030, 4, 8, 11, 5, 0), b, product_id=rose.id, quantity=2),
        event("checkout_start", ny(2030, 4, 8, 23, 50, 0), a, order_id="ord_01JD7Z00000000000000000001"),
        event("order_paid", ny(2030, 4, 9, 0, 0, 1), None, order_id="ord_01JD7Z00000000000000000001"),
        event("product_view", ny(2030, 4, 9, 23, 59, 59) + dt.timedelta(milliseconds=900), None, user_id=c,
              product_id=tulip.id),
        event("cart_add", ny(2030, 4, 9, 13, 0, 0), None, user_id=c, product_id=tulip.id, quantity=1),
        event("checkout_start", ny(2030, 4, 9, 13, 5, 0), None, user_id=c, order_id="ord_01JD7Z00000000000000000002"),
        event("product_view", ny(2030, 4, 10, 0, 0, 0) + dt.timedelta(milliseconds=200), a, product_id=tulip.id),
    ])
    # Purchases for "most bought": paid orders placed in the range (tulip x3, rose x1), one unpaid.
    for n, (lines, status) in enumerate([([line_for(tulip, quantity=3), line_for(rose)], PaymentStatus.paid),
                                         ([line_for(rose, quantity=5)], PaymentStatus.unpaid)]):
        order = build_order(lines, number=f"AF-9{n}", created_at=ny(2030, 4, 9, 12, n))
        order.status, order.payment_status, order.amount_paid = OrderStatus.paid, status, order.amounts.total
        await order.insert()

    rng = {"from": "2030-04-08", "to": "2030-04-09"}
    r = await client.get(f"{API}/admin/reports/funnel", headers=staff[1], params=rng)
    assert r.status_code == 200, r.text
    body = r.json()
    day1, day2 = body["days"]
    assert (day1["date"], day1["viewed"], day1["added_to_cart"], day1["checked_out"], day1["paid"]) == \
        ("2030-04-08", 2, 2, 1, 0)
    assert (day1["product_views"], day1["cart_adds"], day1["orders_placed"], day1["view_to_cart"],
            day1["cart_to_checkout"], day1["checkout_to_paid"]) == (5, 2, 1, 1.0, 0.5, 0.0)
    assert (day2["viewed"], day2["added_to_cart"], day2["checked_out"], day2["paid"], day2["orders_paid"]) == \
        (1, 1, 1, 1, 1)  # a's payment lands on Apr 9 and counts for a (the shopper of its checkout)
    totals = body["totals"]
    assert (totals["viewed"], totals["added_to_cart"], totals["checked_out"], totals["paid"], totals["product_views"],
            totals["view_to_paid"]) == (3, 3, 2, 1, 6, 0.3333)
    assert body["time_zone"] == "America/New_York" and body["from"] == "2030-04-08"

    body = (await client.get(f"{API}/admin/reports/searches", headers=staff[1], params=rng)).json()
    assert (body["searches"], body["searches_without_results"], body["no_result_rate"]) == (5, 2, 0.4)
    assert [(t["query"], t["searches"], t["shoppers"], t["last_results"]) for t in body["top"]] == \
        [("cactus", 2, 1, 0), ("roses", 2, 2, 2), ("tulips", 1, 1, 4)]
    assert [(t["query"], t["searches"]) for t in body["without_results"]] == [("cactus", 2)]

    body = (await client.get(f"{API}/admin/reports/product-interest", headers=staff[1],
                             params={**rng, "limit": 5})).json()
    assert [(p["name"], p["views"], p["viewers"], p["units_bought"], p["orders"]) for p in body["most_viewed"]] == \
        [("Rose Cloud", 4, 2, 1, 1), ("Tulip Parade", 2, 2, 3, 1)]
    assert [(p["name"], p["units_bought"], p["orders_per_viewer"]) for p in body["most_bought"]] == \
        [("Tulip Parade", 3, 0.5), ("Rose Cloud", 1, 0.5)]

    body = (await client.get(f"{API}/admin/reports/cart-abandonment", headers=staff[1], params=rng)).json()
    assert (body["shoppers_with_cart"], body["checked_out"], body["paid"], body["abandoned"],
            body["abandonment_rate"], body["checkout_abandonment_rate"]) == (3, 2, 1, 2, 0.6667, 0.5)

    assert_problem(await client.get(f"{API}/admin/reports/funnel", headers=customer[1], params=rng), 403)
    assert_problem(await client.get(f"{API}/admin/reports/funnel", headers=staff[1],
                                    params={"from": "2030-04-09", "to": "2030-04-08"}), 422)
    assert_problem(await client.get(f"{API}/admin/reports/searches", headers=staff[1],
                                    params={**rng, "limit": 500}), 422)


async def test_a_failing_write_never_fails_the_request(app, client):
    product = await make_product(name="Sturdy Sunflowers")
    coll = ProductViewDay.get_pymongo_collection()
    # The database refuses every further day of views of the product (a unique index on it): real write errors.
    await insert_buckets([event("product_view", ny(2030, 4, 8, 12, 0, 0), product_id=product.id)])
    await coll.create_index("product_id", unique=True, name="test_one_per_product")
    failed = counter(ANALYTICS_EVENTS, "dropped_write_failed")
    for _ in range(3):
        r = await client.get(f"{API}/products/{product.id}", headers={"X-Visitor-Id": VISITOR})
        assert r.status_code == 200 and r.json()["id"] == product.id
    assert (await client.get(f"{API}/products", params={"q": "sunflowers"})).status_code == 200
    (search,) = await stored(1, "search")  # the writer goes on with what the database accepts
    assert search["query"] == "sunflowers"
    deadline = asyncio.get_running_loop().time() + 10
    while counter(ANALYTICS_EVENTS, "dropped_write_failed") < failed + 3:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    assert [d["views"] for d in await coll.find({}).to_list(None)] == [1]  # only the day stored before
    metrics = (await client.get("/metrics")).text
    assert 'analytics_events_total{result="dropped_write_failed"}' in metrics


async def test_a_flush_writes_what_was_queued_when_it_began(app):
    """Events queued while a flush writes wait for the next one: a steady stream is written in batches."""
    from app.services.analytics import AnalyticsRecorder

    recorder = AnalyticsRecorder(app.state.settings)  # not started: flushed by hand here
    for n in range(3):
        recorder.record(EventKind.product_view, visitor_id=f"visitor-{n:016d}", product_id="prd_rose")
    flushing = asyncio.create_task(recorder.flush())
    await asyncio.sleep(0)  # the flush took the queue and waits for the database
    recorder.record(EventKind.product_view, visitor_id=None, product_id="prd_rose")
    recorder.record(EventKind.search, query="roses", results=2)
    assert await flushing == 3 and len(recorder.pending) == 2
    assert await recorder.flush() == 2 and not recorder.pending
    (day,) = await viewed(4)
    assert (day["views"], len(day["viewers"])) == (4, 3)


def test_views_wake_the_writer_at_half_the_queue_other_events_at_a_full_bucket(make_settings):
    """A flush costs the same for few or many views (they are counted), so views leave the writing to the timer
    until half the queue is taken; other events wake it when a bucket's worth waits."""
    from app.services.analytics import AnalyticsRecorder

    recorder = AnalyticsRecorder(make_settings(analytics_queue_size=10, analytics_batch_size=2))
    for _ in range(4):
        recorder.record(EventKind.product_view, visitor_id=None, product_id="prd_rose")
    assert not recorder.wake.is_set()
    recorder.record(EventKind.product_view, visitor_id=None, product_id="prd_rose")
    assert recorder.wake.is_set()  # 5 of 10
    recorder.wake.clear()
    recorder.record(EventKind.search, query="roses", results=2)
    assert not recorder.wake.is_set()
    recorder.record(EventKind.cart_add, product_id="prd_rose", quantity=1)
    assert recorder.wake.is_set()  # a bucket of 2
    gc.collect(0)  # waiting views are atoms only: untracked, they never age into a full collection
    assert not any(gc.is_tracked(item) for item in recorder.pending if item[0] == "product_view")


async def test_a_full_queue_drops_and_counts_without_blocking(make_settings, app_factory, mongo_url):
    settings = make_settings(analytics_queue_size=2, analytics_flush_seconds=300, analytics_batch_size=100)
    full = counter(ANALYTICS_EVENTS, "dropped_queue_full")
    async with app_factory(settings) as app:
        product = await make_product(name="Quiet Lilies")
        async with new_client(app) as client:
            for _ in range(5):
                assert (await client.get(f"{API}/products/{product.id}")).status_code == 200
        assert counter(ANALYTICS_EVENTS, "dropped_queue_full") == full + 3
        assert await ProductViewDay.get_pymongo_collection().count_documents({}) == 0  # nothing flushed yet
    # Shutting down writes what was queued.
    mongo: AsyncMongoClient = AsyncMongoClient(mongo_url)
    try:
        days = await mongo[settings.mongodb_db]["analytics_product_views"].find({}).to_list(None)
        assert [(d["product_id"], d["views"]) for d in days] == [(product.id, 2)]
    finally:
        await mongo.close()


class Collector:
    """A local analytics collector: answers the next ``fail`` POSTs with ``status``, then 202; keeps every
    request's body and Authorization header."""

    def __init__(self) -> None:
        self.requests: list[tuple[int, dict[str, Any], str | None]] = []
        self.fail, self.status = 0, 503
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with collector.lock:
                    status = collector.status if collector.fail > 0 else 202
                    collector.fail -= 1
                    collector.requests.append((status, body, self.headers.get("Authorization")))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/events"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector():
    c = Collector()
    yield c
    c.stop()


async def until(predicate, seconds: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)


async def test_batches_are_forwarded_retried_and_dropped_after_the_bound(make_settings, app_factory, collector):
    settings = make_settings(**FAST, analytics_forward_url=collector.url, analytics_forward_token="tok-collector-1",
                             analytics_forward_max_attempts=3, analytics_forward_backoff_seconds=0.01)
    async with app_factory(settings) as app:
        product = await make_product(name="Traveling Tulips")
        async with new_client(app) as client:
            collector.fail, collector.status = 1, 503  # one failure, then accepted
            before = dt.datetime.now(dt.UTC)
            assert (await client.get(f"{API}/products/{product.id}", headers={"X-Visitor-Id": VISITOR})) \
                .status_code == 200
            await until(lambda: any(s == 202 for s, _, _ in collector.requests))
            (first_status, first, auth), (_, again, _) = collector.requests
            assert first_status == 503 and again == first and auth == "Bearer tok-collector-1"
            await viewed(1)  # counted in storage, forwarded one by one
            (sent,) = first["events"]
            at = dt.datetime.fromisoformat(sent.pop("at"))
            assert before - dt.timedelta(milliseconds=1) <= at <= dt.datetime.now(dt.UTC)
            assert re.fullmatch(r"anf_[0-9A-Z]{26}\.0", sent.pop("id"))  # <batch id>.<n>: stable across retries
            assert sent == {"kind": "product_view", "visitor_id": VISITOR, "product_id": product.id}

            dropped = counter(ANALYTICS_FORWARD, "dropped")
            collector.requests.clear()
            collector.fail, collector.status = 10, 500  # down for longer than the bound
            assert (await client.get(f"{API}/products/{product.id}")).status_code == 200
            await until(lambda: counter(ANALYTICS_FORWARD, "dropped") == dropped + 1)
            assert [s for s, _, _ in collector.requests] == [500, 500, 500]  # 3 attempts, then dropped
            collector.fail, collector.status = 1, 400  # refused as malformed: retrying cannot help
            assert (await client.get(f"{API}/products/{product.id}")).status_code == 200
            await until(lambda: counter(ANALYTICS_FORWARD, "dropped") == dropped + 2)
            assert [s for s, _, _ in collector.requests] == [500, 500, 500, 400]
            assert (await client.get(f"{API}/products/{product.id}")).status_code == 200
            await until(lambda: len(collector.requests) == 5)
            assert collector.requests[-1][0] == 202  # later batches go through again


async def test_the_demo_seed_has_analytics_history(app, client, staff):
    from app.core.text import normalize
    from app.demo.analytics import NO_RESULTS, seed_analytics_history
    from tests.catalog_helpers import seed

    await seed(app)
    (line,) = await seed_analytics_history()
    assert "events over the last 30 days" in line
    assert await seed_analytics_history() == []  # idempotent
    today = dt.datetime.now(NY).date()
    rng = {"from": (today - dt.timedelta(days=30)).isoformat(), "to": today.isoformat()}
    totals = (await client.get(f"{API}/admin/reports/funnel", headers=staff[1], params=rng)).json()["totals"]
    assert totals["viewed"] > totals["added_to_cart"] > totals["checked_out"] >= totals["paid"] > 0
    searches = (await client.get(f"{API}/admin/reports/searches", headers=staff[1], params=rng)).json()
    assert {normalize(t) for t in NO_RESULTS} <= {t["query"] for t in searches["without_results"]}
    for term in searches["top"][:5]:  # the seeded result counts are what the catalog finds
        found = (await client.get(f"{API}/products", params={"q": term["query"]})).json()["total"]
        assert term["last_results"] == found, term
    interest = (await client.get(f"{API}/admin/reports/product-interest", headers=staff[1], params=rng)).json()
    assert interest["most_viewed"][0]["views"] > 1


def test_the_migration_counts_stored_product_views_and_back(cli_db):  # noqa: F811 (the imported fixture)
    """Product-view buckets of the previous release become day documents (New York days) and back, with the
    same figures; other kinds stay as they are."""
    invoke, db = cli_db
    a, b = "visitor-aaaaaaaaaaaaaaaa", "visitor-bbbbbbbbbbbbbbbb"
    events = [event("product_view", ny(2030, 4, 8, 0, 0, 0), a, product_id="prd_rose"),
              event("product_view", ny(2030, 4, 8, 10, 0, 0), a, product_id="prd_rose"),
              event("product_view", ny(2030, 4, 8, 23, 59, 59), b, product_id="prd_rose"),
              event("product_view", ny(2030, 4, 9, 0, 0, 1), None, user_id="usr_c", product_id="prd_rose"),
              event("product_view", ny(2030, 4, 9, 1, 0, 0), None, product_id="prd_tulip"),
              event("search", ny(2030, 4, 8, 9, 0, 0), a, query="roses", results=3)]
    db.analytics_events.insert_many(bucket_documents(events, RETENTION, 2))
    r = invoke("migrate", "--path", str(MIGRATIONS))
    assert r.exit_code == 0, r.output
    days = {d["_id"]: (d["views"], sorted(d["viewers"])) for d in db.analytics_product_views.find({})}
    assert days == {"apv_2030-04-08_prd_rose": (3, [f"v:{a}", f"v:{b}"]), "apv_2030-04-09_prd_rose": (1, ["u:usr_c"]),
                    "apv_2030-04-09_prd_tulip": (1, [])}
    assert [bk["kind"] for bk in db.analytics_events.find({})] == ["search"]

    r = invoke("migrate", "--path", str(MIGRATIONS), "--backward", "--distance",
               distance_back_to("20261212_000001_product_view_days.py"))
    assert r.exit_code == 0, r.output
    assert "analytics_product_views" not in db.list_collection_names()
    back = sorted(((bk["start"], e.get("product_id"), e.get("visitor_id"), e.get("user_id"))
                   for bk in db.analytics_events.find({"kind": "product_view"}) for e in bk["events"]),
                  key=lambda e: (e[0], e[1], e[2] or "", e[3] or ""))
    assert back == [(ny(2030, 4, 8), "prd_rose", None, None), (ny(2030, 4, 8), "prd_rose", a, None),
                    (ny(2030, 4, 8), "prd_rose", b, None), (ny(2030, 4, 9), "prd_rose", None, "usr_c"),
                    (ny(2030, 4, 9), "prd_tulip", None, None)]


def test_the_migration_counts_each_bucket_once_after_a_crash(cli_db):  # noqa: F811 (the imported fixture)
    """What a crash of the forward migration leaves behind: a bucket whose views were set on its day document
    but which was not deleted yet, and the figures of a deleted bucket not yet added to ``views``. Running the
    migration (again) counts each exactly once, beside the views the running app counted meanwhile."""
    invoke, db = cli_db
    a, b = "visitor-aaaaaaaaaaaaaaaa", "visitor-bbbbbbbbbbbbbbbb"
    (pending,) = bucket_documents([event("product_view", ny(2030, 4, 8, 9, 0, 0), a, product_id="prd_rose"),
                                   event("product_view", ny(2030, 4, 8, 9, 5, 0), b, product_id="prd_rose")],
                                  RETENTION, 10)
    db.analytics_events.insert_one(pending)
    expires = ny(2030, 4, 9) + RETENTION
    db.analytics_product_views.insert_many([
        # 5 views counted live by the app, and the pending bucket's 2 already set before the crash
        {"_id": "apv_2030-04-08_prd_rose", "day": "2030-04-08", "product_id": "prd_rose", "views": 5,
         "viewers": [f"v:{a}", "v:visitor-zzzzzzzzzzzzzzzz"], "expires_at": expires,
         "migrated": {pending["_id"]: 2}},
        # a bucket deleted before the crash: its 3 views are still to be added
        {"_id": "apv_2030-04-08_prd_tulip", "day": "2030-04-08", "product_id": "prd_tulip", "views": 0,
         "viewers": [], "expires_at": expires, "migrated": {"anb_gone": 3}},
    ])
    r = invoke("migrate", "--path", str(MIGRATIONS))
    assert r.exit_code == 0, r.output
    days = {d["_id"]: (d["views"], sorted(d["viewers"]), "migrated" in d) for d in db.analytics_product_views.find()}
    assert days == {"apv_2030-04-08_prd_rose": (7, [f"v:{a}", f"v:{b}", "v:visitor-zzzzzzzzzzzzzzzz"], False),
                    "apv_2030-04-08_prd_tulip": (3, [], False)}
    assert db.analytics_events.count_documents({"kind": "product_view"}) == 0
