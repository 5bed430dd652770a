"""Search analytics keep no personal data typed into the search box: a query with an ``@`` or a phone-number-like
run of 7+ digits is recorded as ``[redacted]`` (with its result count), over HTTP from the search to the staff
report; an ordinary query is still reported as typed (folded)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from app.models.analytics import AnalyticsBucket
from app.services.analytics import search_query_to_store
from tests.factories import make_product
from tests.support import API

VISITOR = {"X-Visitor-Id": "visitor_search_test_01"}
PERSONAL = ["olivia@example.com", "555-123-4567 John Smith", "+1 (555) 123.4567", "Olivia\uff20Example.com",
            "peonies for olivia, call 5551234567"]
PERSONAL_WORDS = ("olivia", "example", "john", "smith", "call", "555", "123", "4567")


@pytest.fixture
def settings(make_settings):
    return make_settings(analytics_flush_seconds=0.05, analytics_batch_size=50)


async def searches_report(client: Any, staff_headers: dict[str, str], count: int) -> dict[str, Any]:
    """Poll the staff searches report (yesterday..tomorrow, whatever the shop's zone) until it counts ``count``
    searches (the writer runs every 50 ms here)."""
    today = dt.date.today()
    rng = {"from": (today - dt.timedelta(days=1)).isoformat(), "to": (today + dt.timedelta(days=1)).isoformat()}
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        r = await client.get(f"{API}/admin/reports/searches", headers=staff_headers, params={**rng, "limit": 50})
        assert r.status_code == 200, r.text
        if r.json()["searches"] >= count:
            return r.json()
        assert asyncio.get_running_loop().time() < deadline, r.json()
        await asyncio.sleep(0.02)


async def test_queries_that_look_like_personal_data_are_not_stored_as_typed(app, client, staff):
    await make_product(name="Pêche Peonies")
    for q in [*PERSONAL, "Pêche", "Peonies!"]:
        r = await client.get(f"{API}/products", params={"q": q}, headers=VISITOR)
        assert r.status_code == 200, (q, r.text)  # the shopper's search itself is unchanged

    body = await searches_report(client, staff[1], len(PERSONAL) + 2)
    assert body["searches"] == len(PERSONAL) + 2
    top = {t["query"]: (t["searches"], t["shoppers"], t["last_results"]) for t in body["top"]}
    assert top == {"[redacted]": (len(PERSONAL), 1, 0), "peche": (1, 1, 1), "peonies": (1, 1, 1)}
    # The "searches with no results" figures still count the redacted searches.
    assert body["searches_without_results"] == len(PERSONAL)
    assert [(t["query"], t["searches"]) for t in body["without_results"]] == [("[redacted]", len(PERSONAL))]
    queries = [t["query"] for t in body["top"] + body["without_results"]]
    assert not [w for w in PERSONAL_WORDS if w in " ".join(queries)]
    # Nor is it anywhere in the stored events.
    buckets = await AnalyticsBucket.get_pymongo_collection().find({"kind": "search"}).to_list(None)
    assert sorted(e["query"] for b in buckets for e in b["events"]) == ["[redacted]"] * len(PERSONAL) + [
        "peche", "peonies"]


@pytest.mark.parametrize(("q", "stored"), [
    ("olivia@example.com", "[redacted]"), ("@florist", "[redacted]"), ("５５５１２３４", "[redacted]"),
    ("(555) 123-4567", "[redacted]"), ("+44 20 7946 0958", "[redacted]"), ("555 - 1234", "[redacted]"),
    ("x" * 95 + " 555-1234", "[redacted]"),  # judged on the whole query, not on what the cut keeps
    ("2026-05-10 roses", "[redacted]"),  # a date typed with 8 digits is taken for a phone number too
    ("212/555/0199", "[redacted]"), ("212_555_0198", "[redacted]"), ("212 | 555 | 0195", "[redacted]"),
    ("555\u2013123\u20134567", "[redacted]"), ("555\u2212123\u22124567", "[redacted]"),
    ("olivia%40example.com", "[redacted]"), ("olivia&#64;example.com", "[redacted]"),
    ("12 red roses", "12 red roses"), ("roses 123 456", "roses 123 456"),
    ("50 roses, 100 tulips", "50 roses 100 tulips"),
    ("555 1 2 3", "555 1 2 3"), ("Olivia's Pêche Peonies", "olivias peche peonies"),  # names are not detected
])
def test_the_redaction_rule(q, stored):
    assert search_query_to_store(q) == stored
