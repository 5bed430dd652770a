"""Rate limits with slowapi/limits: a default per-IP limit on every API route, named limits for auth
endpoints, and limits on failed attempts (``count_failures``: promo codes).

Counters live in Redis when REDIS_URL is set, so several API processes share them; in memory otherwise.
The default limit is an app-level dependency rather than slowapi's middleware: with FastAPI's included
routers (``_IncludedRouter``) the middleware finds no endpoint and treats every API route as exempt.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from fastapi import Request
from limits import parse
from slowapi import Limiter

from app.config import Settings
from app.core.contract import declares
from app.core.errors import AppError, TooManyRequests

log = logging.getLogger("app.ratelimit")


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def build_limiter(settings: Settings) -> Limiter:
    storage = settings.redis_url or "memory://"
    return Limiter(
        key_func=client_ip,
        storage_uri=storage,
        strategy="moving-window",
        enabled=settings.rate_limit_enabled,
        key_prefix="af-rl",
        headers_enabled=False,
        # With Redis down, let requests through rather than take the shop offline.
        swallow_errors=True,
        in_memory_fallback_enabled=False,
    )


def hit(request: Request, limit: str, *keys: str) -> None:
    """Count one hit against ``limit`` for ``keys``; raise 429 with Retry-After when over."""
    limiter: Limiter = request.app.state.limiter
    if not limiter.enabled:
        return
    item = parse(limit)
    strategy = limiter.limiter
    try:
        allowed = strategy.hit(item, *keys)
    except Exception:  # storage down: fail open, as for the default limit
        return
    if not allowed:
        _refuse(strategy, item, keys)


def _refuse(strategy, item, keys: Sequence[str]) -> None:
    reset_at = strategy.get_window_stats(item, *keys).reset_time
    retry = max(1, math.ceil(reset_at - time.time()))
    raise TooManyRequests(f"Too many attempts. Try again in {retry} seconds.", headers={"Retry-After": str(retry)})


@contextmanager
def count_failures(request: Request, limits: Sequence[tuple[str, Sequence[str]]]) -> Iterator[None]:
    """Limit failed attempts: 429 with Retry-After before the attempt if any ``(limit, keys)`` is used up;
    one hit on each when the block raises a client error (an ``AppError`` with a 4xx status). Successful
    attempts are not counted. Storage errors fail open, as for the other limits."""
    limiter: Limiter = request.app.state.limiter
    if not limiter.enabled:
        yield
        return
    strategy = limiter.limiter
    parsed = [(parse(limit), tuple(keys)) for limit, keys in limits]
    for item, keys in parsed:
        try:
            allowed = strategy.test(item, *keys)
        except Exception:  # storage down: fail open
            log.warning("rate-limit storage unavailable; %s not checked", keys[0])
            allowed = True
        if not allowed:
            _refuse(strategy, item, keys)
    try:
        yield
    except AppError as exc:
        if 400 <= exc.status < 500:
            for item, keys in parsed:
                try:
                    strategy.hit(item, *keys)
                except Exception:  # storage down: fail open
                    log.warning("rate-limit storage unavailable; %s not counted", keys[0])
        raise


@declares(statuses=(429,))
async def default_limit(request: Request) -> None:
    """RATE_LIMIT_DEFAULT per client IP and endpoint, for every route not passed to ``limiter.exempt``."""
    endpoint = request.scope.get("endpoint")
    name = f"{endpoint.__module__}.{endpoint.__name__}" if endpoint else request.url.path
    limiter: Limiter = request.app.state.limiter
    if name in limiter._exempt_routes:  # filled by Limiter.exempt(); slowapi has no public accessor
        return
    hit(request, request.app.state.settings.rate_limit_default, "default", client_ip(request), name)
