"""Liveness and readiness: /health and /health/ready (MongoDB, and Redis when configured)."""

from __future__ import annotations

from app.core.embedded_mongo import free_port
from tests.support import API, new_client


async def test_liveness(client):
    r = await client.get(f"{API}/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_ready_without_redis_checks_mongodb_only(client):
    r = await client.get(f"{API}/health/ready")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "checks": {"mongodb": "ok"},
                        "events": {"transport": "memory", "status": "ok", "down_since": None, "dropped": 0,
                                   "overflows": 0}}


async def test_ready_with_redis(make_settings, app_factory, redis_url):
    async with app_factory(make_settings(redis_url=redis_url)) as application, new_client(application) as c:
        r = await c.get(f"{API}/health/ready")
    assert r.status_code == 200
    body = r.json()
    assert (body["status"], body["checks"]) == ("ok", {"mongodb": "ok", "redis": "ok"})
    assert (body["events"]["transport"], body["events"]["status"]) == ("redis", "ok")


async def test_ready_is_503_when_redis_is_down(make_settings, app_factory):
    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    async with app_factory(make_settings(redis_url=down)) as application, new_client(application) as c:
        ready = await c.get(f"{API}/health/ready")
        live = await c.get(f"{API}/health")
        login = await c.post(f"{API}/auth/login", json={"email": "a@example.com", "password": "Whatever-123"})
    assert ready.status_code == 503
    body = ready.json()
    assert (body["status"], body["checks"]) == ("unavailable", {"mongodb": "ok", "redis": "down"})
    assert body["events"]["status"] == "degraded" and body["events"]["down_since"].endswith("Z")  # no live events
    assert live.status_code == 200
    assert login.status_code == 401  # rate limiting fails open: the shop stays up without Redis


async def test_metrics_are_exposed(client):
    await client.get(f"{API}/health")
    r = await client.get("/metrics")
    assert r.status_code == 200 and "http_requests_total" in r.text


async def test_metrics_are_open_without_a_token_and_guarded_with_one(client, make_settings, app_factory):
    r = await client.get("/metrics")
    assert r.status_code == 200 and "http_requests_total" in r.text
    async with app_factory(make_settings(metrics_token="scrape-me-please-0123456789")) as guarded:
        async with new_client(guarded) as c:
            assert (await c.get("/metrics")).status_code == 401
            assert (await c.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
            ok = await c.get("/metrics", headers={"Authorization": "Bearer scrape-me-please-0123456789"})
            assert ok.status_code == 200 and "http_request_duration_seconds" in ok.text
