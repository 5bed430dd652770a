"""Cache of public catalog reads, keyed by a catalog version that every catalog write bumps.

Keys are ``catalog:<db>:<version>:<namespace>:<digest of the normalized query>``. A write bumps the version
after it commits, so the next read misses and recomputes: a change is visible on the next request,
and old entries are simply never read again (they expire by TTL).

* With Redis (``REDIS_URL``) the version is a Redis counter and entries are shared by every API
  process; each process also keeps a small in-process LRU in front of Redis. That is safe because a
  local key includes the version. A process keeps the versions it read in memory (no Redis round trip
  per request): the process that bumps a counter publishes ``catalog.version`` on the event bus in the
  same pipeline as the ``INCR``, every process drops its copy on that message, and a copy is trusted for
  at most CATALOG_VERSION_TTL_SECONDS, and not at all while the bus is down (then each request reads
  Redis, as before).
* Without Redis, version and entries live in this process (a single-process deployment).

Stock is cached apart from everything else, keyed by a second counter, the *stock version*, that
``app/services/inventory.py`` bumps on every stock change (a sale included). Static entries (names,
prices, ids of a page, facet counts) survive sales; only the small ``{product id: stock}`` maps are
read again, once per page after each change. Stock maps also expire after CATALOG_STOCK_TTL_SECONDS,
which bounds staleness should anything ever change stock without going through inventory.py.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from pydantic_core import from_json, to_json
from redis.exceptions import RedisError

from app.config import Settings
from app.core.bus import RESYNC, EventBus, Message

log = logging.getLogger("app.catalog_cache")

_pinned: ContextVar[tuple[int, int] | None] = ContextVar("catalog_versions", default=None)



class CatalogCache:
    def __init__(self, settings: Settings, redis: Any = None, bus: EventBus | None = None) -> None:
        self.redis = redis
        self.bus = bus
        self.versions_ttl = settings.catalog_version_ttl_seconds
        self._known: tuple[int, int] | None = None  # versions read from Redis, trusted until _known_until
        self._known_until = 0.0
        self._generation = 0  # bumped by every invalidation: a read that raced one is not kept
        if bus is not None:
            bus.on("catalog", self._invalidate)
            bus.on(RESYNC, self._invalidate)
        self.prefix = f"catalog:{settings.mongodb_db}:"  # one Redis may serve several databases
        self.version_key = self.prefix + "version"
        self.stock_key = self.prefix + "stock-version"
        self.stock_ttl = settings.catalog_stock_ttl_seconds
        self.ttl = settings.catalog_cache_ttl_seconds
        self.max_entries = settings.catalog_cache_max_entries
        self._local: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._version = 0
        self._stock_version = 0

    async def versions(self) -> tuple[int, int] | None:
        """(catalog version, stock version); None when Redis is unreachable (then nothing is cached)."""
        if self.redis is None:
            return self._version, self._stock_version
        now = time.monotonic()
        trusted = self.bus is not None and self.bus.live
        if trusted and self._known is not None and now < self._known_until:
            return self._known
        generation = self._generation
        try:
            catalog, stock = await self.redis.mget(self.version_key, self.stock_key)
        except RedisError as exc:
            log.warning("catalog cache: redis unavailable (%s); reading through", exc)
            return None
        versions = int(catalog or 0), int(stock or 0)
        if trusted and generation == self._generation:
            self._known, self._known_until = versions, now + self.versions_ttl
        return versions

    def _invalidate(self, _msg: Message | None = None) -> None:
        self._generation += 1
        self._known = None

    @asynccontextmanager
    async def pinned(self) -> AsyncIterator[None]:
        """Read the versions once for everything inside (one Redis round trip per request, one snapshot)."""
        token = _pinned.set(await self.versions())
        try:
            yield
        finally:
            _pinned.reset(token)

    async def version(self) -> int | None:
        versions = await self.versions()
        return versions[0] if versions else None

    async def bump(self) -> None:
        self._version += 1
        self._local.clear()  # unreachable now; free the memory
        await self._incr(self.version_key, self.ttl)

    async def bump_stock(self) -> None:
        self._stock_version += 1
        await self._incr(self.stock_key, self.stock_ttl)

    async def _incr(self, key: str, ttl: int) -> None:
        self._invalidate()
        if self.redis is not None:
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.incr(key)
                    if self.bus is not None:  # after the INCR: whoever gets the message reads the new value
                        self.bus.publish_in(pipe, "catalog", "catalog.version", {"key": key})
                    await pipe.execute()
                self._invalidate()  # a read in this process that raced the INCR must not be trusted either
            except RedisError:
                # Other processes would keep serving the old version until the TTL: say so loudly.
                log.error("catalog cache: could not bump %s; entries may be stale for up to %s s", key, ttl)

    async def get_or_load(self, namespace: str, params: Any, loader: Callable[[], Awaitable[Any]], *,
                          stock: bool = False) -> Any:
        """Return the cached value for (namespace, params) or compute it with ``loader``.

        ``stock=True``: the value depends on stock, so it is also keyed by the stock version and lives at
        most CATALOG_STOCK_TTL_SECONDS. Values must be JSON-compatible and are shared: do not mutate them.
        """
        versions = _pinned.get() or await self.versions()
        if versions is None:
            return await loader()
        version = f"{versions[0]}.{versions[1]}" if stock else str(versions[0])
        ttl = self.stock_ttl if stock else self.ttl
        key = f"{self.prefix}{version}:{namespace}:{digest(params)}"
        now = time.monotonic()
        hit = self._local.get(key)
        if hit is not None and hit[0] > now:
            self._local.move_to_end(key)
            return hit[1]
        if self.redis is not None:
            try:
                raw = await self.redis.get(key)
            except RedisError:
                raw = None
            if raw is not None:
                value = from_json(raw)
                self._put(key, value, now, ttl)
                return value
        value = await loader()
        if self.redis is not None:
            try:
                await self.redis.set(key, to_json(value), ex=ttl)
            except RedisError:
                pass
        self._put(key, value, now, ttl)
        return value

    def _put(self, key: str, value: Any, now: float, ttl: int) -> None:
        self._local[key] = (now + ttl, value)
        self._local.move_to_end(key)
        while len(self._local) > self.max_entries:
            self._local.popitem(last=False)


def digest(params: Any) -> str:
    raw = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def get_catalog_cache(runtime: Any) -> CatalogCache:
    cache = runtime.extras.get("catalog_cache")
    if cache is None:
        cache = runtime.extras["catalog_cache"] = CatalogCache(runtime.settings, runtime.redis,
                                                               getattr(runtime, "bus", None))
    return cache


async def notify_catalog_changed(runtime: Any) -> None:
    """Call after any committed write that changes public catalog data (products, categories, ratings).

    Not needed for stock changes: ``app/services/inventory.py`` handles those (notify_stock_changed).
    """
    await get_catalog_cache(runtime).bump()


async def notify_stock_changed(runtime: Any) -> None:
    """Called by inventory.adjust_stock after every committed stock change: stock maps are read again."""
    await get_catalog_cache(runtime).bump_stock()
