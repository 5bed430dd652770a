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

Ready responses: a catalog GET's encoded body and ETag are kept too (``render``), keyed by path and query
string, with the versions they were built from, whether they used stock, and the earliest expiry among
what they were built from. ``find`` gives one back while all of that holds (stale within the stale window,
re-rendered once in the background), and ``app.core.http_cache.ResponseCacheMiddleware`` sends it without
routing, validation or serialisation.
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
from contextvars import ContextVar
from typing import Any, Protocol

from pydantic_core import from_json, to_json
from redis.exceptions import RedisError
from starlette.requests import Request

from app.config import Settings
from app.core.bus import RESYNC, EventBus, Message
from app.core.http_cache import OnServe, StoredResponse, response_key

log = logging.getLogger("app.catalog_cache")

_pinned: ContextVar[tuple[int, int] | None] = ContextVar("catalog_versions", default=None)
# While a response is rendered: what it is built from (earliest expiry, whether it read stock).
_built_from: ContextVar[Ingredients | None] = ContextVar("catalog_built_from", default=None)
# In a background re-render: never serve a stale entry, load it (or join the load in flight).
_fresh_only: ContextVar[bool] = ContextVar("catalog_fresh_only", default=False)

POLL_FIRST, POLL_MAX = 0.005, 0.05  # seconds between polls of Redis while another process loads
_UNLOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class Ingredients:
    """What a rendered response was built from: the earliest ``fresh_until`` and whether stock was read."""

    __slots__ = ("fresh_until", "stock")

    def __init__(self) -> None:
        self.fresh_until = float("inf")
        self.stock = False

    def add(self, fresh_until: float, stock: bool) -> None:
        if fresh_until < self.fresh_until:
            self.fresh_until = fresh_until
        self.stock = self.stock or stock


class Rendered(StoredResponse):
    """A stored catalog response and what it depends on."""

    __slots__ = ("versions", "uses_stock", "fresh_until", "produce", "refreshing")

    def __init__(self, body: bytes, *, media_type: str, max_age: int, route: Any, endpoint: Any,
                 versions: tuple[int, int], built_from: Ingredients,
                 produce: Callable[[], Awaitable[Any]], on_serve: OnServe | None = None) -> None:
        super().__init__(body, media_type=media_type, max_age=max_age, route=route, endpoint=endpoint,
                         on_serve=on_serve)
        self.versions = versions
        self.uses_stock = built_from.stock
        self.fresh_until = built_from.fresh_until
        self.produce = produce
        self.refreshing = False


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
    async def get_or_load(self, namespace: str, params: Any, loader: Callable[[], Awaitable[Any]], *,
                          stock: bool = False) -> Any:
        """Return the cached value for (namespace, params) or compute it with ``loader`` (once, see above).

        ``stock=True``: the value depends on stock, so it is also keyed by the stock version and lives at
        most CATALOG_STOCK_TTL_SECONDS. Values must be JSON-compatible and are shared: do not mutate them.
        Errors of ``loader`` reach every caller waiting for that load; nothing is cached then.
        """
        versions = _pinned.get() or await self.versions()
        if versions is None:  # Redis unreachable: nothing is kept, but concurrent equal loads still share one
            key = f"{self.prefix}uncached:{namespace}:{digest(params)}"
            task = self._flights.get(key) or self._start(key, loader, 0, keep=False)
            return (await asyncio.shield(task))[1]
        version = f"{versions[0]}.{versions[1]}" if stock else str(versions[0])
        ttl = self.stock_ttl if stock else self.ttl
        key = f"{self.prefix}{version}:{namespace}:{digest(params)}"
        hit = self._local.get(key)
        if hit is not None:
            now = time.monotonic()
            fresh_until, value = hit
            if now < fresh_until or (now < fresh_until + self.stale and not _fresh_only.get()):
                if now >= fresh_until:
                    self._refresh_later(key, loader, ttl)
                self._local.move_to_end(key)
                self._note(fresh_until, stock)
                return value
        task = self._flights.get(key)
        if task is None:
            task = self._start(key, loader, ttl)
        fresh_until, value = await asyncio.shield(task)
        self._note(fresh_until, stock)
        return value

    @staticmethod
    def _note(fresh_until: float, stock: bool) -> None:
        built_from = _built_from.get()
        if built_from is not None:
            built_from.add(fresh_until, stock)

    def _start(self, key: str, loader: Callable[[], Awaitable[Any]], ttl: int, *,
               keep: bool = True) -> asyncio.Task[tuple[float, Any]]:
        context = contextvars.copy_context()  # the load serves every waiter: it notes nothing in the starter's
        context.run(_built_from.set, None)    # response
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

    # --- ready responses ----------------------------------------------------------------------------
    async def render(self, request: Request, produce: Callable[[], Awaitable[Any]], *, max_age: int,
                     media_type: str = "application/json",
                     on_serve: Callable[[Any], OnServe | None] | None = None) -> StoredResponse:
        """Build the response of a catalog GET with ``produce()`` (a JSON-compatible payload, or a str for
        other media types) and keep it for ``find`` when the versions were pinned for the request.
        ``on_serve(payload)`` may return a hook run on every answer of this response, this one included
        (a stale refresh keeps the hook: it depends on the request, e.g. the product id, not on stock)."""
        versions = _pinned.get()
        built_from = Ingredients()
        token = _built_from.set(built_from)
        try:
            payload = await produce()
        finally:
            _built_from.reset(token)
        body = payload.encode() if isinstance(payload, str) else to_json(payload)
        hook = on_serve(payload) if on_serve is not None else None
        scope = request.scope
        if versions is None:  # Redis unreachable: nothing is cached
            return StoredResponse(body, media_type=media_type, max_age=max_age, on_serve=hook)
        rendered = Rendered(body, media_type=media_type, max_age=max_age, route=scope.get("route"),
                            endpoint=scope.get("endpoint"), versions=versions, built_from=built_from,
                            produce=produce, on_serve=hook)
        self._keep_response(response_key(scope), rendered)
        return rendered

    def _keep_response(self, key: str, rendered: Rendered) -> None:
        self._drop_response(key)
        self._responses[key] = rendered
        self._response_bytes += len(rendered.body)
        while len(self._responses) > self.max_entries or self._response_bytes > self.max_response_bytes:
            self._drop_response(next(iter(self._responses)))

    def _drop_response(self, key: str, only: Rendered | None = None) -> None:
        old = self._responses.get(key)
        if old is not None and (only is None or old is only):
            del self._responses[key]
            self._response_bytes -= len(old.body)

    async def find(self, key: str) -> Rendered | None:
        """The stored response for ``key`` while the versions it was built from are current (the stock version
        only if it used stock) and it is fresh, or stale within CATALOG_STALE_SECONDS (then it is re-rendered
        once in the background). None: the request goes through the router."""
        rendered = self._responses.get(key)
        if rendered is None:
            return None
        versions = await self.versions()
        if versions is None or versions[0] != rendered.versions[0] or (
                rendered.uses_stock and versions[1] != rendered.versions[1]):
            self._drop_response(key, rendered)  # versions only grow: it will never be current again
            return None
        now = time.monotonic()
        if now >= rendered.fresh_until:
            if now >= rendered.fresh_until + self.stale:
                return None
            if not rendered.refreshing:
                rendered.refreshing = True
                self._keep(asyncio.ensure_future(self._rerender(key, rendered)))
        self._responses.move_to_end(key)
        return rendered

    async def _rerender(self, key: str, old: Rendered) -> None:
        fresh = _fresh_only.set(True)
        built_from = Ingredients()
        token = _built_from.set(built_from)
        try:
            async with self.pinned():
                versions = _pinned.get()
                payload = await old.produce()
        except Exception:
            self._drop_response(key, old)  # e.g. the product is gone: the router answers the next request
            raise
        finally:
            _built_from.reset(token)
            _fresh_only.reset(fresh)
            old.refreshing = False
        if versions is None:
            return
        body = payload.encode() if isinstance(payload, str) else to_json(payload)
        if self._responses.get(key) is old:
            self._keep_response(key, Rendered(body, media_type=old.media_type, max_age=old.max_age, route=old.route,
                                              endpoint=old.endpoint, versions=versions, built_from=built_from,
                                              produce=old.produce, on_serve=old.on_serve))

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


def get_catalog_cache(owner: CatalogCacheOwner) -> CatalogCache:
    """The app's catalog cache, held by ``owner``."""
    return owner.catalog_cache


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
