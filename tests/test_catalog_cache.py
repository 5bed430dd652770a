"""The catalog cache: static data cached until a catalog write, stock always live; in-process and Redis."""

from __future__ import annotations

import httpx
from asgi_lifespan import LifespanManager

from app.main import create_app
from app.models.catalog import Product
from app.models.inventory import StockReason
from app.services.inventory import adjust_stock
from tests.catalog_helpers import API, make_category, make_product


async def _list(client: httpx.AsyncClient) -> dict[str, dict]:
    r = await client.get(f"{API}/products", params={"occasion": "birthday", "sort": "price_asc"})
    assert r.status_code == 200
    return {i["slug"]: i for i in r.json()["items"]}


async def _check_cache_semantics(runtime, reader: httpx.AsyncClient, writer: httpx.AsyncClient,
                                 headers: dict[str, str]) -> None:
    cat = await make_category(writer, headers, "Cached")
    p = await make_product(writer, headers, cat["id"], "Cache Rose")  # standard 5, deluxe 2
    before = await _list(reader)
    assert before["cache-rose"]["in_stock"] and before["cache-rose"]["name"] == "Cache Rose"
    detail_etag = (await reader.get(f"{API}/products/cache-rose")).headers["etag"]

    # A write that skips notify_catalog_changed is not seen: the static data really comes from the cache...
    await Product.find_one(Product.id == p["id"]).update({"$set": {"name": "Sneaky Rename"}})
    assert (await _list(reader))["cache-rose"]["name"] == "Cache Rose"

    # ...but stock is live: sell out the deluxe size (a sale; the catalog version is not bumped).
    version = await _version(runtime)
    await adjust_stock(runtime, p["id"], "deluxe", -2, reason=StockReason.sale)
    assert await _version(runtime) == version
    item = (await _list(reader))["cache-rose"]
    assert {s["code"]: (s["available"], s["in_stock"]) for s in item["sizes"]} == {
        "standard": (5, True), "deluxe": (0, False)}
    r = await reader.get(f"{API}/products/cache-rose", headers={"If-None-Match": detail_etag})
    assert r.status_code == 200 and r.json()["sizes"][1]["available"] == 0

    # Selling the last units takes the product out of in-stock lists on the next request.
    await adjust_stock(runtime, p["id"], "standard", -5, reason=StockReason.sale)
    assert (await _list(reader))["cache-rose"]["in_stock"] is False
    r = await reader.get(f"{API}/products", params={"in_stock": "true", "occasion": "birthday"})
    assert "cache-rose" not in {i["slug"] for i in r.json()["items"]}
    assert r.json()["total"] == 0

    # An admin edit is visible on the next request.
    r = await writer.patch(f"{API}/admin/products/{p['id']}", json={"name": "Cache Rose Deluxe"}, headers=headers)
    assert r.status_code == 200
    assert (await _list(reader))["cache-rose"]["name"] == "Cache Rose Deluxe"
    assert (await reader.get(f"{API}/products/cache-rose")).json()["name"] == "Cache Rose Deluxe"
    s = (await reader.get(f"{API}/search/suggest", params={"q": "cache"})).json()["items"]
    assert [i["label"] for i in s if i["kind"] == "product"] == ["Cache Rose Deluxe"]
    r = await writer.post(f"{API}/admin/products/{p['id']}/archive", headers=headers)
    assert "cache-rose" not in await _list(reader)
    assert (await reader.get(f"{API}/products/cache-rose")).status_code == 404


async def _version(runtime) -> int:
    return await runtime.catalog_cache.version()


async def test_in_process_cache(app, client, staff):
    _, headers = staff
    await _check_cache_semantics(app.state.runtime, client, client, headers)


async def test_redis_cache_shared_by_two_processes(app, client, staff, make_settings, redis_url):
    """Two app instances on one database and one Redis: a write through one is seen by the other."""
    _, headers = staff
    settings = make_settings(redis_url=redis_url)
    one, two = create_app(settings), create_app(make_settings(redis_url=redis_url))
    async with LifespanManager(one, startup_timeout=30), LifespanManager(two, startup_timeout=30):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=one), base_url="http://one") as c1, \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=two), base_url="http://two") as c2:
            assert one.state.runtime.redis is not None
            await _check_cache_semantics(two.state.runtime, c1, c2, headers)
            keys = await one.state.runtime.redis.keys(f"catalog:{settings.mongodb_db}:*")
            assert len(keys) > 3  # entries live in Redis, shared
