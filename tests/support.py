"""Helpers shared by the HTTP tests: problem assertions, registration, extra app instances."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from app.config import Settings
from app.main import create_app
from tests.services import body_text

API = "/api/v1"
STRONG = "Velvet-Tulips-2026"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status (and type slug), carrying the request id."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers["content-type"]
    body = r.json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"].startswith("https://")
    assert body["request_id"] and body["request_id"] == r.headers["x-request-id"]
    assert body["code"] == body["type"].rsplit("/", 1)[1]  # clients switch on `code`
    if code is not None:
        assert body["type"].endswith("/" + code), body["type"]
    return body


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.com"


async def register(client: httpx.AsyncClient, email: str | None = None, password: str = STRONG,
                   **fields: Any) -> dict[str, Any]:
    body = {"email": email or unique_email(), "password": password, "first_name": "Rose", "last_name": "Petal",
            **fields}
    r = await client.post(f"{API}/auth/register", json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def login(client: httpx.AsyncClient, email: str, password: str = STRONG) -> dict[str, Any]:
    r = await client.post(f"{API}/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return r.json()["tokens"]


def token_from_email(msg: Any) -> str:
    match = re.search(r"code: ([A-Za-z0-9_-]{16,})", body_text(msg))
    assert match, body_text(msg)
    return match.group(1)


def new_client(app: FastAPI, ip: str = "127.0.0.1", **kw: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 40000), **kw),
                             base_url="http://testserver")


@pytest.fixture
async def app_factory(mongo_url: str) -> AsyncIterator[Callable[[Settings], Any]]:
    """``async with app_factory(settings) as app``: an extra app instance with its own settings and lifespan.
    The databases it used are dropped after the test."""
    databases: set[str] = set()

    @asynccontextmanager
    async def run(settings: Settings) -> AsyncIterator[FastAPI]:
        databases.add(settings.mongodb_db)
        application = create_app(settings)
        async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
            yield application

    yield run
    client: AsyncMongoClient = AsyncMongoClient(mongo_url)
    for name in databases:
        await client.drop_database(name)
    await client.close()


def random_ip() -> str:
    """A per-test client address, so counters in a shared Redis never leak between tests."""
    n = uuid.uuid4().int
    return f"10.{n % 250 + 1}.{(n >> 8) % 250 + 1}.{(n >> 16) % 250 + 1}"


async def rewrite(document: Any, doc_id: str, **fields: Any) -> None:
    """Change stored fields for a test (e.g. move an expiry into the past) by replacing the whole document:
    unlike a scalar ``$set``, a replacement keeps datetimes as dates on the embedded server too."""
    coll = document.get_pymongo_collection()
    raw = await coll.find_one({"_id": doc_id})
    assert raw is not None, doc_id
    raw.update(fields)
    res = await coll.replace_one({"_id": doc_id}, raw)
    assert res.matched_count == 1


async def eventually(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``check()`` (async; a truthy result means done) every 50 ms and return that result; fail the test
    with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what} not met within {timeout}s"
        await asyncio.sleep(0.05)


@pytest.fixture
async def db(mongo_url: str) -> AsyncIterator[Any]:
    """A fresh database of the session's server, reached with plain PyMongo (the storage contract tests: what
    a query form does, without the app). Test files whose forms need the app's indexes define their own."""
    client: AsyncMongoClient = AsyncMongoClient(mongo_url, tz_aware=True)
    name = f"contract_{uuid.uuid4().hex[:10]}"
    yield client[name]
    await client.drop_database(name)
    await client.close()
