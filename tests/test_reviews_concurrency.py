"""Product rating aggregates stay exact under concurrent review writes by many users."""

from __future__ import annotations

import asyncio
import random

import pytest

from app.models.catalog import Product
from app.models.review import Review
from app.models.user import Role
from tests.catalog_fixtures import make_product
from tests.conftest import create_user, login_headers

API = "/api/v1"
USERS = 20


@pytest.fixture
def settings(make_settings):
    # Twenty logins from one test client would trip the per-IP login limit.
    return make_settings(rate_limit_login_ip="1000/minute")


async def logged_in_customers(client, n: int) -> list[dict[str, str]]:
    users = [await create_user(Role.customer) for _ in range(n)]
    return list(await asyncio.gather(*(login_headers(client, u.email) for u in users)))


async def assert_aggregates_match_visible_reviews(client, product_id: str) -> tuple[int, int]:
    visible = await Review.find({"product_id": product_id, "hidden": False}).to_list()
    expected_sum, expected_count = sum(r.rating for r in visible), len(visible)
    product = await Product.get(product_id)
    assert (product.rating_sum, product.rating_count) == (expected_sum, expected_count)
    assert product.rating_avg == (round(expected_sum / expected_count, 2) if expected_count else 0.0)
    summary = (await client.get(f"{API}/products/{product_id}/reviews/summary")).json()
    assert summary["count"] == expected_count and summary["average"] == product.rating_avg
    assert sum(int(star) * n for star, n in summary["histogram"].items()) == expected_sum
    return expected_sum, expected_count


async def test_concurrent_reviews_keep_aggregates_exact(client, staff):
    product = await make_product()
    customers = await logged_in_customers(client, USERS)
    rng = random.Random(7)
    ratings = [rng.randint(1, 5) for _ in customers]

    async def review(headers, rating):
        r = await client.post(f"{API}/products/{product.id}/reviews", headers=headers,
                              json={"rating": rating, "title": f"{rating} stars"})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    ids = await asyncio.gather(*(review(h, r) for h, r in zip(customers, ratings, strict=True)))
    assert await assert_aggregates_match_visible_reviews(client, product.id) == (sum(ratings), USERS)

    # Now everything at once: a third edit, a quarter delete, staff hide some (twice) and unhide one.
    edits = [client.patch(f"{API}/reviews/{rid}", headers=h, json={"rating": 6 - r})
             for rid, h, r in list(zip(ids, customers, ratings, strict=True))[:7]]
    deletes = [client.delete(f"{API}/reviews/{rid}", headers=h)
               for rid, h in list(zip(ids, customers, strict=True))[7:12]]
    hides = [client.post(f"{API}/admin/reviews/{rid}/hide", headers=staff[1]) for rid in ids[12:17] + ids[12:15]]
    duplicates = [client.post(f"{API}/products/{product.id}/reviews", headers=h, json={"rating": 5, "title": "again"})
                  for h in customers[17:]]
    results = await asyncio.gather(*edits, *deletes, *hides, *duplicates)
    assert [r.status_code for r in results] == [200] * 7 + [204] * 5 + [200] * 8 + [409] * 3
    await client.post(f"{API}/admin/reviews/{ids[12]}/unhide", headers=staff[1])

    expected = [6 - r for r in ratings[:7]] + ratings[12:13] + ratings[17:]
    assert await assert_aggregates_match_visible_reviews(client, product.id) == (sum(expected), len(expected))
