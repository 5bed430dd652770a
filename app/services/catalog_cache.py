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

Misses are loaded once (no stampede):

* **In a process**, concurrent misses of one key share one load (one task per key; a caller that goes away
  does not cancel it for the others).
* **Across processes** (Redis), the process that misses takes a short lock (``SET <key>:lock NX PX``, life
  CATALOG_FILL_WAIT_SECONDS) and loads; the others poll Redis for the value (5 → 50 ms apart) and load it
  themselves only if it has not come when the lock's life is over.
* **On expiry** (a TTL, not a version change), an entry is served stale for up to CATALOG_STALE_SECONDS while
  one background task reloads it (stale-while-revalidate): the stock overlay of a page is refreshed that way,
  not on the request that finds it old. A version change is never served stale: the next request loads.
Ready responses (the encoded bodies of whole catalog GETs) are kept by the ``ReadyResponses`` part, in
``app/services/catalog_responses.py``.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar, cast

from pydantic_core import from_json, to_json
from redis.exceptions import RedisError

from app.config import Settings
from app.core.bus import RESYNC, EventBus, Message
from app.services.catalog_responses import ReadyResponses, Rendered, built_from_var, fresh_only_var, pinned_versions_var

J = TypeVar("J")  # a cached value: JSON-compatible (see CatalogCache.get_or_load)

log = logging.getLogger("app.catalog_cache")

POLL_FIRST, POLL_MAX = 0.005, 0.05  # seconds between polls of Redis while another process loads
_UNLOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class CatalogCache(ReadyResponses):
    """The catalog's cache of values (``get_or_load``) and, through ``ReadyResponses``, of ready responses."""

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
        self.stale = settings.catalog_stale_seconds
        self.fill_wait = settings.catalog_fill_wait_seconds
        self.max_entries = settings.catalog_cache_max_entries
        self.max_response_bytes = settings.catalog_responses_max_bytes
        self._response_bytes = 0
        self._local: OrderedDict[str, tuple[float, Any]] = OrderedDict()  # key -> (fresh until, value)
        self._responses: OrderedDict[str, Rendered] = OrderedDict()
        self._flights: dict[str, asyncio.Task[tuple[float, Any]]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._version = 0
        self._stock_version = 0
        self.loads = 0  # loaders run by this process (a miss that another process or task filled is not one)
        if redis is not None:
            self._unlock = redis.register_script(_UNLOCK)

    # --- versions ---------------------------------------------------------------------------------
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
        token = pinned_versions_var.set(await self.versions())
        try:
            yield
        finally:
            pinned_versions_var.reset(token)

    async def version(self) -> int | None:
        versions = await self.versions()
        return versions[0] if versions else None

    async def bump(self) -> None:
        self._version += 1
        self._local.clear()  # unreachable now; free the memory
        self._responses.clear()
        self._response_bytes = 0
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

    # --- entries ----------------------------------------------------------------------------------
    async def get_or_load(self, namespace: str, params: Any, loader: Callable[[], Awaitable[J]], *,
                          stock: bool = False) -> J:
        """Return the cached value for (namespace, params) or compute it with ``loader`` (once, see above).

        ``stock=True``: the value depends on stock, so it is also keyed by the stock version and lives at
        most CATALOG_STOCK_TTL_SECONDS. Values must be JSON-compatible and are shared: do not mutate them.
        A value read from Redis comes back JSON-decoded (a datetime as its ISO string, a tuple as a list), so
        ``J`` should be a JSON shape (``dict[str, Any]``, ``list[...]``, ``str``) whose readers accept that.
        Errors of ``loader`` reach every caller waiting for that load; nothing is cached then.
        """
        versions = pinned_versions_var.get() or await self.versions()
        if versions is None:  # Redis unreachable: nothing is kept, but concurrent equal loads still share one
            key = f"{self.prefix}uncached:{namespace}:{digest(params)}"
            task = self._flights.get(key) or self._start(key, loader, 0, keep=False)
            return cast(J, (await asyncio.shield(task))[1])
        version = f"{versions[0]}.{versions[1]}" if stock else str(versions[0])
        ttl = self.stock_ttl if stock else self.ttl
        key = f"{self.prefix}{version}:{namespace}:{digest(params)}"
        hit = self._local.get(key)
        if hit is not None:
            now = time.monotonic()
            fresh_until, value = hit
            if now < fresh_until or (now < fresh_until + self.stale and not fresh_only_var.get()):
                if now >= fresh_until:
                    self._refresh_later(key, loader, ttl)
                self._local.move_to_end(key)
                self._note(fresh_until, stock)
                return cast(J, value)
        task = self._flights.get(key) or self._start(key, loader, ttl)
        fresh_until, value = await asyncio.shield(task)
        self._note(fresh_until, stock)
        return cast(J, value)

    @staticmethod
    def _note(fresh_until: float, stock: bool) -> None:
        built_from = built_from_var.get()
        if built_from is not None:
            built_from.add(fresh_until, stock)

    def _start(self, key: str, loader: Callable[[], Awaitable[Any]], ttl: int, *,
               keep: bool = True) -> asyncio.Task[tuple[float, Any]]:
        context = contextvars.copy_context()  # the load serves every waiter: it notes nothing in the starter's
        context.run(built_from_var.set, None)    # response
        work = self._fill(key, loader, ttl) if keep else self._share(loader)
        task = asyncio.get_running_loop().create_task(work, context=context)
        self._flights[key] = task

        def done(t: asyncio.Task[Any]) -> None:
            if self._flights.get(key) is t:
                del self._flights[key]
            if not t.cancelled() and t.exception() is not None:
                log.debug("catalog cache: loading %s failed", key)  # raised to whoever waits for it

        task.add_done_callback(done)
        return task

    def _refresh_later(self, key: str, loader: Callable[[], Awaitable[Any]], ttl: int) -> None:
        """Reload a stale entry in the background (once: a load in flight for the key is enough)."""
        if key not in self._flights:
            self._keep(self._start(key, loader, ttl))

    def _monotonic(self) -> float:
        """The clock of every freshness decision, values and ready responses alike (one to move in tests)."""
        return time.monotonic()

    def _keep(self, task: asyncio.Task[Any]) -> None:
        """Hold a background task until it ends (and log its failure)."""
        self._background.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._background.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.warning("catalog cache: background refresh failed: %r", t.exception())

        task.add_done_callback(done)

    async def _fill(self, key: str, loader: Callable[[], Awaitable[Any]], ttl: int) -> tuple[float, Any]:
        """Load ``key``: from Redis if another process has it, else under the Redis lock, else (lock held by
        another process) by waiting for its value, and loading it after all when that takes too long."""
        if self.redis is None:
            return self._put(key, await self._run(loader), ttl)
        got = await self._redis_get(key)
        if got is not None:
            return self._put(key, *got)
        lock, token = key + ":lock", secrets.token_hex(8)
        try:
            locked = bool(await self.redis.set(lock, token, nx=True, px=int(self.fill_wait * 1000)))
        except RedisError:
            locked = True  # no Redis: load, as without a lock
        if not locked:
            deadline = time.monotonic() + self.fill_wait
            delay = POLL_FIRST
            while time.monotonic() < deadline:
                await asyncio.sleep(delay)
                delay = min(delay * 2, POLL_MAX)
                got = await self._redis_get(key)
                if got is not None:
                    return self._put(key, *got)
            log.info("catalog cache: no value for %s after %.1f s; loading it here", key, self.fill_wait)
        try:
            if locked and (got := await self._redis_get(key)) is not None:
                return self._put(key, *got)  # stored by a process that held the lock a moment ago
            value = await self._run(loader)
            try:
                await self.redis.set(key, to_json(value), ex=ttl)
            except RedisError:
                pass
            return self._put(key, value, ttl)
        finally:
            if locked:
                try:
                    await self._unlock(keys=[lock], args=[token])
                except RedisError:
                    pass  # it expires by itself

    async def _share(self, loader: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
        return 0.0, await self._run(loader)

    async def _run(self, loader: Callable[[], Awaitable[Any]]) -> Any:
        self.loads += 1
        return await loader()

    async def _redis_get(self, key: str) -> tuple[Any, float] | None:
        """(value, seconds it has left) from Redis, or None (absent, or Redis unreachable)."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.get(key)
                pipe.pttl(key)
                raw, pttl = await pipe.execute()
        except RedisError:
            return None
        if raw is None:
            return None
        return from_json(raw), max(pttl, 0) / 1000

    def _put(self, key: str, value: Any, ttl: float) -> tuple[float, Any]:
        fresh_until = time.monotonic() + ttl
        self._local[key] = (fresh_until, value)
        self._local.move_to_end(key)
        while len(self._local) > self.max_entries:
            self._local.popitem(last=False)
        return fresh_until, value

    async def close(self) -> None:
        """Cancel background refreshes (at shutdown)."""
        tasks = [*self._background, *self._flights.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def digest(params: Any) -> str:
    raw = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


class CatalogCacheOwner(Protocol):
    """What holds the app's one catalog cache (``app.composition.Runtime``, which builds it on first use)."""

    @property
    def catalog_cache(self) -> CatalogCache: ...


def _cache_of(target: CatalogCache | CatalogCacheOwner) -> CatalogCache:
    return target if isinstance(target, CatalogCache) else target.catalog_cache


async def notify_catalog_changed(target: CatalogCache | CatalogCacheOwner) -> None:
    """Call after any committed write that changes public catalog data (products, categories, ratings);
    ``target``: the app's catalog cache, or what holds it.

    Not needed for stock changes: ``app/services/inventory.py`` handles those (notify_stock_changed).
    """
    await _cache_of(target).bump()


async def notify_stock_changed(target: CatalogCache | CatalogCacheOwner) -> None:
    """Called by inventory.adjust_stock after every committed stock change: stock maps are read again."""
    await _cache_of(target).bump_stock()
