"""Found by a black-box pass: dates and instants at the edges of the calendar, and the browser session
header in CORS preflights. Each edge is a 422 problem that changes nothing, never a 500."""

from __future__ import annotations

import pytest

from tests.support import assert_problem

PROMOS = "/api/v1/admin/promo-codes"


@pytest.mark.parametrize("query", ["method=delivery&zip=10012&date=9999-12-31", "method=pickup&date=9999-12-31",
                                   "method=pickup&date=0001-01-01"])
async def test_delivery_dates_at_the_edge_of_the_calendar_are_422(client, query):
    r = await client.get(f"/api/v1/delivery/options?{query}")
    body = assert_problem(r, 422)
    assert body["errors"][0]["loc"][-1] == "date"


@pytest.mark.parametrize("field,value", [("valid_until", "9999-12-31T23:59:59-05:00"),
                                         ("valid_from", "0001-01-01T00:00:00+05:00")])
async def test_promo_instants_at_the_edge_of_the_calendar_are_422_and_create_nothing(client, admin, field, value):
    body = {"code": "EDGE1", "kind": "fixed", "amount": 100, field: value}
    assert_problem(await client.post(PROMOS, headers=admin[1], json=body), 422)
    listed = await client.get(PROMOS, headers=admin[1])
    assert [p["code"] for p in listed.json()["items"]] == []


async def test_report_ranges_at_the_edge_of_the_calendar_are_422(client, staff):
    r = await client.get("/api/v1/admin/reports/sales?from=9999-12-30&to=9999-12-31", headers=staff[1])
    assert_problem(r, 422)


async def test_the_cookie_session_header_passes_the_cors_preflight(client):
    r = await client.options("/api/v1/auth/login", headers={
        "Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-session-mode"})
    assert r.status_code == 200
    assert "x-session-mode" in r.headers["access-control-allow-headers"].lower()
