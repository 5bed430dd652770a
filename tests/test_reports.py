"""/admin/reports over HTTP: orders placed through the order service, paid by signed Stripe webhooks or
settled at the counter, refunded and cancelled through the admin API; exact cents per shop day.

The shop is in New York. Orders (placed at fixed instants; ``created_at`` decides the shop day):
  o_old    2030-03-10 23:30 EDT (03:30Z the next UTC day; DST began that day)  C, Rose x1        6099 paid
  o_month  2030-03-11 00:30 EDT                                                C, Rose x1        6099 paid
  o1       2030-04-08 10:00 EDT   A, Rose x2 + Peony x1                                        28418 paid
  o2       2030-04-08 23:59:30 EDT (Apr 9 in UTC)  A, Tulips deluxe x1              8275 paid, 1000 refunded
  o3       2030-04-09 00:00:30 EDT   guest, Rose x1                  6099 paid, cancelled by staff: refunded
  o4       2030-04-09 12:00 EDT   B, pickup, pay at counter, "Tulip Parade" x3          9798 settled
  o5       2030-04-09 13:00 EDT   B, card, never paid, cancelled        (never counts)
  o6       2030-04-09 14:00 EDT   B, card, never paid, expired          (never counts)
  o7       2030-04-09 14:30 EDT   B, card, waiting for payment          (never counts)
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.models.order import DeliveryMethod, Order, OrderStatus, PaymentMethod
from app.models.user import Role
from tests.conftest import create_user
from tests.factories import line_for, make_product
from tests.stripe_fixtures import order_service, place_order, send_webhook
from tests.support import assert_problem, new_client

API = "/api/v1/admin/reports"
NY = ZoneInfo("America/New_York")
NOW = dt.datetime(2030, 4, 9, 15, 0, tzinfo=NY)


def ny(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=NY).astimezone(dt.UTC)


@pytest.fixture
def settings(make_settings, stripe_settings):
    return make_settings(workers_enabled=False, **stripe_settings)


async def _pay(client, stripe_double, order: Order) -> None:
    r = await send_webhook(client, "payment_intent.succeeded", stripe_double.succeed(order.payment_intent_id))
    assert r.status_code == 200, r.text


async def seed_shop(app, client, stripe_double, staff_headers: dict[str, str]) -> dict[str, Any]:
    app.state.clock = lambda: NOW.astimezone(dt.UTC)
    rose = await make_product(name="Rose", stock={"standard": 20, "deluxe": 20})
    tulip = await make_product(name="Tulips", prices={"standard": 3000, "deluxe": 6499},
                               stock={"standard": 10, "deluxe": 1})
    peony = await make_product(name="Peony", prices={"standard": 16000}, stock={"standard": 4})
    a = await create_user(Role.customer, created_at=ny(2030, 4, 8, 23, 59, 59))
    b = await create_user(Role.customer, created_at=ny(2030, 4, 9, 0, 0, 0))
    c = await create_user(Role.customer, created_at=ny(2030, 3, 20, 12, 0))
    await create_user(Role.customer, created_at=ny(2030, 3, 10, 23, 0))  # before the 30-day window
    await create_user(Role.staff, created_at=ny(2030, 4, 9, 9, 0))  # not a customer

    async def card(lines, user=None, at=None, **kw) -> Order:
        return await place_order(app, lines, user_id=user.id if user else None,
                                 email=user.email if user else "Guest@Example.com", created_at=at, **kw)

    orders: dict[str, Order] = {}
    orders["o_old"] = await card([line_for(rose)], c, ny(2030, 3, 10, 23, 30))
    orders["o_month"] = await card([line_for(rose)], c, ny(2030, 3, 11, 0, 30))
    orders["o1"] = await card([line_for(rose, quantity=2), line_for(peony)], a, ny(2030, 4, 8, 10, 0))
    orders["o2"] = await card([line_for(tulip, "deluxe")], a, ny(2030, 4, 8, 23, 59, 30))
    orders["o3"] = await card([line_for(rose)], None, ny(2030, 4, 9, 0, 0, 30))
    renamed = line_for(tulip, quantity=3)
    renamed.product_name = "Tulip Parade"  # the product was renamed before this order
    orders["o4"] = await card([renamed], b, ny(2030, 4, 9, 12, 0), method=DeliveryMethod.pickup,
                              payment=PaymentMethod.pay_on_pickup)
    orders["o5"] = await card([line_for(rose)], b, ny(2030, 4, 9, 13, 0))
    orders["o6"] = await card([line_for(rose)], b, ny(2030, 4, 9, 14, 0))
    orders["o7"] = await card([line_for(rose)], b, ny(2030, 4, 9, 14, 30))
    assert [orders[k].amounts.total for k in ("o_old", "o1", "o2", "o3", "o4")] == [6099, 28418, 8275, 6099, 9798]

    for key in ("o_old", "o_month", "o1", "o2", "o3"):
        await _pay(client, stripe_double, orders[key])
    admin_orders = "/api/v1/admin/orders"
    r = await client.post(f"{admin_orders}/{orders['o2'].id}/refund", headers=staff_headers,
                          json={"amount": 1000, "reason": "One stem was broken"})
    assert r.status_code == 200 and r.json()["payment_status"] == "partially_refunded", r.text
    for key in ("o3", "o5"):
        r = await client.post(f"{admin_orders}/{orders[key].id}/status", headers=staff_headers,
                              json={"status": "cancelled", "note": "Customer called"})
        assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    r = await client.post(f"{admin_orders}/{orders['o4'].id}/settle", headers=staff_headers)
    assert r.status_code == 200 and r.json()["payment_status"] == "paid", r.text
    assert await order_service(app).try_move(orders["o6"].id, OrderStatus.expired, by="system")

    o3 = await Order.get(orders["o3"].id)
    assert (o3.payment_status, o3.amount_refunded) == ("refunded", 6099)
    return {"rose": rose, "tulip": tulip, "peony": peony, "orders": orders}


def figures(gross: int, refunded: int, orders: int, units: int, aov: int) -> dict[str, int]:
    return {"gross": gross, "refunded": refunded, "net": gross - refunded, "orders": orders, "units": units,
            "average_order_value": aov}


def bucket(key: str, start: str, end: str, **f: int) -> dict[str, Any]:
    return {"key": key, "start": start, "end": end, **f}


ZERO = figures(0, 0, 0, 0, 0)
DAY_A = figures(36693, 1000, 2, 4, 18347)  # 36693 / 2 = 18346.5: half up (half to even would give 18346)
DAY_B = figures(15897, 6099, 2, 4, 7949)  # 7948.5 → 7949
TWO_DAYS = figures(52590, 7099, 4, 8, 13148)  # 13147.5 → 13148


async def test_sales_top_products_and_customers(app, client, staff, admin, stripe_double, make_settings,
                                                app_factory):
    _, staff_headers = staff
    shop = await seed_shop(app, client, stripe_double, staff_headers)

    r = await client.get(f"{API}/sales", params={"from": "2030-04-07", "to": "2030-04-10"}, headers=staff_headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {k: body[k] for k in ("from", "to", "interval", "time_zone", "currency")} == {
        "from": "2030-04-07", "to": "2030-04-10", "interval": "day", "time_zone": "America/New_York",
        "currency": "USD"}
    assert body["buckets"] == [
        bucket("2030-04-07", "2030-04-07", "2030-04-07", **ZERO),
        bucket("2030-04-08", "2030-04-08", "2030-04-08", **DAY_A),  # o2 at 23:59:30 New York time
        bucket("2030-04-09", "2030-04-09", "2030-04-09", **DAY_B),  # o3 at 00:00:30
        bucket("2030-04-10", "2030-04-10", "2030-04-10", **ZERO),
    ]
    assert body["totals"] == TWO_DAYS

    r = await client.get(f"{API}/sales", params={"from": "2030-04-06", "to": "2030-04-15", "interval": "week"},
                         headers=admin[1])
    assert r.status_code == 200, r.text
    assert r.json()["buckets"] == [bucket("2030-W14", "2030-04-06", "2030-04-07", **ZERO),
                                   bucket("2030-W15", "2030-04-08", "2030-04-14", **TWO_DAYS),
                                   bucket("2030-W16", "2030-04-15", "2030-04-15", **ZERO)]

    # Month buckets; o_old (23:30 on the DST day, 03:30Z on Mar 11) stays in its shop day Mar 10.
    r = await client.get(f"{API}/sales", params={"from": "2030-03-10", "to": "2030-04-09", "interval": "month"},
                         headers=staff_headers)
    march = figures(12198, 0, 2, 2, 6099)
    assert r.json()["buckets"] == [bucket("2030-03", "2030-03-10", "2030-03-31", **march),
                                   bucket("2030-04", "2030-04-01", "2030-04-09", **TWO_DAYS)]
    assert r.json()["totals"] == figures(64788, 7099, 6, 10, 10798)
    r = await client.get(f"{API}/sales", params={"from": "2030-03-11", "to": "2030-03-11"}, headers=staff_headers)
    assert r.json()["buckets"] == [bucket("2030-03-11", "2030-03-11", "2030-03-11", **figures(6099, 0, 1, 1, 6099))]

    ids = {k: shop[k].id for k in ("rose", "tulip", "peony")}
    r = await client.get(f"{API}/top-products", params={"from": "2030-04-08", "to": "2030-04-09"},
                         headers=staff_headers)
    assert r.status_code == 200, r.text
    assert r.json()["by"] == "revenue" and r.json()["currency"] == "USD"
    assert r.json()["items"] == [
        {"product_id": ids["peony"], "name": "Peony", "units": 1, "revenue": 16000, "orders": 1},
        {"product_id": ids["tulip"], "name": "Tulip Parade", "units": 4, "revenue": 15499, "orders": 2},
        {"product_id": ids["rose"], "name": "Rose", "units": 3, "revenue": 13500, "orders": 2},
    ]
    r = await client.get(f"{API}/top-products", params={"from": "2030-04-08", "to": "2030-04-09", "by": "units",
                                                        "limit": 2}, headers=staff_headers)
    assert [(i["product_id"], i["units"]) for i in r.json()["items"]] == [(ids["tulip"], 4), (ids["rose"], 3)]
    r = await client.get(f"{API}/top-products", params={"from": "2030-04-10", "to": "2030-04-30"},
                         headers=staff_headers)
    assert r.json()["items"] == []

    r = await client.get(f"{API}/customers", params={"from": "2030-04-08", "to": "2030-04-09"},
                         headers=staff_headers)
    assert r.status_code == 200, r.text
    assert r.json()["buckets"] == [
        {"key": "2030-04-08", "start": "2030-04-08", "end": "2030-04-08", "new_customers": 1},
        {"key": "2030-04-09", "start": "2030-04-09", "end": "2030-04-09", "new_customers": 1}]
    # A: o1 + o2 (repeat); the guest: o3; B: o4 (o5-o7 were never paid)
    assert r.json()["totals"] == {"new_customers": 2, "customers": 3, "repeat_customers": 1, "repeat_rate": 0.3333}
    r = await client.get(f"{API}/customers", params={"from": "2030-03-01", "to": "2030-04-30", "interval": "month"},
                         headers=staff_headers)
    assert [(b["key"], b["new_customers"]) for b in r.json()["buckets"]] == [("2030-03", 2), ("2030-04", 2)]
    assert r.json()["totals"] == {"new_customers": 4, "customers": 4, "repeat_customers": 2, "repeat_rate": 0.5}

    # A second API process with a tiny read cap: sales come from the daily rollups and are never refused; the
    # customers report (which reads orders) refuses instead of reading without bound.
    async with app_factory(make_settings(workers_enabled=False, reports_max_rows=3)) as small:
        async with new_client(small) as c2:
            r = await c2.get(f"{API}/sales", params={"from": "2030-04-08", "to": "2030-04-09"}, headers=staff_headers)
            assert r.status_code == 200 and r.json()["totals"] == TWO_DAYS
            r = await c2.get(f"{API}/customers", params={"from": "2030-04-08", "to": "2030-04-09"},
                             headers=staff_headers)
            body = assert_problem(r, 422, "report-too-large")
            assert body["limit"] == 3
            r = await c2.get(f"{API}/customers", params={"from": "2030-04-08", "to": "2030-04-08"},
                             headers=staff_headers)
            assert r.status_code == 200 and r.json()["totals"]["customers"] == 1


async def test_overview(app, client, staff, stripe_double):
    _, staff_headers = staff
    await seed_shop(app, client, stripe_double, staff_headers)
    r = await client.get(f"{API}/overview", headers=staff_headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["as_of"].startswith("2030-04-09T19:00:00") and body["time_zone"] == "America/New_York"

    def window(start: str, gross: int, refunded: int, orders: int, aov: int, new: int) -> dict[str, Any]:
        return {"from": start, "to": "2030-04-09", "gross": gross, "refunded": refunded, "net": gross - refunded,
                "orders": orders, "average_order_value": aov, "new_customers": new}

    assert body["today"] == window("2030-04-09", 15897, 6099, 2, 7949, 1)
    assert body["last_7_days"] == window("2030-04-03", 52590, 7099, 4, 13148, 2)
    assert body["last_30_days"] == window("2030-03-11", 58689, 7099, 5, 11738, 3)  # 11737.8
    expected = dict.fromkeys((s.value for s in OrderStatus), 0)
    expected.update(paid=3, confirmed=1, cancelled=2, expired=1, pending_payment=1)  # o_old is 31 days old
    assert body["orders_by_status"] == expected
    assert body["pending_payment"] == 1
    # Tulips deluxe sold out (0 <= 3) and Peony down to 3 (the default threshold is 3)
    assert body["low_stock_sizes"] == 2


async def test_overview_of_an_empty_shop(app, client, admin):
    r = await client.get(f"{API}/overview", headers=admin[1])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["today"]["orders"] == 0 and body["today"]["average_order_value"] == 0
    assert set(body["orders_by_status"].values()) == {0} and body["pending_payment"] == 0


@pytest.mark.parametrize("params", [
    {"from": "2030-04-10", "to": "2030-04-09"},  # from after to
    {"from": "2029-04-08", "to": "2030-04-09"},  # 367 days
    {"from": "2030-04-09"},  # no end
    {"from": "2030-04-31", "to": "2030-05-01"},  # no such day
    {"from": "2030-04-01", "to": "2030-04-09", "interval": "hour"},
    {"from": "2030-04-01", "to": "2030-04-09", "extra": "1"},  # unknown parameter
    {"from[$ne]": "", "to": "2030-04-09"},  # an operator smuggled into a name
])
async def test_bad_ranges_are_422(client, staff, params):
    for path in ("sales", "customers", "top-products"):
        if path == "top-products" and "interval" in params:
            continue
        assert_problem(await client.get(f"{API}/{path}", params=params, headers=staff[1]), 422, "validation-error")


async def test_top_products_limit_and_by_are_bounded(client, staff):
    base = {"from": "2030-04-01", "to": "2030-04-09"}
    for extra in ({"limit": 51}, {"limit": 0}, {"by": "profit"}):
        assert_problem(await client.get(f"{API}/top-products", params={**base, **extra}, headers=staff[1]), 422)
    r = await client.get(f"{API}/top-products", params={**base, "limit": 50}, headers=staff[1])
    assert r.status_code == 200 and r.json()["items"] == []


async def test_longest_range_has_every_day(client, staff):
    r = await client.get(f"{API}/sales", params={"from": "2028-01-01", "to": "2028-12-31"}, headers=staff[1])
    assert r.status_code == 200, r.text  # 2028 is a leap year: 366 days, the longest range allowed
    body = r.json()
    assert len(body["buckets"]) == 366 and body["buckets"][59]["key"] == "2028-02-29"
    assert body["totals"] == ZERO


async def test_reports_are_for_staff(client, customer):
    for path in ("sales?from=2030-04-01&to=2030-04-09", "top-products?from=2030-04-01&to=2030-04-09",
                 "customers?from=2030-04-01&to=2030-04-09", "overview"):
        assert_problem(await client.get(f"{API}/{path}"), 401)
        assert_problem(await client.get(f"{API}/{path}", headers=customer[1]), 403)
