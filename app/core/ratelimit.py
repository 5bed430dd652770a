"""Rate limits with the asyncio API of ``limits`` (``limits.aio``): a default per-IP limit on every API route,
named limits for auth endpoints, and limits on failed attempts (``count_failures``: promo codes).

Counters live in Redis when REDIS_URL is set (the moving-window strategy over ``limits``' asyncio Redis
storage, sharing the app's ``redis.asyncio`` connection pool), so several API processes share them; in
process memory otherwise (``limits``' asyncio memory storage). Nothing here blocks the event loop: every
storage call is awaited. With the storage down, requests go through (fail open) rather than take the shop
offline; a warning is logged.

The default limit is an app-level dependency (``default_limit``); routes passed to ``RateLimiter.exempt``
(health probes, Stripe's webhook) skip it. It is a coarse flood guard on every request, so by default
(``RATE_LIMIT_DEFAULT_SCOPE=process``) each API process counts it in its own memory: no Redis round trip per
request (with Redis it cost the cached catalog page more than half its throughput in ``bench/run.py``), at the
price of N processes allowing up to N times the limit per IP. ``shared`` counts it in Redis too. The named limits
on abusable flows (login, register, password reset, promo codes, newsletter, stock alerts) are always shared.

Over a limit the answer is a 429 ``rate-limited`` problem with
``Retry-After`` (whole seconds until the oldest counted hit leaves the window).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

from fastapi import Request
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from app.config import Settings
from app.core.contract import declares
from app.core.errors import AppError, TooManyRequests

log = logging.getLogger("app.ratelimit")



def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def endpoint_name(endpoint: Callable[..., Any]) -> str:
    """``module.function`` of a route's endpoint: the name a limit and an exemption are keyed by."""
    return f"{endpoint.__module__}.{endpoint.__name__}"


class RateLimiter:
    """The app's limiter (``app.state.limiter``): moving-window counters in ``limits.aio`` storage.

    ``start(redis)`` (in the lifespan) opens the storage: Redis through the given ``redis.asyncio.Redis``
    client's connection pool, or memory when it is None; ``stop()`` releases it. Every check is a coroutine.
    """

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limit_enabled
        self.exempt_names: set[str] = set()
        self.default_shared = settings.rate_limit_default_scope == "shared"
        self.storage: Storage | None = None
        self.strategy: MovingWindowRateLimiter | None = None
        # The default limit's counters when they stay in this process (RATE_LIMIT_DEFAULT_SCOPE=process).
        self.local_storage: MemoryStorage | None = None
        self.local_strategy: MovingWindowRateLimiter | None = None

    def exempt(self, endpoint: Callable[..., Any]) -> None:
        """Never apply the default limit to ``endpoint`` (its own explicit limits still apply)."""
        self.exempt_names.add(endpoint_name(endpoint))

    def is_exempt(self, endpoint: Callable[..., Any]) -> bool:
        return endpoint_name(endpoint) in self.exempt_names

    async def start(self, redis: Any | None) -> None:
        """Open the storage: Redis sharing ``redis``' connection pool, or in-process memory when None."""
        if redis is not None:
            # limits' default key prefix, as before: counters carry over from processes on the old version
            self.storage = RedisStorage("async+redis://", implementation="redispy",
                                        connection_pool=redis.connection_pool)
        else:
            self.storage = MemoryStorage()
        self.strategy = MovingWindowRateLimiter(self.storage)
        if isinstance(self.storage, MemoryStorage) or self.default_shared:
            self.local_storage, self.local_strategy = None, self.strategy
        else:
            self.local_storage = MemoryStorage()
            self.local_strategy = MovingWindowRateLimiter(self.local_storage)

    async def stop(self) -> None:
        """Forget the storage; the memory storage's expiry task is cancelled (the Redis pool belongs to the
        client passed to ``start``, which its owner closes)."""
        for storage in (self.storage, self.local_storage):
            timer = getattr(storage, "timer", None)
            if timer is not None and not timer.done():
                timer.cancel()
        self.storage = self.local_storage = None
        self.strategy = self.local_strategy = None

    async def hit(self, item: RateLimitItem, keys: Sequence[str], *, local: bool = False) -> bool:
        """Count one hit; False when ``item`` is used up for ``keys``. True (fail open) when the storage is
        down or not started. ``local``: count it where the default limit is counted (see the module doc)."""
        strategy = self.local_strategy if local else self.strategy
        if strategy is None:
            return True
        try:
            return await strategy.hit(item, *keys)
        except Exception:  # storage down: fail open
            log.warning("rate-limit storage unavailable; %s not counted", keys[0])
            return True

    async def test(self, item: RateLimitItem, keys: Sequence[str]) -> bool:
        """Whether one more hit would be allowed, without counting it (True when the storage is down)."""
        if self.strategy is None:
            return True
        try:
            return await self.strategy.test(item, *keys)
        except Exception:  # storage down: fail open
            log.warning("rate-limit storage unavailable; %s not checked", keys[0])
            return True

    async def refuse(self, item: RateLimitItem, keys: Sequence[str], *, local: bool = False) -> TooManyRequests:
        """The 429 to raise for a used-up limit, with ``Retry-After`` in whole seconds (at least 1)."""
        retry = 1
        strategy = self.local_strategy if local else self.strategy
        if strategy is not None:
            try:
                reset_at = (await strategy.get_window_stats(item, *keys)).reset_time
                retry = max(1, math.ceil(reset_at - time.time()))
            except Exception:  # storage gone between the hit and now: a short wait is still right
                log.warning("rate-limit storage unavailable; Retry-After of %s defaulted", keys[0])
        return TooManyRequests(f"Too many attempts. Try again in {retry} seconds.",
                               headers={"Retry-After": str(retry)})


@lru_cache(maxsize=64)
def _item(limit: str) -> RateLimitItem:
    return parse(limit)


def build_limiter(settings: Settings) -> RateLimiter:
    return RateLimiter(settings)


def _limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.limiter
    return limiter


async def hit(request: Request, limit: str, *keys: str, local: bool = False) -> None:
    """Count one hit against ``limit`` (e.g. ``"5/minute"``) for ``keys`` (``local``: where the default limit
    is counted, see the module doc).

    Raises TooManyRequests (429, ``Retry-After``) when over the limit. A no-op when limits are disabled."""
    limiter = _limiter(request)
    if not limiter.enabled:
        return
    item = _item(limit)
    if not await limiter.hit(item, keys, local=local):
        raise await limiter.refuse(item, keys, local=local)


@asynccontextmanager
async def count_failures(request: Request, limits: Sequence[tuple[str, Sequence[str]]]) -> AsyncIterator[None]:
    """Limit failed attempts: 429 with Retry-After before the attempt if any ``(limit, keys)`` is used up;
    one hit on each when the block raises a client error (an ``AppError`` with a 4xx status). Successful
    attempts are not counted. Storage errors fail open, as for the other limits."""
    limiter = _limiter(request)
    if not limiter.enabled:
        yield
        return
    parsed = [(_item(limit), tuple(keys)) for limit, keys in limits]
    for item, keys in parsed:
        if not await limiter.test(item, keys):
            raise await limiter.refuse(item, keys)
    try:
        yield
    except AppError as exc:
        if 400 <= exc.status < 500:
            for item, keys in parsed:
                await limiter.hit(item, keys)
        raise


@declares(statuses=(429,))
async def default_limit(request: Request) -> None:
    """RATE_LIMIT_DEFAULT per client IP and endpoint, for every route not passed to ``RateLimiter.exempt``."""
    endpoint = request.scope.get("endpoint")
    limiter = _limiter(request)
    if not limiter.enabled:
        return
    if endpoint is not None and limiter.is_exempt(endpoint):
        return
    name = endpoint_name(endpoint) if endpoint else request.url.path
    await hit(request, request.app.state.settings.rate_limit_default, "default", client_ip(request), name,
              local=True)
