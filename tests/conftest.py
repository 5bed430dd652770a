"""Test session: real MongoDB-wire server, Redis and SMTP; one fresh database and app per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pymongo import AsyncMongoClient

from app.config import Settings
from app.core import security
from app.core.clock import utcnow
from app.core.security import hash_password
from app.main import create_app
from app.models.user import Role, User
from tests.services import RedisProcess, SmtpSink, mongo_from_env_or_embedded

pytest_plugins = ["tests.support", "tests.stripe_fixtures", "tests.events_support"]

PASSWORD = "Blooming-Peonies-42"

# Password hashing in this process at a test cost: the same CryptContext (argon2id, bcrypt verified and
# upgraded) with argon2's memory and time costs turned down, as Django's test settings do with their hasher.
# The production cost (libpass defaults: 64 MiB, 3 passes, 4 lanes) is ~0.15 s of two cores per hash or check,
# and the suite makes thousands of them. Servers the tests start as processes keep the production cost.
security.pwd_context = security.pwd_context.copy(argon2__memory_cost=1024, argon2__time_cost=1,
                                                 argon2__parallelism=1)
security._DUMMY_HASH = security.pwd_context.hash("a password nobody has")


@pytest.fixture(scope="session")
def mongo_url() -> Any:
    url, server = mongo_from_env_or_embedded()
    yield url
    if server:
        server.stop()


@pytest.fixture(scope="session")
def redis_url() -> Any:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    proc = RedisProcess()
    yield proc.start()
    proc.stop()


@pytest.fixture(scope="session")
def smtp_server() -> Any:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def mailbox(smtp_server: SmtpSink):
    smtp_server.mailbox.messages.clear()
    smtp_server.mailbox.refuse.clear()
    smtp_server.mailbox.defer.clear()
    return smtp_server.mailbox


@pytest.fixture
def make_settings(mongo_url: str, smtp_server: SmtpSink, tmp_path) -> Callable[..., Settings]:
    db_name = f"t_{uuid.uuid4().hex[:12]}"

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = dict(
            environment="test", mongodb_url=mongo_url, mongodb_db=db_name, redis_url=None,
            smtp_host="127.0.0.1", smtp_port=smtp_server.port, worker_poll_seconds=0.05,
            refresh_cookie_secure=False, embedded_db_dir=tmp_path / "var", log_json=False,
            media_dir=tmp_path / "media", cloudinary_url=None,
        )
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
def settings(make_settings) -> Settings:
    return make_settings()


@pytest.fixture
async def app(settings: Settings, mongo_url: str) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application
    client: AsyncMongoClient = AsyncMongoClient(mongo_url)
    await client.drop_database(settings.mongodb_db)
    await client.close()


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def create_user(role: Role = Role.customer, email: str | None = None, password: str = PASSWORD,
                      **fields: Any) -> User:
    defaults = {"first_name": "Test", "last_name": role.value.title(), "email_verified_at": utcnow()}
    user = User(email=email or f"{role.value}-{uuid.uuid4().hex[:8]}@example.com", role=role,
                password_hash=hash_password(password), **{**defaults, **fields})
    await user.insert()
    return user


async def login_headers(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['tokens']['access_token']}"}


@pytest.fixture
def user_factory(app, client) -> Callable[..., Any]:
    async def make(role: Role = Role.customer, **fields: Any) -> tuple[User, dict[str, str]]:
        user = await create_user(role, **fields)
        return user, await login_headers(client, user.email)

    return make


@pytest.fixture
async def customer(user_factory) -> tuple[User, dict[str, str]]:
    return await user_factory(Role.customer)


@pytest.fixture
async def staff(user_factory) -> tuple[User, dict[str, str]]:
    return await user_factory(Role.staff)


@pytest.fixture
async def admin(user_factory) -> tuple[User, dict[str, str]]:
    return await user_factory(Role.admin)
