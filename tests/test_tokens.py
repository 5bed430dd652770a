"""Access tokens (JWT) and sessions: tampering, refresh rotation and reuse detection, cookie, logout."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from jose import jwt

from app.core.clock import utcnow
from app.models.auth import RefreshSession
from app.models.user import User
from tests.conftest import PASSWORD, create_user
from tests.support import API, assert_problem, bearer, login


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _claims(settings, user, **overrides) -> dict:
    now = utcnow()
    claims = {"sub": user.id, "role": user.role.value, "sid": "ses_x", "iat": int(now.timestamp()),
              "exp": int((now + timedelta(minutes=5)).timestamp()), "jti": "jti_x",
              "iss": settings.jwt_issuer, "aud": settings.jwt_audience, "typ": "access"}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


async def _live_session(client, user) -> str:
    """The session id (``sid``) of a fresh login: access tokens must name a live session."""
    tokens = await login(client, user.email, PASSWORD)
    client.cookies.clear()
    return jwt.get_unverified_claims(tokens["access_token"])["sid"]


def _sign(settings, claims: dict, **kw) -> str:
    return jwt.encode(claims, kw.pop("key", settings.jwt_secret.get_secret_value()),
                      algorithm=kw.pop("algorithm", "HS256"))


async def test_a_well_formed_token_is_accepted(client, settings):
    """The baseline for the tampering cases below: our own signing recipe works."""
    user = await create_user()
    token = _sign(settings, _claims(settings, user, sid=await _live_session(client, user)))
    r = await client.get(f"{API}/users/me", headers=bearer(token))
    assert r.status_code == 200 and r.json()["id"] == user.id


@pytest.mark.parametrize("sid", ["ses_01JD7Z00000000000000000000", None, "someone-elses"])
async def test_an_access_token_must_name_a_live_session_of_its_user(client, settings, sid):
    user, other = await create_user(), await create_user()
    if sid == "someone-elses":
        sid = await _live_session(client, other)
    token = _sign(settings, _claims(settings, user, sid=sid))
    assert_problem(await client.get(f"{API}/users/me", headers=bearer(token)), 401, "unauthorized")


@pytest.mark.parametrize("case", [
    "expired", "wrong-signature", "alg-none", "alg-hs512", "wrong-audience", "wrong-issuer", "no-exp",
    "refresh-type", "no-type", "unknown-user", "tampered-payload", "garbage", "refresh-token",
])
async def test_bad_access_tokens_are_401_with_www_authenticate(client, settings, case):
    user = await create_user()
    now = utcnow()
    sid = await _live_session(client, user)

    def claims(**kw):
        return _claims(settings, user, sid=sid, **kw)

    good = _sign(settings, claims())
    header_b64, payload_b64, sig = good.split(".")
    token = {
        "expired": lambda: _sign(settings, claims(iat=int((now - timedelta(hours=1)).timestamp()),
                                              exp=int((now - timedelta(minutes=1)).timestamp()))),
        "wrong-signature": lambda: _sign(settings, claims(), key="another-secret-of-sufficient-len"),
        "alg-none": lambda: f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims())}.",
        "alg-hs512": lambda: _sign(settings, claims(), algorithm="HS512"),
        "wrong-audience": lambda: _sign(settings, claims(aud="someone-else")),
        "wrong-issuer": lambda: _sign(settings, claims(iss="evil-issuer")),
        "no-exp": lambda: _sign(settings, claims(exp=None)),
        "refresh-type": lambda: _sign(settings, claims(typ="refresh")),
        "no-type": lambda: _sign(settings, claims(typ=None)),
        "unknown-user": lambda: _sign(settings, claims(sub="usr_01JD7Z00000000000000000000")),
        "tampered-payload": lambda: f"{header_b64}.{_b64(claims(role='admin'))}.{sig}",
        "garbage": lambda: "not.a.jwt",
        "refresh-token": None,
    }[case]
    if token is None:
        r = await client.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD})
        value = r.json()["tokens"]["refresh_token"]
    else:
        value = token()
    r = await client.get(f"{API}/users/me", headers=bearer(value))
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"


async def test_anonymous_request_is_401(client):
    r = await client.get(f"{API}/users/me")
    assert_problem(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"


async def test_refresh_rotates_and_the_old_token_stops_working(client):
    user = await create_user()
    first = await login(client, user.email, PASSWORD)
    client.cookies.clear()
    r = await client.post(f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await client.get(f"{API}/users/me", headers=bearer(second["access_token"]))).status_code == 200

    client.cookies.clear()
    r = await client.post(f"{API}/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert r.status_code == 200, r.text
    old = await RefreshSession.find_one(RefreshSession.user_id == user.id, RefreshSession.revoked_reason == "rotated")
    assert old is not None and old.replaced_by is not None


async def test_reused_refresh_token_revokes_the_whole_family(client):
    user = await create_user()
    stolen = (await login(client, user.email, PASSWORD))["refresh_token"]
    other_device = (await login(client, user.email, PASSWORD))["refresh_token"]
    client.cookies.clear()
    r = await client.post(f"{API}/auth/refresh", json={"refresh_token": stolen})
    newest = r.json()["refresh_token"]
    r = await client.post(f"{API}/auth/refresh", json={"refresh_token": newest})
    newest = r.json()["refresh_token"]

    client.cookies.clear()
    r = await client.post(f"{API}/auth/refresh", json={"refresh_token": stolen})  # the attacker replays
    assert_problem(r, 401, "invalid-refresh-token")
    client.cookies.clear()
    r = await client.post(f"{API}/auth/refresh", json={"refresh_token": newest})  # the family is dead
    assert_problem(r, 401, "invalid-refresh-token")
    reasons = {s.revoked_reason for s in await RefreshSession.find(RefreshSession.user_id == user.id).to_list()
               if s.replaced_by is None and s.revoked_at is not None}
    assert reasons == {"reuse-detected"}
    # Another session (another family) is untouched.
    r = await client.post(f"{API}/auth/refresh", json={"refresh_token": other_device})
    assert r.status_code == 200, r.text


async def test_refresh_via_http_only_cookie(client):
    user = await create_user()
    r = await client.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD})
    cookie = r.headers["set-cookie"]
    parts = [p.strip().lower() for p in cookie.split(";")]
    assert parts[0] == f"af_refresh={r.json()['tokens']['refresh_token']}".lower()
    assert "httponly" in parts and "samesite=strict" in parts and "path=/api/v1/auth" in parts
    assert "secure" not in parts  # REFRESH_COOKIE_SECURE is off in tests (plain http)
    assert f"max-age={30 * 86400}" in parts

    r = await client.post(f"{API}/auth/refresh")  # no body: the cookie is used
    assert r.status_code == 200, r.text
    assert r.cookies.get("af_refresh") == r.json()["refresh_token"]
    r2 = await client.post(f"{API}/auth/refresh", json={})  # an empty body works the same
    assert r2.status_code == 200, r2.text
    assert r2.json()["refresh_token"] != r.json()["refresh_token"]


async def test_refresh_cookie_is_secure_when_configured(make_settings, app_factory):
    from tests.support import new_client

    async with app_factory(make_settings(refresh_cookie_secure=True)) as application:
        user = await create_user()
        async with new_client(application) as c:
            r = await c.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD})
    parts = [p.strip().lower() for p in r.headers["set-cookie"].split(";")]
    assert "secure" in parts and "httponly" in parts


@pytest.mark.parametrize(("body", "status"), [
    (None, 401),
    ({"refresh_token": "A" * 43}, 401),
    ({"refresh_token": "short"}, 422),
    ({"refresh_token": {"$ne": ""}}, 422),
    ({"refresh_token": "A" * 43, "user_id": "usr_x"}, 422),
])
async def test_refresh_rejects_missing_unknown_or_malformed_tokens(client, body, status):
    r = await client.post(f"{API}/auth/refresh", json=body)
    assert_problem(r, status)


async def test_expired_refresh_session_is_refused(client):
    user = await create_user()
    tokens = await login(client, user.email, PASSWORD)
    await RefreshSession.get_pymongo_collection().update_many(
        {"user_id": user.id}, {"$set": {"expires_at": utcnow() - timedelta(seconds=1)}})
    client.cookies.clear()
    assert_problem(await client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}), 401)


async def test_logout_ends_only_this_session(client):
    user = await create_user()
    mine = await login(client, user.email, PASSWORD)
    other = await login(client, user.email, PASSWORD)
    client.cookies.clear()
    r = await client.post(f"{API}/auth/logout", headers=bearer(mine["access_token"]),
                          json={"refresh_token": mine["refresh_token"]})
    assert r.status_code == 204
    assert 'af_refresh=""' in r.headers["set-cookie"] and "max-age=0" in r.headers["set-cookie"].lower()
    assert_problem(await client.post(f"{API}/auth/refresh", json={"refresh_token": mine["refresh_token"]}), 401)
    assert (await client.post(f"{API}/auth/refresh", json={"refresh_token": other["refresh_token"]})).status_code == 200


async def test_logout_with_only_the_cookie_or_only_the_access_token(client):
    user = await create_user()
    by_cookie = await login(client, user.email, PASSWORD)  # the client now holds its cookie
    assert (await client.post(f"{API}/auth/logout")).status_code == 204
    client.cookies.clear()
    assert_problem(await client.post(f"{API}/auth/refresh", json={"refresh_token": by_cookie["refresh_token"]}), 401)

    by_access = await login(client, user.email, PASSWORD)
    client.cookies.clear()
    assert (await client.post(f"{API}/auth/logout", headers=bearer(by_access["access_token"]))).status_code == 204
    assert_problem(await client.post(f"{API}/auth/refresh", json={"refresh_token": by_access["refresh_token"]}), 401)


async def test_logout_cannot_end_another_users_session(client):
    alice, bob = await create_user(), await create_user()
    a = await login(client, alice.email, PASSWORD)
    b = await login(client, bob.email, PASSWORD)
    client.cookies.clear()
    r = await client.post(f"{API}/auth/logout", headers=bearer(a["access_token"]),
                          json={"refresh_token": b["refresh_token"]})
    assert r.status_code == 204
    assert (await client.post(f"{API}/auth/refresh", json={"refresh_token": b["refresh_token"]})).status_code == 200


async def test_logout_all_ends_every_session_and_refuses_earlier_access_tokens(client):
    user = await create_user()
    one = await login(client, user.email, PASSWORD)
    two = await login(client, user.email, PASSWORD)
    client.cookies.clear()
    r = await client.post(f"{API}/auth/logout-all", headers=bearer(one["access_token"]))
    assert r.status_code == 204
    for tokens in (one, two):
        assert_problem(await client.get(f"{API}/users/me", headers=bearer(tokens["access_token"])), 401)
        assert_problem(await client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}), 401)
    assert (await User.get(user.id)).tokens_valid_after is not None
    fresh = await login(client, user.email, PASSWORD)
    assert (await client.get(f"{API}/users/me", headers=bearer(fresh["access_token"]))).status_code == 200


async def test_logout_all_needs_a_signed_in_user(client):
    assert_problem(await client.post(f"{API}/auth/logout-all"), 401)


def test_signed_links_survive_a_secret_rotation_and_refuse_tampering(settings):
    from pydantic import SecretStr

    from app.core.security import MAX_LINK_TOKEN, read_link, sign_link

    token = sign_link(settings, "nl-unsub", {"i": "nls_1", "c": "cmp_1"})
    assert read_link(settings, "nl-unsub", token) == {"p": "nl-unsub", "i": "nls_1", "c": "cmp_1"}
    rotated = settings.model_copy(update={"jwt_secret": SecretStr("n" * 40),
                                          "jwt_previous_secrets": [settings.jwt_secret]})
    assert read_link(rotated, "nl-unsub", token)["i"] == "nls_1"  # sent before the rotation: still works
    assert read_link(rotated.model_copy(update={"jwt_previous_secrets": []}), "nl-unsub", token) is None
    body, mac = token.split(".")
    other = _b64({"c": "cmp_1", "i": "nls_2", "p": "nl-unsub"})
    assert read_link(settings, "nl-unsub", f"{other}.{mac}") is None  # another subscriber under the same MAC
    assert read_link(settings, "nl-confirm", token) is None
    assert read_link(settings, "nl-unsub", token + "A" * MAX_LINK_TOKEN) is None
    assert read_link(settings, "nl-unsub", body) is None
    expired = sign_link(settings, "nl-confirm", {"i": "nls_1"}, ttl=timedelta(seconds=-1))
    assert read_link(settings, "nl-confirm", expired) is None
    fresh = sign_link(settings, "nl-confirm", {"i": "nls_1"}, ttl=timedelta(minutes=5))
    assert read_link(settings, "nl-confirm", fresh)["x"] > utcnow().timestamp()
