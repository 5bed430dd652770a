"""Rate limits (limits.aio): per-IP and per-email login limits, register/forgot/resend, the default
per-IP limit, exempt probes — with in-memory counters and with Redis shared by two app instances."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, create_user
from tests.support import API, STRONG, assert_problem, new_client, random_ip, unique_email


@pytest.fixture(params=["memory", "redis"])
def storage(request) -> dict:
    """Run a test with in-memory counters and again with Redis (per-test client addresses keep the shared
    Redis counters of different tests apart)."""
    if request.param == "memory":
        return {"redis_url": None}
    return {"redis_url": request.getfixturevalue("redis_url")}


def assert_429(r) -> int:
    assert_problem(r, 429, "rate-limited")
    retry = int(r.headers["retry-after"])
    assert retry >= 1
    return retry


async def _wrong_login(c, email: str):
    return await c.post(f"{API}/auth/login", json={"email": email, "password": "Wrong-Password-1"})


async def test_login_is_limited_per_email(make_settings, app_factory, storage):
    settings = make_settings(rate_limit_login_email="2/minute", **storage)
    async with app_factory(settings) as application, new_client(application, random_ip()) as c:
        user = await create_user(email=unique_email("limited"))
        for _ in range(2):
            assert_problem(await _wrong_login(c, user.email), 401)
        retry = assert_429(await _wrong_login(c, user.email))
        assert retry <= 60
        # Even the right password waits now, and the OAuth2 form shares the counter.
        assert_429(await c.post(f"{API}/auth/login", json={"email": user.email.upper(), "password": PASSWORD}))
        assert_429(await c.post(f"{API}/auth/token", data={"username": user.email, "password": PASSWORD}))
        # Another email from the same client is not affected.
        assert_problem(await _wrong_login(c, unique_email("other")), 401)
    async with app_factory(settings) as application, new_client(application, random_ip()) as c:
        # ... and another client cannot bypass the per-email limit (shared counters only with Redis).
        r = await _wrong_login(c, user.email)
        if storage["redis_url"]:
            assert_429(r)
        else:
            assert_problem(r, 401)


async def test_login_is_limited_per_ip(make_settings, app_factory, storage):
    settings = make_settings(rate_limit_login_ip="3/minute", **storage)
    async with app_factory(settings) as application:
        ip = random_ip()
        async with new_client(application, ip) as c:
            for _ in range(3):
                assert_problem(await _wrong_login(c, unique_email()), 401)
            assert_429(await _wrong_login(c, unique_email()))
            assert_429(await c.post(f"{API}/auth/token", data={"username": unique_email(), "password": "x"}))
        async with new_client(application, random_ip()) as other:
            assert_problem(await _wrong_login(other, unique_email()), 401)


@pytest.mark.parametrize(("setting", "path", "body", "status"), [
    ("rate_limit_register", "/auth/register",
     lambda: {"email": unique_email(), "password": STRONG, "first_name": "A", "last_name": "B"}, 201),
    ("rate_limit_forgot", "/auth/forgot-password", lambda: {"email": unique_email()}, 202),
    ("rate_limit_resend", "/auth/resend-verification", lambda: {"email": unique_email()}, 202),
])
async def test_account_endpoints_are_limited_per_ip(make_settings, app_factory, storage, setting, path, body,
                                                    status):
    settings = make_settings(**{setting: "2/hour"}, **storage)
    async with app_factory(settings) as application, new_client(application, random_ip()) as c:
        for _ in range(2):
            r = await c.post(API + path, json=body())
            assert r.status_code == status, r.text
        retry = assert_429(await c.post(API + path, json=body()))
        assert 60 < retry <= 3600


async def test_forgot_password_is_limited_per_email(make_settings, app_factory, storage):
    settings = make_settings(rate_limit_forgot="2/hour", **storage)
    email = unique_email("forgot")
    async with app_factory(settings) as application:
        for _ in range(2):
            async with new_client(application, random_ip()) as c:
                assert (await c.post(f"{API}/auth/forgot-password", json={"email": email})).status_code == 202
        async with new_client(application, random_ip()) as c:
            assert_429(await c.post(f"{API}/auth/forgot-password", json={"email": email}))


async def test_default_limit_per_ip_and_exempt_probes(make_settings, app_factory, storage):
    settings = make_settings(rate_limit_default="5/minute", **storage)
    async with app_factory(settings) as application, new_client(application, random_ip()) as c:
        for _ in range(5):
            assert_problem(await c.get(f"{API}/users/me"), 401)
        r = await c.get(f"{API}/users/me")
        assert_429(r)
        assert r.headers["x-request-id"] and r.headers["x-content-type-options"] == "nosniff"
        for _ in range(12):  # probes are never throttled
            assert (await c.get(f"{API}/health")).status_code == 200
            assert (await c.get(f"{API}/health/ready")).status_code == 200
        async with new_client(application, random_ip()) as other:
            assert_problem(await other.get(f"{API}/users/me"), 401)


async def test_two_app_instances_share_counters_in_redis(make_settings, app_factory, redis_url):
    settings = make_settings(redis_url=redis_url, rate_limit_login_email="2/minute", rate_limit_default="4/minute",
                             rate_limit_default_scope="shared")
    ip = random_ip()
    email = unique_email("shared")
    async with app_factory(settings) as one, app_factory(settings) as two:
        async with new_client(one, ip) as a, new_client(two, ip) as b:
            assert_problem(await _wrong_login(a, email), 401)
            assert_problem(await _wrong_login(b, email), 401)
            assert_429(await _wrong_login(a, email))
            assert_429(await _wrong_login(b, email))
            for c in (a, b):
                for _ in range(2):
                    assert_problem(await c.get(f"{API}/users/me"), 401)
            assert_429(await a.get(f"{API}/users/me"))
            assert_429(await b.get(f"{API}/users/me"))


async def test_by_default_each_process_counts_the_default_limit_but_shares_the_named_ones(
        make_settings, app_factory, redis_url):
    settings = make_settings(redis_url=redis_url, rate_limit_login_email="2/minute", rate_limit_default="3/minute")
    ip = random_ip()
    email = unique_email("per-process")
    async with app_factory(settings) as one, app_factory(settings) as two:
        async with new_client(one, ip) as a, new_client(two, ip) as b:
            assert_problem(await _wrong_login(a, email), 401)
            assert_problem(await _wrong_login(b, email), 401)
            assert_429(await _wrong_login(b, email))  # the login limit is shared: the third attempt is refused
            for c in (a, b):  # the default limit (per IP and endpoint) is counted by each process on its own
                for _ in range(3):
                    assert_problem(await c.get(f"{API}/users/me"), 401)
                assert_429(await c.get(f"{API}/users/me"))


async def test_limits_can_be_switched_off(make_settings, app_factory):
    settings = make_settings(rate_limit_enabled=False, rate_limit_login_email="1/minute", rate_limit_default="1/minute")
    async with app_factory(settings) as application, new_client(application, random_ip()) as c:
        for _ in range(3):
            assert_problem(await _wrong_login(c, "same@example.com"), 401)


async def test_password_change_guesses_are_limited_per_account(make_settings, app_factory, storage):
    settings = make_settings(rate_limit_login_email="2/minute", **storage)
    async with app_factory(settings) as application, new_client(application, random_ip()) as c:
        user = await create_user(email=unique_email("changer"))
        r = await c.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {r.json()['tokens']['access_token']}"}
        wrong = {"current_password": "Not-My-Password-9", "new_password": STRONG}
        for _ in range(2):
            assert_problem(await c.post(f"{API}/users/me/password", json=wrong, headers=headers), 422)
        assert_429(await c.post(f"{API}/users/me/password", json=wrong, headers=headers))
        # Refused, not applied: the old password still signs in (the login counter is a different one).
        r = await c.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD})
        assert r.status_code == 200
