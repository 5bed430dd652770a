"""Cross-cutting HTTP behaviour: problem+json for every error, request ids, security headers, CORS, body cap."""

from __future__ import annotations

import json
import logging

import pytest

from app.main import create_app
from tests.conftest import create_user
from tests.support import API, assert_problem, new_client

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
}


async def test_framework_404_is_a_problem(client):
    r = await client.get(f"{API}/no-such-thing")
    body = assert_problem(r, 404, "not-found")
    assert body["instance"] == f"{API}/no-such-thing" and body["detail"] == "No resource at this address."


async def test_framework_405_is_a_problem_with_allow(client):
    r = await client.get(f"{API}/auth/login")
    body = assert_problem(r, 405)
    assert body["title"] == "Method not allowed" and "GET" in body["detail"]
    assert "POST" in r.headers["allow"]


async def test_validation_error_lists_each_problem(client):
    r = await client.post(f"{API}/auth/register", json={"email": "nope", "password": "x", "extra": 1})
    body = assert_problem(r, 422, "validation-error")
    locs = {tuple(e["loc"]) for e in body["errors"]}
    assert {("body", "email"), ("body", "password"), ("body", "first_name"), ("body", "extra")} <= locs
    assert all(isinstance(e["msg"], str) and e["msg"] for e in body["errors"])
    assert "x" not in json.dumps([e.get("input") for e in body["errors"]])  # inputs (passwords) are not echoed


async def test_malformed_json_is_a_400_problem(client):
    r = await client.post(f"{API}/auth/login", content=b'{"email": ', headers={"content-type": "application/json"})
    body = assert_problem(r, 400, "malformed-json")
    assert body["code"] == "malformed-json" and "errors" not in body


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"email": "\xff\xfe@example.com"}'],
                         ids=["nested-too-deep", "not-utf-8"])
async def test_a_body_json_cannot_read_is_malformed_json_too(client, body):
    r = await client.post(f"{API}/auth/login", content=body, headers={"content-type": "application/json"})
    assert assert_problem(r, 400, "malformed-json")["title"] == "Malformed JSON"


async def test_request_id_is_echoed_or_generated(client):
    r = await client.get(f"{API}/health", headers={"X-Request-ID": "client-abc.123:7"})
    assert r.headers["x-request-id"] == "client-abc.123:7"
    r1, r2 = await client.get(f"{API}/health"), await client.get(f"{API}/health")
    assert len(r1.headers["x-request-id"]) == 32 and r1.headers["x-request-id"] != r2.headers["x-request-id"]
    # An unsafe incoming id is replaced, not reflected.
    r = await client.get(f"{API}/health", headers={"X-Request-ID": "evil id\twith spaces" + "x" * 200})
    assert r.headers["x-request-id"] != "evil id\twith spaces" and len(r.headers["x-request-id"]) == 32
    # Error bodies carry the same id.
    r = await client.get(f"{API}/nowhere", headers={"X-Request-ID": "trace-42"})
    assert r.json()["request_id"] == "trace-42"


async def test_security_headers_on_success_and_errors(client):
    for r in (await client.get(f"{API}/health"), await client.get(f"{API}/nowhere"),
              await client.post(f"{API}/auth/login", json={})):
        for name, value in SECURITY_HEADERS.items():
            assert r.headers[name] == value, (r.url, name)
        assert "strict-transport-security" not in r.headers


async def test_hsts_only_behind_https(make_settings, app_factory):
    async with app_factory(make_settings(behind_https=True)) as application, new_client(application) as c:
        r = await c.get(f"{API}/health")
    assert r.headers["strict-transport-security"].startswith("max-age=")


async def test_a_refused_cors_preflight_is_a_problem(client):
    r = await client.options(f"{API}/cart/items", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    body = assert_problem(r, 400, "cors-refused")
    assert body["detail"] == "Disallowed CORS origin" and "access-control-allow-origin" not in r.headers
    r = await client.options(f"{API}/cart/items", headers={
        "Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-unknown"})
    assert assert_problem(r, 400, "cors-refused")["detail"] == "Disallowed CORS headers"


async def test_cors_preflight_from_a_configured_origin(client):
    r = await client.options(f"{API}/auth/login", headers={
        "Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,authorization"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "authorization" in r.headers["access-control-allow-headers"].lower()

    r = await client.get(f"{API}/health", headers={"Origin": "http://localhost:5173"})
    assert r.headers["access-control-allow-origin"] == "http://localhost:5173"
    exposed = {h.strip() for h in r.headers["access-control-expose-headers"].lower().split(",")}
    assert {"x-request-id", "location", "x-cart-token", "etag", "retry-after"} <= exposed  # readable by the SPA


async def test_cors_refuses_other_origins(client):
    r = await client.options(f"{API}/auth/login", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert r.status_code == 400
    assert "access-control-allow-origin" not in r.headers
    r = await client.get(f"{API}/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


async def test_cors_origins_come_from_settings(make_settings, app_factory):
    async with (app_factory(make_settings(cors_origins=["https://shop.example"])) as application,
                new_client(application) as c):
        ok = await c.options(f"{API}/health", headers={"Origin": "https://shop.example",
                                                       "Access-Control-Request-Method": "GET"})
        default = await c.options(f"{API}/health", headers={"Origin": "http://localhost:5173",
                                                            "Access-Control-Request-Method": "GET"})
    assert ok.headers["access-control-allow-origin"] == "https://shop.example"
    assert "access-control-allow-origin" not in default.headers


async def test_json_body_over_one_mebibyte_is_413(client):
    big = {"email": "a@example.com", "password": "x" * (1024 * 1024)}
    r = await client.post(f"{API}/auth/login", json=big)
    body = assert_problem(r, 413)
    assert "1048576 bytes" in body["detail"]


async def test_streamed_body_over_the_cap_is_413_too(client):
    """No Content-Length (chunked upload): the cap is enforced while the body streams in."""
    async def chunks():
        yield b'{"email": "a@example.com", "password": "'
        for _ in range(80):
            yield b"x" * 16384
        yield b'"}'

    r = await client.post(f"{API}/auth/login", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers
    assert_problem(r, 413)


async def test_a_body_just_under_the_cap_is_accepted(client):
    await create_user(email="cap@example.com")
    padding = "x" * (1024 * 1024 - 200)
    r = await client.post(f"{API}/auth/forgot-password", content=json.dumps({"email": "cap@example.com"})[:-1]
                          + f', "pad": "{padding}"}}', headers={"content-type": "application/json"})
    assert_problem(r, 422)  # read and validated (the unknown field), not refused for its size


async def test_unhandled_exception_is_a_500_problem_without_internals(settings, caplog):
    application = create_app(settings)

    @application.get("/test-only/boom")
    async def boom():
        raise RuntimeError("secret connection string mongodb://admin:hunter2@db")

    caplog.set_level(logging.ERROR, logger="app")
    async with new_client(application, raise_app_exceptions=False) as c:
        r = await c.get("/test-only/boom", headers={"X-Request-ID": "boom-1"})
    body = assert_problem(r, 500, "internal-error")
    assert body["request_id"] == "boom-1"
    assert "hunter2" not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text
    assert r.headers["x-content-type-options"] == "nosniff"
    logged = [rec for rec in caplog.records if rec.exc_info]
    assert logged and "hunter2" in str(logged[0].exc_info[1])


async def test_json_access_log_carries_the_request_id(client):
    from app.core.logging import JsonFormatter

    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(JsonFormatter().format(record))

    handler = Collect()
    logger = logging.getLogger("app.access")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        await client.get(f"{API}/nowhere", headers={"X-Request-ID": "log-trace-7"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    entries = [json.loads(line) for line in lines]
    entry = next(e for e in entries if e["request_id"] == "log-trace-7")
    assert entry["msg"] == "request" and entry["status"] == 404 and entry["path"] == f"{API}/nowhere"
    assert entry["ts"].endswith("Z") and isinstance(entry["duration_ms"], float)
