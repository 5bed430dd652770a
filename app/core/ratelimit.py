"""Rate limits with slowapi (per-IP default on every route) and named limits for auth endpoints.

Counters live in Redis when REDIS_URL is set, so several API processes share them; in memory otherwise.
"""

from __future__ import annotations

import math
import time

from fastapi import Request
from limits import parse
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded
from starlette.responses import Response

from app.config import Settings
from app.core.errors import TooManyRequests, problem


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def build_limiter(settings: Settings) -> Limiter:
    storage = settings.redis_url or "memory://"
    return Limiter(
        key_func=client_ip,
        default_limits=[settings.rate_limit_default],
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
        reset_at = strategy.get_window_stats(item, *keys).reset_time
        retry = max(1, math.ceil(reset_at - time.time()))
        raise TooManyRequests(f"Too many attempts. Try again in {retry} seconds.",
                              headers={"Retry-After": str(retry)})


def rate_limit_handler(request: Request, exc: RateLimitExceeded) -> Response:
    retry = 60
    try:
        limit = exc.limit.limit
        stats = request.app.state.limiter.limiter.get_window_stats(limit, *request.state.view_rate_limit[1])
        retry = max(1, math.ceil(stats.reset_time - time.time()))
    except Exception:  # noqa: S110 - the default is fine
        pass
    return problem(429, detail=f"Rate limit exceeded ({exc.detail}).", code="rate-limited",
                   request=request, headers={"Retry-After": str(retry)})
