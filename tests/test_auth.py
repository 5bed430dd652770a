"""Registration and login: /auth/register, /auth/login, /auth/token."""

from __future__ import annotations

import asyncio

import bcrypt
import pytest

from app.models.auth import RefreshSession
from app.models.user import Role, User
from tests.conftest import PASSWORD, create_user
from tests.support import API, STRONG, assert_problem, bearer, register, unique_email


async def test_register_creates_customer_with_tokens(client):
    r = await client.post(f"{API}/auth/register", json={
        "email": "  Rose.Petal@Example.COM ", "password": STRONG, "first_name": " Rose ", "last_name": "Petal",
        "phone": "(212) 555-0142"})
    assert r.status_code == 201, r.text
    body = r.json()
    user = body["user"]
    assert user["email"] == "rose.petal@example.com"
    assert (user["first_name"], user["last_name"], user["phone"]) == ("Rose", "Petal", "+12125550142")
    assert user["role"] == "customer" and user["is_active"] is True and user["email_verified"] is False
    assert user["id"].startswith("usr_")
    assert "password_hash" not in user and "password" not in user
    tokens = body["tokens"]
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 15 * 60
    assert tokens["refresh_token"] and tokens["refresh_expires_in"] == 30 * 86400
    assert r.cookies.get("af_refresh") == tokens["refresh_token"]

    stored = await User.get(user["id"])
    assert stored.email == "rose.petal@example.com"
    assert stored.password_hash.startswith("$argon2id$") and STRONG not in stored.password_hash
    sessions = await RefreshSession.find(RefreshSession.user_id == user["id"]).to_list()
    assert len(sessions) == 1 and sessions[0].token_hash != tokens["refresh_token"]  # stored hashed

    me = await client.get(f"{API}/users/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200 and me.json()["id"] == user["id"]


async def test_register_duplicate_email_is_409_whatever_the_case(client):
    await register(client, "lily@example.com")
    r = await client.post(f"{API}/auth/register", json={
        "email": "LILY@example.com", "password": "Another-Bouquet-77", "first_name": "L", "last_name": "Y"})
    assert_problem(r, 409, "email-taken")
    assert await User.find(User.email == "lily@example.com").count() == 1


async def test_register_race_yields_exactly_one_account(client):
    email = unique_email("race")

    async def attempt(i: int):
        return await client.post(f"{API}/auth/register", json={
            "email": email, "password": STRONG, "first_name": f"Racer{i}", "last_name": "X"})

    responses = await asyncio.gather(*(attempt(i) for i in range(10)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 9, [r.text for r in responses]
    for r in responses:
        if r.status_code == 409:
            assert_problem(r, 409, "email-taken")
    assert await User.find(User.email == email).count() == 1


@pytest.mark.parametrize(("password", "needle"), [
    ("Short-1a", "at least 10 characters"),
    ("x" * 129, "at most 128 characters"),
])
async def test_register_password_length_is_validated(client, password, needle):
    email = unique_email()
    r = await client.post(f"{API}/auth/register", json={
        "email": email, "password": password, "first_name": "A", "last_name": "B"})
    body = assert_problem(r, 422, "validation-error")
    assert body["errors"][0]["loc"] == ["body", "password"] and needle in body["errors"][0]["msg"]
    assert await User.find(User.email == email).count() == 0


@pytest.mark.parametrize(("password", "needle"), [
    ("{email}", "must not be your email"),
    ("{local}", "must not be your email"),
    ("Password123", "too common"),
    ("qwertyuiop", "too common"),
    ("abababababab", "too common"),
])
async def test_register_password_policy(client, password, needle):
    local = f"gardenia{unique_email()[5:15]}"
    email = f"{local}@example.com"
    r = await client.post(f"{API}/auth/register", json={
        "email": email, "password": password.format(email=email.upper(), local=local),
        "first_name": "A", "last_name": "B"})
    body = assert_problem(r, 422, "weak-password")
    assert needle in body["detail"]
    assert await User.find(User.email == email).count() == 0


@pytest.mark.parametrize("body", [
    {"email": {"$ne": ""}, "password": STRONG, "first_name": "A", "last_name": "B"},
    {"email": "a@example.com", "password": {"$gt": ""}, "first_name": "A", "last_name": "B"},
    {"email": "a@example.com", "password": STRONG, "first_name": "A", "last_name": "B", "role": "admin"},
    {"email": "a@example.com", "password": STRONG, "first_name": "A", "last_name": "B", "is_active": True},
    {"email": "not-an-email", "password": STRONG, "first_name": "A", "last_name": "B"},
    {"email": "a@example.com", "password": STRONG, "first_name": "", "last_name": "B"},
    {"email": "a@example.com", "password": STRONG, "first_name": "A", "last_name": "B", "phone": "555"},
    {"email": "a@example.com", "password": STRONG, "first_name": "A"},
])
async def test_register_rejects_malformed_bodies(client, body):
    await create_user(email="existing@example.com")
    r = await client.post(f"{API}/auth/register", json=body)
    problem = assert_problem(r, 422, "validation-error")
    assert problem["errors"] and all(e["loc"][0] == "body" for e in problem["errors"])
    assert await User.count() == 1  # nothing created, nothing matched


async def test_login_json_and_last_login(client):
    user = await create_user(email="iris@example.com")
    r = await client.post(f"{API}/auth/login", json={"email": " IRIS@example.com", "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"]["id"] == user.id and body["user"]["role"] == "customer"
    assert r.cookies.get("af_refresh") == body["tokens"]["refresh_token"]
    me = await client.get(f"{API}/users/me", headers=bearer(body["tokens"]["access_token"]))
    assert me.status_code == 200 and me.json()["email"] == "iris@example.com"
    assert (await User.get(user.id)).last_login_at is not None


async def test_login_oauth2_form(client):
    await create_user(Role.staff, email="sam@example.com")
    r = await client.post(f"{API}/auth/token", data={"username": "Sam@Example.com", "password": PASSWORD})
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert tokens["token_type"] == "bearer" and tokens["refresh_token"]
    me = await client.get(f"{API}/users/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200 and me.json()["role"] == "staff"

    r = await client.post(f"{API}/auth/token", data={"username": "sam@example.com", "password": "wrong-password"})
    assert_problem(r, 401, "invalid-credentials")
    r = await client.post(f"{API}/auth/token", json={"username": "sam@example.com", "password": PASSWORD})
    assert_problem(r, 422)


async def test_wrong_email_and_wrong_password_look_the_same(client):
    await create_user(email="daisy@example.com")
    wrong_pw = await client.post(f"{API}/auth/login", json={"email": "daisy@example.com", "password": "nope-nope-1"})
    no_user = await client.post(f"{API}/auth/login", json={"email": "nobody@example.com", "password": "nope-nope-1"})
    a, b = assert_problem(wrong_pw, 401, "invalid-credentials"), assert_problem(no_user, 401, "invalid-credentials")
    a.pop("request_id"), b.pop("request_id")
    assert a == b
    assert wrong_pw.headers["www-authenticate"] == no_user.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("body", [
    {"email": {"$ne": ""}, "password": PASSWORD},
    {"email": "daisy@example.com", "password": {"$ne": ""}},
    {"email": "daisy@example.com", "password": PASSWORD, "remember": True},
    {"email": "daisy@example.com"},
])
async def test_login_rejects_operator_injection_and_unknown_fields(client, body):
    await create_user(email="daisy@example.com")
    assert_problem(await client.post(f"{API}/auth/login", json=body), 422, "validation-error")


async def test_deactivated_user_cannot_log_in_or_refresh(client):
    user = await create_user(email="fern@example.com")
    r = await client.post(f"{API}/auth/login", json={"email": "fern@example.com", "password": PASSWORD})
    refresh_token = r.json()["tokens"]["refresh_token"]
    access = r.json()["tokens"]["access_token"]
    await User.find_one(User.id == user.id).update({"$set": {"is_active": False}})

    r = await client.post(f"{API}/auth/login", json={"email": "fern@example.com", "password": PASSWORD})
    assert_problem(r, 403, "account-deactivated")
    # Without the right password nothing reveals the account's state.
    r = await client.post(f"{API}/auth/login", json={"email": "fern@example.com", "password": "Wrong-Password-1"})
    assert_problem(r, 401, "invalid-credentials")
    r = await client.post(f"{API}/auth/token", data={"username": "fern@example.com", "password": PASSWORD})
    assert_problem(r, 403, "account-deactivated")
    client.cookies.clear()
    r = await client.post(f"{API}/auth/refresh", json={"refresh_token": refresh_token})
    assert_problem(r, 401, "invalid-refresh-token")
    assert_problem(await client.get(f"{API}/users/me", headers=bearer(access)), 401)


@pytest.mark.parametrize("prefix", [b"2a", b"2b"])
async def test_legacy_bcrypt_hash_verifies_and_is_upgraded(client, prefix):
    legacy = bcrypt.hashpw(b"Old-Mern-Password-9", bcrypt.gensalt(rounds=4, prefix=prefix)).decode()
    assert legacy.startswith(f"${prefix.decode()}$")
    user = User(email="legacy@example.com", first_name="Old", last_name="Timer", password_hash=legacy)
    await user.insert()

    r = await client.post(f"{API}/auth/login", json={"email": "legacy@example.com", "password": "Wrong-Password-9"})
    assert_problem(r, 401, "invalid-credentials")
    assert (await User.get(user.id)).password_hash == legacy  # a failed login changes nothing

    r = await client.post(f"{API}/auth/login", json={"email": "legacy@example.com", "password": "Old-Mern-Password-9"})
    assert r.status_code == 200, r.text
    upgraded = (await User.get(user.id)).password_hash
    assert upgraded.startswith("$argon2id$")
    r = await client.post(f"{API}/auth/login", json={"email": "legacy@example.com", "password": "Old-Mern-Password-9"})
    assert r.status_code == 200, r.text
    assert (await User.get(user.id)).password_hash == upgraded  # argon2id is current: no second rewrite


async def test_bcrypt_user_with_overlong_password_is_refused_not_crashed(client):
    legacy = bcrypt.hashpw(b"Old-Mern-Password-9", bcrypt.gensalt(rounds=4)).decode()
    await User(email="long@example.com", first_name="L", last_name="P", password_hash=legacy).insert()
    r = await client.post(f"{API}/auth/login", json={"email": "long@example.com", "password": "x" * 100})
    assert_problem(r, 401, "invalid-credentials")
