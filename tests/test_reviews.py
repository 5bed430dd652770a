"""Reviews over HTTP: posting, one per product, author edits/deletes, moderation, lists, summary, aggregates."""

from __future__ import annotations

import pytest

from app.models.catalog import Product, ProductStatus
from app.models.review import Review
from app.models.user import Role
from tests.catalog_fixtures import make_product

API = "/api/v1"


async def post_review(client, headers, product_id, rating=5, title="Gorgeous", body="Fresh for ten days."):
    return await client.post(f"{API}/products/{product_id}/reviews", headers=headers,
                             json={"rating": rating, "title": title, "body": body})


async def aggregates(product_id: str) -> tuple[int, int, float]:
    p = await Product.get(product_id)
    return p.rating_sum, p.rating_count, p.rating_avg


async def summary(client, product_id):
    r = await client.get(f"{API}/products/{product_id}/reviews/summary")
    assert r.status_code == 200, r.text
    return r.json()


async def test_post_review_and_read_it_back(client, customer):
    user, headers = customer
    product = await make_product()
    r = await post_review(client, headers, product.id, rating=4, title="  Lovely peonies  ")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"].startswith("rev_") and body["product_id"] == product.id
    assert body["rating"] == 4 and body["title"] == "Lovely peonies" and body["body"] == "Fresh for ten days."
    assert body["author_name"] == f"{user.first_name} {user.last_name[0]}."
    assert body["verified_purchase"] is False and body["edited"] is False
    assert await aggregates(product.id) == (4, 1, 4.0)

    r = await client.get(f"{API}/reviews/{body['id']}")
    assert r.status_code == 200 and r.json()["title"] == "Lovely peonies"
    r = await client.get(f"{API}/products/{product.id}/reviews")
    assert r.status_code == 200
    assert [i["id"] for i in r.json()["items"]] == [body["id"]] and r.json()["total"] == 1
    assert await summary(client, product.id) == {
        "product_id": product.id, "count": 1, "average": 4.0, "histogram": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}}


async def test_second_review_of_same_product_is_409(client, customer, user_factory):
    _, headers = customer
    product = await make_product()
    assert (await post_review(client, headers, product.id, rating=5)).status_code == 201
    r = await post_review(client, headers, product.id, rating=1)
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("duplicate-review")
    assert await aggregates(product.id) == (5, 1, 5.0)
    _, other = await user_factory(Role.customer)
    assert (await post_review(client, other, product.id, rating=2)).status_code == 201
    assert await aggregates(product.id) == (7, 2, 3.5)


@pytest.mark.parametrize("payload", [
    {"rating": 0, "title": "x"}, {"rating": 6, "title": "x"}, {"rating": 4.5, "title": "x"},
    {"rating": "5", "title": "x"}, {"rating": True, "title": "x"}, {"rating": 5},
    {"rating": 5, "title": "   "}, {"rating": 5, "title": "t" * 121}, {"rating": 5, "title": "x", "body": "b" * 4001},
    {"rating": 5, "title": {"$ne": ""}}, {"rating": 5, "title": "x", "verified_purchase": True},
])
async def test_review_input_is_bounded(client, customer, payload):
    _, headers = customer
    product = await make_product()
    r = await client.post(f"{API}/products/{product.id}/reviews", headers=headers, json=payload)
    assert r.status_code == 422, r.text
    assert await Review.find({"product_id": product.id}).count() == 0


async def test_only_signed_in_customers_review_active_products(client, customer, staff):
    _, headers = customer
    product = await make_product()
    assert (await post_review(client, {}, product.id)).status_code == 401
    assert (await post_review(client, staff[1], product.id)).status_code == 403
    for status in (ProductStatus.draft, ProductStatus.archived):
        hidden_product = await make_product(status=status)
        assert (await post_review(client, headers, hidden_product.id)).status_code == 404
        assert (await client.get(f"{API}/products/{hidden_product.id}/reviews")).status_code == 404
        assert (await client.get(f"{API}/products/{hidden_product.id}/reviews/summary")).status_code == 404
    missing = "prd_01JD7Z00000000000000000000"
    assert (await post_review(client, headers, missing)).status_code == 404
    assert (await client.get(f"{API}/products/not-an-id/reviews")).status_code == 422


async def test_author_edits_own_review_and_aggregates_follow(client, customer, user_factory):
    _, headers = customer
    product = await make_product()
    rid = (await post_review(client, headers, product.id, rating=2)).json()["id"]
    _, other = await user_factory(Role.customer)
    await post_review(client, other, product.id, rating=5)
    assert await aggregates(product.id) == (7, 2, 3.5)

    r = await client.patch(f"{API}/reviews/{rid}", headers=headers, json={"rating": 4, "body": "It grew on me."})
    assert r.status_code == 200, r.text
    assert r.json()["rating"] == 4 and r.json()["body"] == "It grew on me." and r.json()["title"] == "Gorgeous"
    assert r.json()["edited"] is True
    assert await aggregates(product.id) == (9, 2, 4.5)
    assert (await client.get(f"{API}/reviews/{rid}")).json()["rating"] == 4

    r = await client.patch(f"{API}/reviews/{rid}", headers=headers, json={"title": "Better than I thought"})
    assert r.status_code == 200 and await aggregates(product.id) == (9, 2, 4.5)
    for bad in ({"rating": None}, {"title": None}, {"rating": 9}, {"user_id": "usr_x"}):
        assert (await client.patch(f"{API}/reviews/{rid}", headers=headers, json=bad)).status_code == 422
    assert (await client.patch(f"{API}/reviews/{rid}", headers=other, json={"rating": 1})).status_code == 403
    assert (await client.patch(f"{API}/reviews/{rid}", json={"rating": 1})).status_code == 401
    missing = "rev_01JD7Z00000000000000000000"
    assert (await client.patch(f"{API}/reviews/{missing}", headers=headers, json={"rating": 1})).status_code == 404
    assert await aggregates(product.id) == (9, 2, 4.5)


async def test_author_deletes_own_review(client, customer, user_factory):
    _, headers = customer
    _, other = await user_factory(Role.customer)
    product = await make_product()
    rid = (await post_review(client, headers, product.id, rating=1)).json()["id"]
    await post_review(client, other, product.id, rating=4)
    assert (await client.delete(f"{API}/reviews/{rid}", headers=other)).status_code == 403
    assert (await client.delete(f"{API}/reviews/{rid}")).status_code == 401
    assert await aggregates(product.id) == (5, 2, 2.5)
    assert (await client.delete(f"{API}/reviews/{rid}", headers=headers)).status_code == 204
    assert await aggregates(product.id) == (4, 1, 4.0)
    assert (await client.get(f"{API}/reviews/{rid}")).status_code == 404
    assert (await client.delete(f"{API}/reviews/{rid}", headers=headers)).status_code == 404
    assert await Review.get(rid) is None
    # Deleting frees the slot: the author may review again.
    assert (await post_review(client, headers, product.id, rating=3)).status_code == 201
    assert await aggregates(product.id) == (7, 2, 3.5)


async def test_staff_hide_and_unhide(client, customer, staff, user_factory):
    author, headers = customer
    _, other = await user_factory(Role.customer)
    product = await make_product()
    rid = (await post_review(client, headers, product.id, rating=1, title="Wilted")).json()["id"]
    keep = (await post_review(client, other, product.id, rating=5)).json()["id"]

    assert (await client.post(f"{API}/admin/reviews/{rid}/hide", headers=headers)).status_code == 403
    assert (await client.post(f"{API}/admin/reviews/{rid}/hide")).status_code == 401
    r = await client.post(f"{API}/admin/reviews/{rid}/hide", headers=staff[1])
    assert r.status_code == 200, r.text
    assert r.json()["hidden"] is True and r.json()["hidden_by"] == staff[0].id and r.json()["user_id"] == author.id
    assert await aggregates(product.id) == (5, 1, 5.0)
    # A second hide changes nothing (no double decrement).
    assert (await client.post(f"{API}/admin/reviews/{rid}/hide", headers=staff[1])).status_code == 200
    assert await aggregates(product.id) == (5, 1, 5.0)

    listed = (await client.get(f"{API}/products/{product.id}/reviews")).json()
    assert [i["id"] for i in listed["items"]] == [keep] and listed["total"] == 1
    s = await summary(client, product.id)
    assert s["count"] == 1 and s["average"] == 5.0 and s["histogram"]["1"] == 0
    assert (await client.get(f"{API}/reviews/{rid}")).status_code == 404
    # The author can neither change nor delete a hidden review, nor post another one.
    assert (await client.patch(f"{API}/reviews/{rid}", headers=headers, json={"rating": 5})).status_code == 404
    assert (await client.delete(f"{API}/reviews/{rid}", headers=headers)).status_code == 404
    assert (await post_review(client, headers, product.id)).status_code == 409

    r = await client.get(f"{API}/admin/reviews", headers=staff[1], params={"hidden": "true"})
    assert r.status_code == 200 and [i["id"] for i in r.json()["items"]] == [rid]
    r = await client.get(f"{API}/admin/reviews", headers=staff[1], params={"product_id": product.id})
    assert {i["id"] for i in r.json()["items"]} == {rid, keep}
    assert (await client.get(f"{API}/admin/reviews", headers=headers)).status_code == 403

    r = await client.post(f"{API}/admin/reviews/{rid}/unhide", headers=staff[1])
    assert r.status_code == 200 and r.json()["hidden"] is False and r.json()["hidden_at"] is None
    assert await aggregates(product.id) == (6, 2, 3.0)
    assert (await client.post(f"{API}/admin/reviews/{rid}/unhide", headers=staff[1])).status_code == 200
    assert await aggregates(product.id) == (6, 2, 3.0)
    assert (await client.get(f"{API}/reviews/{rid}")).status_code == 200
    missing = "rev_01JD7Z00000000000000000000"
    assert (await client.post(f"{API}/admin/reviews/{missing}/hide", headers=staff[1])).status_code == 404


async def test_list_sorts_and_pages(client, user_factory, staff):
    product = await make_product()
    ratings = [3, 5, 1, 5, 2, 4, 3, 5]
    ids = []
    for rating in ratings:
        _, headers = await user_factory(Role.customer)
        ids.append((await post_review(client, headers, product.id, rating=rating)).json()["id"])
    hidden = ids[1]
    await client.post(f"{API}/admin/reviews/{hidden}/hide", headers=staff[1])
    visible = [(rid, r) for rid, r in zip(ids, ratings, strict=True) if rid != hidden]

    async def all_pages(sort: str) -> list[dict]:
        items, cursor = [], None
        for _ in range(10):
            params = {"sort": sort, "limit": 3, **({"cursor": cursor} if cursor else {})}
            r = await client.get(f"{API}/products/{product.id}/reviews", params=params)
            assert r.status_code == 200, r.text
            assert len(r.json()["items"]) <= 3 and r.json()["total"] == len(visible)
            items += r.json()["items"]
            cursor = r.json()["next_cursor"]
            if cursor is None:
                return items
        raise AssertionError("pagination did not end")

    newest = await all_pages("newest")
    assert [i["id"] for i in newest] == [rid for rid, _ in reversed(visible)]
    highest = await all_pages("highest")
    assert [(i["id"], i["rating"]) for i in highest] == sorted(visible, key=lambda x: (-x[1], _desc(x[0])))
    lowest = await all_pages("lowest")
    assert [(i["id"], i["rating"]) for i in lowest] == sorted(visible, key=lambda x: (x[1], _desc(x[0])))

    s = await summary(client, product.id)
    assert s["histogram"] == {"1": 1, "2": 1, "3": 2, "4": 1, "5": 2} and s["count"] == 7
    assert s["average"] == round(sum(r for _, r in visible) / 7, 2)
    assert (await client.get(f"{API}/products/{product.id}/reviews", params={"sort": "random"})).status_code == 422
    assert (await client.get(f"{API}/products/{product.id}/reviews", params={"cursor": "garbage!"})).status_code == 422


def _desc(review_id: str) -> list[int]:
    return [-ord(c) for c in review_id]
