"""No stampede on catalog misses (issue 13, item 4): concurrent cold requests for one key run the query once, in
one process and across two processes sharing Redis; a lock left by a process that died delays a miss only up to
CATALOG_FILL_WAIT_SECONDS; an expired entry is served stale while one background refresh replaces it. The
database work is counted with a PyMongo command listener, never timed."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import uuid
from collections.abc import Iterator

import pytest
from pymongo import monitoring

from app.models.catalog import Product
from app.services import catalog_cache
from tests.catalog_fixtures import make_product
from tests.support import API, new_client

LIST = f"{API}/products?color=pink&sort=price_asc&limit=5"
CATALOG = ("products", "categories")


class Commands(monitoring.CommandListener):
    """Commands sent to one database's catalog collections while ``counting()`` is open."""

    def __init__(self) -> None:
        self.db: str | None = None
        self.seen: collections.Counter[tuple[str, str, bool]] = collections.Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name == self.db:
            coll = event.command.get(event.command_name)
            if coll in CATALOG:
                self.seen[(event.command_name, coll, "sort" in event.command)] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    @contextlib.contextmanager
    def counting(self, db: str) -> Iterator[collections.Counter[tuple[str, str, bool]]]:
        self.db, self.seen = db, collections.Counter()
        try:
            yield self.seen
        finally:
            self.db = None


_LISTENER = Commands()
monitoring.register(_LISTENER)  # applies to the clients created from now on (each app's)


async def _seed(app, n: int = 6) -> list[Product]:
    products = [await make_product(colors=["pink"], price_min=4000 + 100 * i) for i in range(n)]
    await app.state.runtime.catalog_cache.bump()
    return products


async def _cold(*apps) -> None:
    """Make every cached entry unreachable (a catalog write and a stock change elsewhere)."""
    cache = apps[0].state.runtime.catalog_cache
    await cache.bump()
    await cache.bump_stock()
    for app in apps[1:]:  # with Redis the others learn it through the bus; without, each has its own versions
        other = app.state.runtime.catalog_cache
        if other.redis is None:
            await other.bump()
            await other.bump_stock()


def _list_queries(seen) -> int:
    return seen[("find", "products", True)]


async def test_sixteen_cold_requests_for_one_page_query_the_database_once(make_settings, app_factory):
    settings = make_settings()
    async with app_factory(settings) as app, new_client(app) as client:
        await _seed(app)
        with _LISTENER.counting(settings.mongodb_db) as one:
            first = await client.get(LIST)
        assert first.status_code == 200 and len(first.json()["items"]) == 5
        assert _list_queries(one) == 1

        await _cold(app)
        with _LISTENER.counting(settings.mongodb_db) as sixteen:
            answers = await asyncio.gather(*(client.get(LIST) for _ in range(16)))
        assert {r.status_code for r in answers} == {200}
        assert {r.content for r in answers} == {first.content}
        assert sixteen == one  # the same commands as for one cold request: each query ran once


async def test_two_processes_sharing_redis_query_the_database_once(make_settings, app_factory, redis_url):
    settings = make_settings(redis_url=redis_url, catalog_fill_wait_seconds=30)  # never the fallback here
    async with app_factory(settings) as one, app_factory(settings) as two, new_client(one) as c1, \
            new_client(two) as c2:
        await _seed(one)
        expected = (await c1.get(LIST)).content

        await _cold(one, two)
        caches = [a.state.runtime.catalog_cache for a in (one, two)]
        for _ in range(500):  # process two learns of the new versions through the bus
            if await caches[1].versions() == await caches[0].versions():
                break
            await asyncio.sleep(0.01)
        loads = sum(c.loads for c in caches)
        with _LISTENER.counting(settings.mongodb_db) as seen:
            answers = await asyncio.gather(*(c.get(LIST) for c in (c1, c2) for _ in range(8)))
        assert {r.status_code for r in answers} == {200}
        assert {r.content for r in answers} == {expected}
        assert _list_queries(seen) == 1
        assert seen[("find", "products", False)] == 0  # the page's own query read its stock
        assert sum(c.loads for c in caches) - loads == 2  # the page and its stock: loaded by one process


async def test_a_lock_left_by_a_dead_process_delays_a_miss_only_until_the_wait_is_over(make_settings,
                                                                                       app_factory, redis_url):
    settings = make_settings(redis_url=redis_url, catalog_fill_wait_seconds=0.3)
    async with app_factory(settings) as app, new_client(app) as client:
        await _seed(app)
        cache = app.state.runtime.catalog_cache
        assert (await client.get(LIST)).status_code == 200
        entries = [k.decode() for k in await cache.redis.keys(cache.prefix + "*") if b":list:" in k or b":stock:" in k]
        assert len(entries) == 2
        await _cold(app)
        catalog, stock = await cache.versions()
        # "Another process" took the locks of this page's next entries and died before storing anything.
        for key in entries:
            namespace, digest = key.rsplit(":", 2)[-2:]
            version = f"{catalog}.{stock}" if namespace == "stock" else str(catalog)
            assert await cache.redis.set(f"{cache.prefix}{version}:{namespace}:{digest}:lock", "dead", px=60_000)
        with _LISTENER.counting(settings.mongodb_db) as seen:
            r = await client.get(LIST)
        assert r.status_code == 200 and len(r.json()["items"]) == 5
        assert _list_queries(seen) == 1  # loaded here after all


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0
        self._real = catalog_cache.time.monotonic

    def monotonic(self) -> float:
        return self._real() + self.offset


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(catalog_cache, "time", clock)
    return clock


async def _available(client, slug: str) -> int:
    r = await client.get(f"{API}/products/{slug}")
    assert r.status_code == 200, r.text
    return r.json()["sizes"][0]["available"]


async def test_expired_stock_is_served_stale_while_one_background_refresh_reads_it(make_settings, app_factory,
                                                                                   clock):
    settings = make_settings(catalog_stock_ttl_seconds=5, catalog_stale_seconds=30)
    async with app_factory(settings) as app, new_client(app) as client:
        product = (await _seed(app, 1))[0]
        assert await _available(client, product.slug) == 5
        # Stock changed by something that does not go through inventory.py (no stock version bump).
        coll = Product.get_pymongo_collection()
        await coll.update_one({"_id": product.id}, {"$inc": {"stock.standard": -3}})
        assert await _available(client, product.slug) == 5  # cached for CATALOG_STOCK_TTL_SECONDS

        clock.offset += 6  # past the TTL, within the stale window
        with _LISTENER.counting(settings.mongodb_db) as seen:
            stale = await asyncio.gather(*(_available(client, product.slug) for _ in range(8)))
            assert stale == [5] * 8  # nobody waited for the database
            for _ in range(500):  # the one background refresh lands
                if await _available(client, product.slug) == 2:
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("the stale stock was never refreshed")
        assert seen[("find", "products", False)] == 1  # one stock read for all of those requests

        clock.offset += 5 + 30 + 1  # past the stale window: the request itself reads the stock
        await coll.update_one({"_id": product.id}, {"$inc": {"stock.standard": -1}})
        assert await _available(client, product.slug) == 1


async def test_a_version_change_is_never_served_stale(make_settings, app_factory, clock):
    settings = make_settings(catalog_stock_ttl_seconds=5, catalog_stale_seconds=30)
    async with app_factory(settings) as app, new_client(app) as client:
        product = (await _seed(app, 1))[0]
        assert await _available(client, product.slug) == 5
        clock.offset += 6  # the cached stock expired: within the stale window
        from app.models.inventory import StockReason
        from app.services.inventory import adjust_stock

        await adjust_stock(app.state.runtime, product.id, "standard", -4, reason=StockReason.sale)
        assert await _available(client, product.slug) == 1  # on the very next request


async def test_cached_answers_keep_rate_limits_conditional_requests_and_header_bounds(make_settings,
                                                                                     app_factory):
    settings = make_settings(rate_limit_default="4/minute")
    async with app_factory(settings) as app, new_client(app, ip=f"10.9.{uuid.uuid4().int % 250}.7") as client:
        await _seed(app)
        first = await client.get(LIST)  # through the router; kept ready
        assert first.status_code == 200
        again = await client.get(LIST, headers={"If-None-Match": first.headers["etag"]})  # from the ready answer
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == first.headers["etag"]
        assert again.headers["cache-control"] == first.headers["cache-control"]
        assert again.headers["x-request-id"] and again.headers["x-content-type-options"] == "nosniff"
        too_long = await client.get(LIST, headers={"If-None-Match": '"' + "a" * 3000 + '"'})
        assert too_long.status_code == 422
        assert (await client.get(LIST)).content == first.content
        limited = await client.get(LIST)  # the fifth request in a minute
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.headers["content-type"].startswith("application/problem+json")
