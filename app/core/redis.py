"""Optional Redis (shared rate-limit counters and catalog cache when REDIS_URL is set)."""

from __future__ import annotations

from redis.asyncio import Redis


def make_redis(url: str | None) -> Redis | None:
    if not url:
        return None
    return Redis.from_url(url, decode_responses=False, socket_timeout=2, socket_connect_timeout=2,
                          health_check_interval=30)
