"""Cache of public catalog reads, keyed by a catalog version that every catalog write bumps.

Keys are ``catalog:<db>:<version>:<namespace>:<digest of the normalized query>``. A write bumps the version
after it commits, so the next read misses and recomputes: a change is visible on the next request,
and old entries are simply never read again (they expire by TTL).

* With Redis (``REDIS_URL``) the version is a Redis counter and entries are shared by every API
  process; each process also keeps a small in-process LRU in front of Redis. That is safe because a
  local key includes the version read from Redis on every request.
* Without Redis, version and entries live in this process (a single-process deployment).

Stock is deliberately *not* part of what is cached as truth: callers overlay the current stock on
every request (see ``app/services/catalog_read.py``), so sales never need to bump the version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic_core import from_json, to_json
from redis.exceptions import RedisError

from app.config import Settings

log = logging.getLogger("app.catalog_cache")



class CatalogCache:
    def __init__(self, settings: Settings, redis: Any = None) -> None:
        self.redis = redis
        self.prefix = f"catalog:{settings.mongodb_db}:"  # one Redis may serve several databases
        self.version_key = self.prefix + "version"
        self.ttl = settings.catalog_cache_ttl_seconds
        self.max_entries = settings.catalog_cache_max_entries
        self._local: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._version = 0

    async def version(self) -> int | None:
        """The current catalog version; None when Redis is unreachable (then nothing is cached)."""
        if self.redis is None:
            return self._version
        try:
            raw = await self.redis.get(self.version_key)
        except RedisError as exc:
            log.warning("catalog cache: redis unavailable (%s); reading through", exc)
            return None
        return int(raw) if raw else 0

    async def bump(self) -> None:
        self._version += 1
        self._local.clear()  # unreachable now; free the memory
        if self.redis is not None:
            try:
                await self.redis.incr(self.version_key)
            except RedisError:
                # Other processes would keep serving the old version until the TTL: say so loudly.
                log.error("catalog cache: could not bump the shared version; entries may be stale for "
                          "up to %s s", self.ttl)

    async def get_or_load(self, namespace: str, params: Any, loader: Callable[[], Awaitable[Any]]) -> Any:
        """Return the cached value for (namespace, params) or compute it with ``loader``.

        Values must be JSON-compatible and are shared: callers must not mutate them.
        """
        version = await self.version()
        if version is None:
            return await loader()
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
                self._put(key, value, now)
                return value
        value = await loader()
        if self.redis is not None:
            try:
                await self.redis.set(key, to_json(value), ex=self.ttl)
            except RedisError:
                pass
        self._put(key, value, now)
        return value

    def _put(self, key: str, value: Any, now: float) -> None:
        self._local[key] = (now + self.ttl, value)
        self._local.move_to_end(key)
        while len(self._local) > self.max_entries:
            self._local.popitem(last=False)


def digest(params: Any) -> str:
    raw = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def get_catalog_cache(runtime: Any) -> CatalogCache:
    cache = runtime.extras.get("catalog_cache")
    if cache is None:
        cache = runtime.extras["catalog_cache"] = CatalogCache(runtime.settings, runtime.redis)
    return cache


async def notify_catalog_changed(runtime: Any) -> None:
    """Call after any committed write that changes public catalog data (products, categories, ratings).

    Not needed for ordinary sales: stock is overlaid fresh on every read. (A product selling out or
    coming back in stock is notified by ``app/services/inventory.py`` itself.)
    """
    await get_catalog_cache(runtime).bump()
