"""The signed-in user's account: GET/PATCH/DELETE /users/me and POST /users/me/password."""

from __future__ import annotations

import pytest

from app.models.auth import RefreshSession
from app.models.marketing import NewsletterSubscription
from app.models.user import Address, Role, User
from tests.conftest import PASSWORD, create_user, login_headers
from tests.support import API, assert_problem, bearer, login, register

NEW_PASSWORD = "Lavender-Hills-31"


async def test_get_me(client, customer):
    user, headers = customer
    r = await client.get(f"{API}/users/me", headers=headers)
    assert r.status_code == 200
    body = r.json()
    assert body == {
        "id": user.id, "email": user.email, "first_name": "Test", "last_name": "Customer", "phone": None,
        "role": "customer", "is_active": True, "email_verified": True,
        "preferences": {"email_notifications": True, "newsletter": False, "newsletter_status": "none",
                        "favorite_occasions": []},
        "created_at": body["created_at"],
    }
    assert body["created_at"].endswith("Z")


async def test_patch_profile_names_phone_and_preferences(client, customer):
    user, headers = customer
    r = await client.patch(f"{API}/users/me", headers=headers, json={
        "first_name": "  Camellia ", "last_name": "Bloom", "phone": "+1 (212) 555-0199",
        "preferences": {"newsletter": True, "favorite_occasions": ["birthday", "anniversary"]}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["first_name"], body["last_name"], body["phone"]) == ("Camellia", "Bloom", "+12125550199")
    assert body["preferences"] == {"email_notifications": True, "newsletter": True, "newsletter_status": "confirmed",
                                   "favorite_occasions": ["birthday", "anniversary"]}

    # A partial preferences patch keeps the other preferences.
    r = await client.patch(f"{API}/users/me", headers=headers, json={"preferences": {"email_notifications": False}})
    assert r.json()["preferences"] == {"email_notifications": False, "newsletter": True,
                                       "newsletter_status": "confirmed",
                                       "favorite_occasions": ["birthday", "anniversary"]}
    # null clears the phone; other fields stay.
    r = await client.patch(f"{API}/users/me", headers=headers, json={"phone": None})
    assert r.json()["phone"] is None and r.json()["first_name"] == "Camellia"

    stored = await User.get(user.id)
    assert (stored.first_name, stored.phone) == ("Camellia", None)
    # The newsletter preference is the address's subscription, not a field of the account.
    sub = await NewsletterSubscription.find_one({"email": user.email})
    assert sub.status == "confirmed" and sub.source == "account"
    assert "newsletter" not in (await User.get_pymongo_collection().find_one({"_id": user.id}))["preferences"]
    assert stored.preferences.email_notifications is False and stored.updated_at.tzinfo is not None


@pytest.mark.parametrize("body", [
    {"first_name": ""},
    {"first_name": None},
    {"last_name": "x" * 81},
    {"phone": "12345"},
    {"phone": "(012) 555-0199"},
    {"email": "new@example.com"},
    {"role": "admin"},
    {"is_active": False},
    {"preferences": None},
    {"preferences": {"favorite_occasions": ["halloween"]}},
    {"preferences": {"favorite_occasions": None}},
    {"preferences": {"newsletter": None}},
    {"preferences": {"newsletter": True, "spam": True}},
    {"preferences": {"favorite_occasions": ["birthday"] * 13}},
    {"first_name": {"$ne": ""}},
])
async def test_patch_profile_rejects_invalid_bodies(client, customer, body):
    user, headers = customer
    before = (await User.get(user.id)).model_dump()
    problem = assert_problem(await client.patch(f"{API}/users/me", headers=headers, json=body), 422)
    assert problem["errors"]
    assert (await User.get(user.id)).model_dump() == before


async def test_profile_needs_a_signed_in_user(client):
    assert_problem(await client.get(f"{API}/users/me"), 401)
    assert_problem(await client.patch(f"{API}/users/me", json={"first_name": "X"}), 401)
    assert_problem(await client.delete(f"{API}/users/me"), 401)


async def test_change_password_revokes_other_sessions_and_returns_new_tokens(client, mailbox):
    user = await create_user(email="clover@example.com")
    this = await login(client, user.email, PASSWORD)
    other = await login(client, user.email, PASSWORD)
    client.cookies.clear()
    r = await client.post(f"{API}/users/me/password", headers=bearer(this["access_token"]),
                          json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert r.status_code == 200, r.text
    fresh = r.json()
    assert fresh["access_token"] and fresh["refresh_token"]

    assert (await client.get(f"{API}/users/me", headers=bearer(fresh["access_token"]))).status_code == 200
    for old in (this, other):
        assert_problem(await client.get(f"{API}/users/me", headers=bearer(old["access_token"])), 401)
        assert_problem(await client.post(f"{API}/auth/refresh", json={"refresh_token": old["refresh_token"]}), 401)
    assert (await client.post(f"{API}/auth/refresh", json={"refresh_token": fresh["refresh_token"]})).status_code == 200

    assert_problem(await client.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD}), 401)
    await login(client, user.email, NEW_PASSWORD)
    await mailbox.wait_for(user.email, "password was changed")


@pytest.mark.parametrize(("body", "code"), [
    ({"current_password": "Not-The-Password-1", "new_password": NEW_PASSWORD}, "wrong-password"),
    ({"current_password": PASSWORD, "new_password": PASSWORD}, "weak-password"),
    ({"current_password": PASSWORD, "new_password": "password1234"}, "weak-password"),
    ({"current_password": PASSWORD, "new_password": "short"}, "validation-error"),
    ({"current_password": PASSWORD}, "validation-error"),
    ({"current_password": {"$ne": ""}, "new_password": NEW_PASSWORD}, "validation-error"),
])
async def test_change_password_failures(client, customer, body, code):
    user, headers = customer
    r = await client.post(f"{API}/users/me/password", headers=headers, json=body)
    assert_problem(r, 422, code)
    # Nothing changed: the session still works and the old password still signs in.
    assert (await client.get(f"{API}/users/me", headers=headers)).status_code == 200
    await login(client, user.email, PASSWORD)


async def test_delete_account_anonymizes_and_ends_sessions(client):
    user = await create_user(email="bluebell@example.com", phone="+12125550142", addresses=[Address(
        first_name="Blue", last_name="Bell", line1="1 Main St", city="Albany", state="NY", zip="12207",
        is_default=True)], favorites=["prd_01JD7Z00000000000000000000"])
    tokens = await login(client, user.email, PASSWORD)
    client.cookies.clear()

    r = await client.request("DELETE", f"{API}/users/me", headers=bearer(tokens["access_token"]),
                             json={"password": "Wrong-Password-1"})
    assert_problem(r, 422, "wrong-password")
    assert (await User.get(user.id)).email == "bluebell@example.com"

    r = await client.request("DELETE", f"{API}/users/me", headers=bearer(tokens["access_token"]),
                             json={"password": PASSWORD})
    assert r.status_code == 204, r.text
    stored = await User.get(user.id)
    assert stored.email != "bluebell@example.com" and "bluebell" not in stored.model_dump_json()
    assert (stored.first_name, stored.last_name, stored.phone) == ("Deleted", "User", None)
    assert stored.addresses == [] and stored.favorites == [] and stored.password_hash is None
    assert stored.is_active is False and stored.deleted_at is not None

    assert_problem(await client.get(f"{API}/users/me", headers=bearer(tokens["access_token"])), 401)
    assert_problem(await client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}), 401)
    r = await client.post(f"{API}/auth/login", json={"email": "bluebell@example.com", "password": PASSWORD})
    assert_problem(r, 401, "invalid-credentials")
    assert await RefreshSession.find(RefreshSession.user_id == user.id, RefreshSession.revoked_at == None).count() == 0  # noqa: E711
    # The address is free again.
    await register(client, "bluebell@example.com")


async def test_delete_account_needs_the_password_body(client, customer):
    _, headers = customer
    assert_problem(await client.request("DELETE", f"{API}/users/me", headers=headers), 422)
    r = await client.request("DELETE", f"{API}/users/me", headers=headers, json={"password": {"$ne": ""}})
    assert_problem(r, 422)


async def test_last_admin_cannot_delete_their_account(client):
    admin = await create_user(Role.admin, email="only-admin@example.com")
    headers = await login_headers(client, admin.email)
    r = await client.request("DELETE", f"{API}/users/me", headers=headers, json={"password": PASSWORD})
    assert_problem(r, 409, "last-admin")
    assert (await User.get(admin.id)).is_active is True

    await create_user(Role.admin, email="second-admin@example.com")
    r = await client.request("DELETE", f"{API}/users/me", headers=headers, json={"password": PASSWORD})
    assert r.status_code == 204
