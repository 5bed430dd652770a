"""Client-supplied tokens are fully validated: forged cursors, unknown list parameters, order tokens and
conditional-request headers are a 4xx problem (or ignored where the API says so), never a 500.

The sweeps read the live OpenAPI document, so a list added later is covered without touching this file."""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

import pytest

from app.models.user import Role
from tests.conftest import create_user, login_headers
from tests.factories import make_product
from tests.support import API, assert_problem

# Sort variants that change a list's cursor shape (its sort keys and their types).
VARIANTS: dict[str, list[dict[str, str]]] = {
    "/products": [{}, {"sort": "price_asc"}, {"sort": "popular"}, {"sort": "rating"}, {"q": "blush"},
                  {"q": "blush", "sort": "price_desc"}],
    "/products/{product_id}/reviews": [{}, {"sort": "highest"}],
}


def b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def forged_cursors() -> list[str]:
    """Well-formed base64 JSON lists of 1 to 3 values with one value of the wrong type or out of range, and
    payloads that are not lists at all."""
    bad_values: list[Any] = [2**63, -(2**63) - 1, float("inf"), float("nan"), True, None, {"a": 1}, "x" * 65]
    out = [b64(v) for v in ({"a": 1}, "text", 5, [], [[]] * 3)] + ["!!!", "W10", "e30", "%%%%"]
    for n in (1, 2, 3):
        for i in range(n):
            for bad in bad_values:
                values: list[Any] = ["prd_01JD7Z00000000000000000000"] * n
                values[i] = bad
                out.append(b64(values))
    return out


def list_operations(app) -> list[str]:
    """Every GET path whose operation takes a ``cursor`` query parameter."""
    paths = []
    for path, ops in app.openapi()["paths"].items():
        params = ops.get("get", {}).get("parameters", [])
        if any(p.get("in") == "query" and p.get("name") == "cursor" for p in params):
            paths.append(path.removeprefix(API))
    return sorted(paths)


def fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)


@pytest.fixture
def settings(make_settings):
    """The sweeps send hundreds of requests from one address: no default rate limit here."""
    return make_settings(rate_limit_enabled=False)


@pytest.fixture
async def lists(app, client):
    """(admin headers, {path param: id}, list paths) with a real product behind ``{product_id}``."""
    admin = await create_user(Role.admin)
    product = await make_product()
    paths = list_operations(app)
    assert {"/products", "/orders", "/admin/users", "/admin/orders", "/admin/products", "/admin/promo-codes",
            "/admin/reviews", "/admin/delivery/zones", "/products/{product_id}/reviews",
            "/admin/products/{product_id}/stock-movements"} <= set(paths)
    return await login_headers(client, admin.email), {"product_id": product.id}, paths


async def test_every_list_answers_a_forged_cursor_with_422(client, lists):
    headers, ids, paths = lists
    cursors = forged_cursors()
    for path in paths:
        url = API + fill(path, ids)
        for variant in VARIANTS.get(path, [{}]):
            assert (await client.get(url, params=variant, headers=headers)).status_code == 200, (path, variant)
            for cursor in cursors:
                r = await client.get(url, params={**variant, "cursor": cursor}, headers=headers)
                assert r.status_code == 422, (path, variant, base64.urlsafe_b64decode(cursor + "==="), r.text)
                assert_problem(r, 422, "invalid-cursor")


async def test_a_cursor_from_one_sort_order_is_refused_by_another(client):
    for i in range(3):
        await make_product(name=f"Blush {i}", prices={"standard": 4000 + i})
    r = await client.get(f"{API}/products", params={"sort": "price_asc", "limit": 1})
    cursor = r.json()["next_cursor"]
    assert json.loads(base64.urlsafe_b64decode(cursor + "==="))[1] == 4000  # after the list's scope tag
    assert (await client.get(f"{API}/products", params={"sort": "price_asc", "cursor": cursor})).status_code == 200
    assert_problem(await client.get(f"{API}/products", params={"cursor": cursor}), 422, "invalid-cursor")
    newest = (await client.get(f"{API}/products", params={"limit": 1})).json()["next_cursor"]
    assert_problem(await client.get(f"{API}/products", params={"sort": "price_asc", "cursor": newest}), 422,
                   "invalid-cursor")


async def test_a_cursor_of_one_list_is_refused_by_another(client, lists):
    headers, _, _ = lists
    await create_user(Role.customer)
    for _ in range(2):
        await client.post(f"{API}/admin/promo-codes", headers=headers, json={
            "code": f"CURSOR{uuid.uuid4().hex[:6].upper()}", "kind": "percentage", "percent": 10})
    users = (await client.get(f"{API}/admin/users", params={"limit": 1}, headers=headers)).json()["next_cursor"]
    promos = (await client.get(f"{API}/admin/promo-codes", params={"limit": 1}, headers=headers)).json()
    assert users and promos["next_cursor"]  # both newest first by id: the same shape of cursor
    assert (await client.get(f"{API}/admin/users", params={"cursor": users}, headers=headers)).status_code == 200
    r = await client.get(f"{API}/admin/promo-codes", params={"cursor": users}, headers=headers)
    assert_problem(r, 422, "invalid-cursor")


async def test_every_list_rejects_unknown_query_parameters(client, lists):
    headers, ids, paths = lists
    for path in paths:
        r = await client.get(API + fill(path, ids), params={"limit": 5, "colour": "red"}, headers=headers)
        body = assert_problem(r, 422, "validation-error")
        assert ["query", "colour"] in [e["loc"] for e in body["errors"]], (path, body)


@pytest.mark.parametrize("token", ["a" * 15, "a" * 129, "not a token at all!", "tok\u00e9n" * 5])
async def test_a_malformed_order_token_is_422(client, token):
    r = await client.get(f"{API}/orders/ord_01JD7Z00000000000000000000",
                         headers={"X-Order-Token": token.encode()})
    assert_problem(r, 422, "validation-error")


async def test_a_well_formed_unknown_order_token_is_404(client):
    r = await client.get(f"{API}/orders/ord_01JD7Z00000000000000000000", headers={"X-Order-Token": "A" * 43})
    assert_problem(r, 404)


@pytest.mark.parametrize("token", ["x" * 19, "x" * 129, "not a token!", "\u00e9" * 30, "x" * 5000])
async def test_a_malformed_cart_token_is_no_cart(client, token):
    headers = {"X-Cart-Token": token.encode()}
    r = await client.get(f"{API}/cart", headers=headers)
    assert r.status_code == 200 and r.json()["id"] is None and r.json()["lines"] == []
    assert_problem(await client.delete(f"{API}/cart/promo", headers=headers), 404, "cart-not-found")


@pytest.mark.parametrize("value", ['"nope"', "W/", ",,,", 'W/""', "\u00ff\u00fe", "*, x"])
async def test_arbitrary_if_none_match_values_never_fail(client, value):
    await make_product()
    first = await client.get(f"{API}/products")
    etag = first.headers["etag"]
    r = await client.get(f"{API}/products", headers={"If-None-Match": value.encode()})
    assert r.status_code == 200 and r.json() == first.json()
    both = f"W/{etag}, {value}".encode()
    assert (await client.get(f"{API}/products", headers={"If-None-Match": both})).status_code == 304


async def test_an_oversized_if_none_match_is_a_422_problem(client):
    await make_product()
    r = await client.get(f"{API}/products", headers={"If-None-Match": '"' + "a" * 4000 + '"'})
    assert_problem(r, 422)


async def test_every_operation_refuses_a_query_parameter_it_does_not_declare(app, client):
    """Not only the paginated lists: /products/featured, /categories, /users/me/addresses, admin lists… a
    misspelt parameter is a 422 naming it, never silently ignored (checked before sign-in, so anonymously)."""
    from fastapi.routing import APIRoute, iter_route_contexts

    gets = [r for r in iter_route_contexts(app.routes) if isinstance(r.original_route, APIRoute)
            and "GET" in r.methods and r.path_format.startswith(API) and "{" not in r.path_format]
    # The redirects of email links ignore what link trackers add (``EMAIL_LINK``): they are the exception.
    links = {r.path_format for r in gets if (r.original_route.openapi_extra or {}).get("x-extra-query") == "ignored"}
    assert links == {f"{API}/newsletter/unsubscribe", f"{API}/stock-alerts/stop"}
    paths = sorted({r.path_format for r in gets} - links)
    assert {f"{API}/products/featured", f"{API}/categories", f"{API}/users/me/favorites",
            f"{API}/admin/inventory/low-stock"} <= set(paths)
    for path in paths:
        r = await client.get(path, params={"colour": "red"})
        body = assert_problem(r, 422, "validation-error")
        assert [e["loc"] for e in body["errors"]] == [["query", "colour"]], (path, body)
    r = await client.get(f"{API}/products/featured", params={"limit": 3})  # a declared one still works
    assert r.status_code == 200, r.text
