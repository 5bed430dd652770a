"""Admin user management: /admin/users list (search, filters, cursor pages), detail, role and active flag."""

from __future__ import annotations

import asyncio

import pytest

from app.core.ids import new_id
from app.models.user import Role, User
from tests.conftest import PASSWORD, create_user, login_headers
from tests.support import API, assert_problem, bearer, login

USERS = f"{API}/admin/users"


async def _people():
    return {
        "alice": await create_user(email="alice@example.com", first_name="Alice", last_name="Wonder"),
        "bob": await create_user(Role.staff, email="bob@shop.test", first_name="Bob", last_name="Builder"),
        "carol": await create_user(email="carol@example.com", first_name="Carol", last_name="Alison",
                                   is_active=False),
        "dave": await create_user(email="dave@example.com", first_name="Dave", last_name="Stone"),
    }


async def test_list_users_with_search_and_filters(client, admin):
    me, headers = admin
    people = await _people()

    async def ids(**params) -> set[str]:
        r = await client.get(USERS, headers=headers, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == len(body["items"])
        return {u["id"] for u in body["items"]}

    everyone = {me.id} | {u.id for u in people.values()}
    assert await ids() == everyone
    assert await ids(q="ali") == {people["alice"].id, people["carol"].id}  # email or last name
    assert await ids(q="ALI") == {people["alice"].id, people["carol"].id}  # case-insensitive
    assert await ids(q="shop.test") == {people["bob"].id}
    assert await ids(q="a.c") == set()  # regex characters are literal
    assert await ids(q="((") == set()
    assert await ids(role="staff") == {people["bob"].id}
    assert await ids(role="admin") == {me.id}
    assert await ids(active="false") == {people["carol"].id}
    assert await ids(active="true", role="customer") == {people["alice"].id, people["dave"].id}
    assert await ids(q="ali", active="true") == {people["alice"].id}

    r = await client.get(USERS, headers=headers, params={"q": "alice"})
    item = r.json()["items"][0]
    assert item["email"] == "alice@example.com" and "password_hash" not in item and item["role"] == "customer"


async def test_list_users_in_cursor_pages(client, admin):
    me, headers = admin
    for i in range(6):
        await create_user(email=f"page{i}@example.com")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        r = await client.get(USERS, headers=headers, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == 7 and len(body["items"]) <= 3
        seen += [u["id"] for u in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7
    assert seen == sorted(seen, reverse=True)  # newest first


@pytest.mark.parametrize("params", [
    {"limit": 0}, {"limit": 101}, {"cursor": "not-a-cursor!"}, {"cursor": "W10"}, {"role": "owner"},
    {"active": "perhaps"}, {"q": ""}, {"q": "x" * 101},
])
async def test_list_users_rejects_bad_parameters(client, admin, params):
    _, headers = admin
    assert_problem(await client.get(USERS, headers=headers, params=params), 422)


async def test_user_detail(client, admin):
    _, headers = admin
    alice = await create_user(email="alice@example.com", first_name="Alice")
    r = await client.get(f"{USERS}/{alice.id}", headers=headers)
    assert r.status_code == 200 and r.json()["email"] == "alice@example.com"
    assert_problem(await client.get(f"{USERS}/{new_id('usr')}", headers=headers), 404, "not-found")
    assert_problem(await client.get(f"{USERS}/bogus", headers=headers), 422)


async def test_change_role_ends_the_users_sessions(client, admin):
    _, headers = admin
    target = await create_user(email="promote@example.com")
    old = await login(client, target.email, PASSWORD)
    client.cookies.clear()
    r = await client.patch(f"{USERS}/{target.id}", headers=headers, json={"role": "staff"})
    assert r.status_code == 200 and r.json()["role"] == "staff"
    assert (await User.get(target.id)).role == Role.staff
    assert_problem(await client.get(f"{API}/users/me", headers=bearer(old["access_token"])), 401)
    assert_problem(await client.post(f"{API}/auth/refresh", json={"refresh_token": old["refresh_token"]}), 401)
    new = await login(client, target.email, PASSWORD)
    assert (await client.get(f"{API}/users/me", headers=bearer(new["access_token"]))).json()["role"] == "staff"


async def test_deactivate_and_reactivate(client, admin):
    _, headers = admin
    target = await create_user(email="pause@example.com")
    old = await login(client, target.email, PASSWORD)
    client.cookies.clear()

    r = await client.patch(f"{USERS}/{target.id}", headers=headers, json={"is_active": False})
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert_problem(await client.get(f"{API}/users/me", headers=bearer(old["access_token"])), 401)
    assert_problem(await client.post(f"{API}/auth/refresh", json={"refresh_token": old["refresh_token"]}), 401)
    r = await client.post(f"{API}/auth/login", json={"email": target.email, "password": PASSWORD})
    assert_problem(r, 403, "account-deactivated")

    r = await client.patch(f"{USERS}/{target.id}", headers=headers, json={"is_active": True})
    assert r.status_code == 200 and r.json()["is_active"] is True
    await login(client, target.email, PASSWORD)
    assert (await User.get(target.id)).is_active is True


async def test_patch_user_rejects_bad_bodies(client, admin):
    _, headers = admin
    target = await create_user()
    for body in ({"role": "owner"}, {"is_active": "maybe"}, {"email": "x@example.com"}, {"role": {"$ne": ""}}):
        assert_problem(await client.patch(f"{USERS}/{target.id}", headers=headers, json=body), 422)
    assert_problem(await client.patch(f"{USERS}/{new_id('usr')}", headers=headers, json={"role": "staff"}), 404)
    assert (await User.get(target.id)).role == Role.customer


async def test_the_last_active_admin_cannot_be_demoted_or_deactivated(client, admin):
    me, headers = admin
    for body in ({"role": "staff"}, {"role": "customer"}, {"is_active": False}):
        assert_problem(await client.patch(f"{USERS}/{me.id}", headers=headers, json=body), 409, "last-admin")
    assert (await User.get(me.id)).role == Role.admin and (await User.get(me.id)).is_active

    # An inactive admin does not count as another active admin.
    await create_user(Role.admin, email="dormant-admin@example.com", is_active=False)
    assert_problem(await client.patch(f"{USERS}/{me.id}", headers=headers, json={"role": "staff"}), 409)

    other = await create_user(Role.admin, email="second-admin@example.com")
    r = await client.patch(f"{USERS}/{other.id}", headers=headers, json={"is_active": False})
    assert r.status_code == 200
    assert_problem(await client.patch(f"{USERS}/{me.id}", headers=headers, json={"role": "staff"}), 409)
    await client.patch(f"{USERS}/{other.id}", headers=headers, json={"is_active": True})
    r = await client.patch(f"{USERS}/{me.id}", headers=headers, json={"role": "staff"})
    assert r.status_code == 200 and r.json()["role"] == "staff"
    # Demoted: this admin's old token no longer opens admin routes.
    assert_problem(await client.get(USERS, headers=headers), 401)


@pytest.mark.parametrize(("who", "status"), [("anonymous", 401), ("customer", 403), ("staff", 403)])
async def test_only_admins_manage_users(client, who, status):
    target = await create_user()
    headers = {}
    if who != "anonymous":
        user = await create_user(Role(who))
        headers = await login_headers(client, user.email)
    assert_problem(await client.get(USERS, headers=headers), status)
    assert_problem(await client.get(f"{USERS}/{target.id}", headers=headers), status)
    assert_problem(await client.patch(f"{USERS}/{target.id}", headers=headers, json={"role": "admin"}), status)
    assert (await User.get(target.id)).role == Role.customer


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(client):
    a = await create_user(Role.admin, email="admin-a@example.com")
    b = await create_user(Role.admin, email="admin-b@example.com")
    ha, hb = await login_headers(client, a.email), await login_headers(client, b.email)
    ra, rb = await asyncio.gather(client.patch(f"{USERS}/{b.id}", headers=ha, json={"role": "customer"}),
                                  client.patch(f"{USERS}/{a.id}", headers=hb, json={"is_active": False}))
    assert sorted([ra.status_code, rb.status_code]) in ([200, 409], [200, 401], [409, 409]), (ra.text, rb.text)
    admins = await User.find({"role": "admin", "is_active": True}).count()
    assert admins == 1 or (admins == 2 and ra.status_code == rb.status_code == 409)
