"""Address book: /users/me/addresses CRUD, US validation, the limit, exactly one default, concurrency."""

from __future__ import annotations

import asyncio

import pytest

from app.models.user import User
from tests.conftest import create_user, login_headers
from tests.support import API, assert_problem

ADDR = f"{API}/users/me/addresses"
HOME = {"label": "Home", "first_name": "Rose", "last_name": "Petal", "line1": "120 Bleecker St",
        "line2": "Apt 4", "city": "New York", "state": "NY", "zip": "10012", "phone": "(212) 555-0142"}


def addr(**changes):
    return {**HOME, **changes}


async def add(client, headers, **changes) -> dict:
    r = await client.post(ADDR, headers=headers, json=addr(**changes))
    assert r.status_code == 201, r.text
    return r.json()


async def defaults(user_id: str) -> list[str]:
    return [a.id for a in (await User.get(user_id)).addresses if a.is_default]


async def test_address_crud(client, customer):
    user, headers = customer
    created = await add(client, headers, state="ny", zip="10012-3456")
    assert created["id"].startswith("adr_") and created["is_default"] is True  # the first is the default
    assert (created["state"], created["zip"], created["phone"]) == ("NY", "10012-3456", "+12125550142")
    assert created["created_at"].endswith("Z")

    r = await client.get(f"{ADDR}/{created['id']}", headers=headers)
    assert r.status_code == 200 and r.json() == created
    r = await client.get(ADDR, headers=headers)
    assert r.status_code == 200 and r.json() == [created]

    r = await client.patch(f"{ADDR}/{created['id']}", headers=headers,
                           json={"line1": "500 Fifth Ave", "line2": None, "label": "Office"})
    assert r.status_code == 200, r.text
    patched = r.json()
    assert (patched["line1"], patched["line2"], patched["label"]) == ("500 Fifth Ave", None, "Office")
    assert patched["city"] == "New York" and patched["is_default"] is True
    stored = (await User.get(user.id)).addresses
    assert len(stored) == 1 and stored[0].line1 == "500 Fifth Ave" and stored[0].line2 is None

    r = await client.delete(f"{ADDR}/{created['id']}", headers=headers)
    assert r.status_code == 204
    assert (await client.get(ADDR, headers=headers)).json() == []
    assert_problem(await client.get(f"{ADDR}/{created['id']}", headers=headers), 404, "not-found")
    assert (await User.get(user.id)).addresses == []


@pytest.mark.parametrize("changes", [
    {"state": "XX"},
    {"state": "New York"},
    {"zip": "1001"},
    {"zip": "10012-34"},
    {"zip": "ABCDE"},
    {"phone": "555-0142"},
    {"phone": "(112) 555-0142"},
    {"line1": "x"},
    {"city": ""},
    {"first_name": ""},
    {"label": "x" * 41},
    {"country": "US"},
    {"zip": {"$ne": ""}},
    {"is_default": "maybe"},
])
async def test_address_validation(client, customer, changes):
    user, headers = customer
    problem = assert_problem(await client.post(ADDR, headers=headers, json=addr(**changes)), 422, "validation-error")
    field = next(iter(changes))
    assert any(e["loc"][:2] == ["body", field] for e in problem["errors"]), problem["errors"]
    assert (await User.get(user.id)).addresses == []


@pytest.mark.parametrize("changes", [
    {"zip": None}, {"state": "ZZ"}, {"is_default": None}, {"first_name": None}, {"line1": None}, {"city": None},
    {"phone": "123"}, {"id": "adr_01JD7Z00000000000000000000"},
])
async def test_address_patch_validation(client, customer, changes):
    user, headers = customer
    created = await add(client, headers)
    assert_problem(await client.patch(f"{ADDR}/{created['id']}", headers=headers, json=changes), 422)
    assert (await client.get(f"{ADDR}/{created['id']}", headers=headers)).json() == created


async def test_at_most_twenty_addresses(client, customer):
    user, headers = customer
    for i in range(20):
        await add(client, headers, label=f"Place {i}")
    r = await client.post(ADDR, headers=headers, json=addr(label="One too many"))
    assert_problem(r, 409, "too-many-addresses")
    stored = (await User.get(user.id)).addresses
    assert len(stored) == 20 and "One too many" not in {a.label for a in stored}


async def test_exactly_one_default_at_all_times(client, customer):
    user, headers = customer
    a = await add(client, headers, label="A")
    b = await add(client, headers, label="B")
    assert b["is_default"] is False and await defaults(user.id) == [a["id"]]

    c = await add(client, headers, label="C", is_default=True)  # a new default takes over
    assert c["is_default"] is True and await defaults(user.id) == [c["id"]]

    r = await client.patch(f"{ADDR}/{b['id']}", headers=headers, json={"is_default": True})
    assert r.json()["is_default"] is True and await defaults(user.id) == [b["id"]]

    # Unsetting the only default cannot leave none: another address becomes the default.
    r = await client.patch(f"{ADDR}/{b['id']}", headers=headers, json={"is_default": False})
    assert r.status_code == 200 and len(await defaults(user.id)) == 1

    current = (await defaults(user.id))[0]
    assert (await client.delete(f"{ADDR}/{current}", headers=headers)).status_code == 204
    remaining = (await client.get(ADDR, headers=headers)).json()
    assert len(remaining) == 2 and sum(x["is_default"] for x in remaining) == 1

    for x in remaining:
        await client.delete(f"{ADDR}/{x['id']}", headers=headers)
    only = await add(client, headers, label="Fresh start")
    assert only["is_default"] is True


async def test_a_single_address_stays_the_default(client, customer):
    user, headers = customer
    a = await add(client, headers)
    r = await client.patch(f"{ADDR}/{a['id']}", headers=headers, json={"is_default": False})
    assert r.status_code == 200 and r.json()["is_default"] is True


async def test_another_users_address_is_not_found(client, customer, user_factory):
    _, mine = customer
    _, theirs = await user_factory()
    their_address = await add(client, theirs)
    for method in ("GET", "PATCH", "DELETE"):
        kwargs = {"json": {"label": "Hijacked"}} if method == "PATCH" else {}
        r = await client.request(method, f"{ADDR}/{their_address['id']}", headers=mine, **kwargs)
        assert_problem(r, 404, "not-found")
    assert (await client.get(f"{ADDR}/{their_address['id']}", headers=theirs)).json() == their_address
    assert_problem(await client.get(f"{ADDR}/adr_01JD7Z00000000000000000000", headers=mine), 404)
    assert_problem(await client.get(f"{ADDR}/not-an-id", headers=mine), 422)


async def test_addresses_need_a_signed_in_user(client):
    assert_problem(await client.get(ADDR), 401)
    assert_problem(await client.post(ADDR, json=HOME), 401)


async def test_concurrent_adds_are_all_kept(client, customer):
    user, headers = customer
    version = (await User.get(user.id)).version
    responses = await asyncio.gather(*(client.post(ADDR, headers=headers, json=addr(label=f"Spot {i}"))
                                       for i in range(10)))
    assert [r.status_code for r in responses] == [201] * 10, [r.text for r in responses]
    stored = await User.get(user.id)
    assert sorted(a.label for a in stored.addresses) == sorted(f"Spot {i}" for i in range(10))
    assert {a.id for a in stored.addresses} == {r.json()["id"] for r in responses}
    assert sum(a.is_default for a in stored.addresses) == 1
    assert stored.version == version + 10
    listed = (await client.get(ADDR, headers=headers)).json()
    assert all(x["line1"] == "120 Bleecker St" and x["state"] == "NY" for x in listed)  # sub-documents intact


async def test_concurrent_adds_respect_the_limit(client, customer):
    user, headers = customer
    for i in range(15):
        await add(client, headers, label=f"Old {i}")
    responses = await asyncio.gather(*(client.post(ADDR, headers=headers, json=addr(label=f"New {i}"))
                                       for i in range(10)))
    assert sorted(r.status_code for r in responses) == [201] * 5 + [409] * 5
    assert len((await User.get(user.id)).addresses) == 20



async def test_an_imported_account_without_a_version_field_can_add_addresses(client):
    user = await create_user(email="imported@example.com")
    raw = await User.get_pymongo_collection().find_one({"_id": user.id})
    del raw["version"]  # as written by the old MERN app
    await User.get_pymongo_collection().replace_one({"_id": user.id}, raw)
    headers = await login_headers(client, user.email)
    created = await add(client, headers)
    assert created["is_default"] is True
    assert (await User.get(user.id)).version == 1
    assert len((await client.get(ADDR, headers=headers)).json()) == 1
