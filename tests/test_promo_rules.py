"""Promo codes, the rules test_promo.py leaves out: admin changes of kind, code and limits; fixed codes;
per-customer counting without an email; and the races of taking a use (made deterministic with
tests/interleave.py: the competing request runs at the exact point where it would hurt)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from app.core.errors import Conflict, Unprocessable
from app.models.promo import PromoCode, PromoCustomerUses, PromoRedemption
from app.services.promo import PromoService
from tests.factories import make_category, make_product
from tests.interleave import interleave
from tests.test_promo import PROMOS, apply, cart_with, iso, promo_creator


@pytest.fixture
def create_promo(client, admin):
    return promo_creator(client, admin)


async def uses(code: str) -> int:
    return (await PromoCode.find_one(PromoCode.code == code)).uses


async def test_changing_the_kind_drops_the_other_kinds_value(client, admin, create_promo):
    _, headers = admin
    promo = await create_promo("SWITCH", kind="fixed", amount=700)
    url = f"{PROMOS}/{promo['id']}"
    body = (await client.patch(url, headers=headers, json={"kind": "percentage", "percent": 15})).json()
    assert (body["kind"], body["percent_bps"], body["amount"]) == ("percentage", 1500, None)
    body = (await client.patch(url, headers=headers, json={"kind": "free_delivery"})).json()
    assert (body["kind"], body["percent_bps"], body["amount"]) == ("free_delivery", None, None)
    body = (await client.patch(url, headers=headers, json={"kind": "fixed", "amount": 300})).json()
    assert (body["kind"], body["percent_bps"], body["amount"]) == ("fixed", None, 300)
    for bad in ({"kind": "percentage"}, {"percent": 10}, {"kind": "free_delivery", "amount": 300}):
        r = await client.patch(url, headers=headers, json=bad)
        assert r.status_code == 422 and r.json()["type"].endswith("/promo-invalid"), bad
    r = await client.post(PROMOS, headers=headers, json={"code": "TWOKINDS", "kind": "fixed", "amount": 500,
                                                         "percent": 10})
    assert r.status_code == 422 and r.json()["type"].endswith("/promo-invalid")
    stored = await PromoCode.get(promo["id"])
    assert (stored.kind, stored.amount, stored.percent_bps) == ("fixed", 300, None)


async def test_patch_nothing_code_clash_categories_and_cleared_defaults(client, admin, create_promo):
    _, headers = admin
    roses = await make_category("Roses")
    promo = await create_promo("KEEPME", min_subtotal=2000, category_ids=[roses.id], active=False)
    await create_promo("TAKEN")
    url = f"{PROMOS}/{promo['id']}"
    r = await client.patch(url, headers=headers, json={})
    assert r.status_code == 200 and r.json() == (await client.get(url, headers=headers)).json()
    assert r.json()["updated_at"] == promo["updated_at"]  # nothing to change: nothing written
    r = await client.patch(url, headers=headers, json={"code": "taken"})
    assert r.status_code == 409 and r.json()["type"].endswith("/promo-code-taken")
    r = await client.patch(url, headers=headers, json={"category_ids": ["cat_01JD7Z0000000000000000000A"]})
    assert r.status_code == 422 and r.json()["type"].endswith("/unknown-category")
    assert (await PromoCode.get(promo["id"])).code == "KEEPME"
    body = (await client.patch(url, headers=headers,
                               json={"min_subtotal": None, "category_ids": None, "active": None})).json()
    assert (body["min_subtotal"], body["category_ids"], body["active"]) == (0, [], True)
    body = (await client.patch(url, headers=headers, json={"code": "renamed", "category_ids": [roses.id]})).json()
    assert (body["code"], body["category_ids"]) == ("RENAMED", [roses.id])
    listed = (await client.get(PROMOS, headers=headers, params={"active": True, "q": "ren"})).json()["items"]
    assert [p["code"] for p in listed] == ["RENAMED"]


async def test_fixed_code_takes_its_amount_and_respects_the_cap(client, customer, create_promo):
    _, headers = customer
    await cart_with(client, headers, await make_product(), quantity=2)  # 9000
    await create_promo("FIVE", kind="fixed", amount=500)
    body = (await apply(client, headers, "five")).json()
    assert (body["discount"], body["promo"]["kind"], body["total"]) == (500, "fixed", 8500)
    await create_promo("CAPPED", kind="fixed", amount=2000, max_discount=1500)
    assert (await apply(client, headers, "CAPPED")).json()["discount"] == 1500
    r = await apply(client, headers, "BAD CODE!")  # not a code's shape: refused by validation, nothing looked up
    assert r.status_code == 422 and r.json()["type"].endswith("/validation-error")


async def test_per_customer_limit_counts_an_account_without_email_by_its_id(app, settings, create_promo):
    await create_promo("ONEEACH", per_customer_limit=1)
    service = PromoService(settings)
    await service.take_use("ONEEACH", order_id="ord_1", user_id="usr_a", email=None)
    with pytest.raises(Conflict) as refused:
        await service.take_use("ONEEACH", order_id="ord_2", user_id="usr_a", email=None)
    assert refused.value.code == "promo-customer-limit"
    await service.take_use("ONEEACH", order_id="ord_3", user_id="usr_b", email=None)
    # Nobody to count (neither account nor email): only the total limit applies, and no counter is made.
    await service.take_use("ONEEACH", order_id="ord_4", user_id=None, email=None)
    await service.take_use("ONEEACH", order_id="ord_5", user_id=None, email=None)
    assert await uses("ONEEACH") == 4
    counters = await PromoCustomerUses.find_all().to_list()
    assert sorted((c.id.split(":", 1)[1], c.used) for c in counters) == [("user:usr_a", 1), ("user:usr_b", 1)]
    await service.give_back("ord_4")
    assert await uses("ONEEACH") == 3
    with pytest.raises(Unprocessable) as evaluated:
        await service.evaluate("ONEEACH", subtotal=5000, lines=[], user_id="usr_a", email=None)
    assert evaluated.value.code == "promo-customer-limit"


async def test_an_order_holds_one_code_and_a_given_back_use_is_not_taken_again(app, settings, create_promo):
    await create_promo("FIRST")
    await create_promo("SECOND")
    service = PromoService(settings)
    await service.take_use("FIRST", order_id="ord_1", user_id=None, email="a@example.com")
    with pytest.raises(Conflict) as other:
        await service.take_use("SECOND", order_id="ord_1", user_id=None, email="a@example.com")
    assert other.value.code == "promo-order-conflict"
    await service.give_back("ord_1")
    with pytest.raises(Conflict) as again:
        await service.take_use("FIRST", order_id="ord_1", user_id=None, email="a@example.com")
    assert again.value.code == "promo-order-conflict"
    assert (await uses("FIRST"), await uses("SECOND")) == (0, 0)


# --- races, made deterministic ----------------------------------------------------------------------------
async def test_a_second_take_for_the_same_order_records_one_use(app, settings, monkeypatch, create_promo):
    """The competing call for the same order lands between this call's look-up and its insert."""
    await create_promo("TWICE", per_customer_limit=5)
    service = PromoService(settings)
    rival = interleave(monkeypatch, PromoRedemption, "get", lambda: service.take_use(
        "TWICE", order_id="ord_1", user_id=None, email="a@example.com"))
    await service.take_use("TWICE", order_id="ord_1", user_id=None, email="a@example.com")
    assert rival == [None]
    assert await uses("TWICE") == 1
    assert (await PromoCustomerUses.get(f"{(await PromoCode.find_one(PromoCode.code == 'TWICE')).id}"
                                        ":email:a@example.com")).used == 1
    assert await PromoRedemption.find_all().count() == 1


async def test_the_last_use_taken_by_a_rival_call_for_the_same_order_is_that_orders(app, settings, monkeypatch,
                                                                                    create_promo):
    await create_promo("LASTONE", usage_limit=1)
    service = PromoService(settings)
    interleave(monkeypatch, PromoRedemption, "get", lambda: service.take_use(
        "LASTONE", order_id="ord_1", user_id=None, email="a@example.com"))
    await service.take_use("lastone", order_id="ord_1", user_id=None, email="a@example.com")  # no error
    assert await uses("LASTONE") == 1


async def test_a_rival_call_with_another_code_for_the_same_order_wins_alone(app, settings, monkeypatch,
                                                                             create_promo):
    await create_promo("MINE", usage_limit=1)
    await create_promo("THEIRS")
    service = PromoService(settings)
    interleave(monkeypatch, PromoRedemption, "get", lambda: service.take_use(
        "THEIRS", order_id="ord_1", user_id=None, email="a@example.com"))
    with pytest.raises(Conflict) as lost:
        await service.take_use("MINE", order_id="ord_1", user_id=None, email="a@example.com")
    assert lost.value.code == "promo-order-conflict"
    assert (await uses("MINE"), await uses("THEIRS")) == (0, 1)  # the loser's use went back


async def test_raising_the_limit_while_a_customer_takes_the_last_use_lets_them_have_it(
        app, settings, client, admin, monkeypatch, create_promo):
    promo = await create_promo("RAISED", usage_limit=1)
    service = PromoService(settings)
    await service.take_use("RAISED", order_id="ord_0", user_id=None, email="z@example.com")
    patches = interleave(monkeypatch, PromoService, "_find", lambda: client.patch(
        f"{PROMOS}/{promo['id']}", headers=admin[1], json={"usage_limit": 2}))
    await service.take_use("RAISED", order_id="ord_1", user_id=None, email="a@example.com")
    assert [r.status_code for r in patches] == [200]
    assert await uses("RAISED") == 2
    with pytest.raises(Conflict) as full:
        await service.take_use("RAISED", order_id="ord_2", user_id=None, email="b@example.com")
    assert full.value.code == "promo-used-up"


async def test_a_limit_that_keeps_changing_ends_in_used_up_not_a_loop(app, settings, monkeypatch, create_promo):
    promo = await create_promo("FLAPPING", usage_limit=1)
    service = PromoService(settings)
    await service.take_use("FLAPPING", order_id="ord_0", user_id=None, email="z@example.com")
    limits = iter(range(2, 100))

    async def lower_the_limit_again():  # every retry sees a new limit that is already used up
        coll = PromoCode.get_pymongo_collection()
        await coll.update_one({"_id": promo["id"]}, {"$set": {"usage_limit": next(limits), "uses": 1_000}})

    changes = interleave(monkeypatch, PromoService, "_find", lower_the_limit_again, times=50)
    with pytest.raises(Conflict) as refused:
        await service.take_use("FLAPPING", order_id="ord_1", user_id=None, email="a@example.com")
    assert refused.value.code == "promo-used-up" and len(changes) == 10  # gave up after ten attempts
    assert await PromoRedemption.get("ord_1") is None


async def test_concurrent_takes_for_one_order_and_code_keep_one_use(app, settings, create_promo):
    await create_promo("BURST", usage_limit=5, per_customer_limit=5)
    service = PromoService(settings)
    await asyncio.gather(*(service.take_use("BURST", order_id="ord_1", user_id=None, email="a@example.com")
                           for _ in range(5)))
    assert await uses("BURST") == 1
    assert (await PromoCustomerUses.find_all().to_list())[0].used == 1


async def test_boundaries_the_window_and_the_minimum_are_inclusive_where_they_say(app, settings, create_promo):
    """valid_from is inclusive, valid_until exclusive; a subtotal equal to the minimum qualifies."""
    start = datetime(2030, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=7)
    await create_promo("WEEK", valid_from=iso(start), valid_until=iso(end), min_subtotal=4500)

    async def reason_at(moment: datetime, subtotal: int = 4500) -> str | None:
        try:
            await PromoService(settings, clock=lambda: moment).evaluate(
                "WEEK", subtotal=subtotal, lines=[], user_id=None, email="a@example.com")
        except Unprocessable as exc:
            return exc.code
        return None

    assert await reason_at(start - timedelta(microseconds=1)) == "promo-not-started"
    assert await reason_at(start) is None
    assert await reason_at(end - timedelta(microseconds=1)) is None
    assert await reason_at(end) == "promo-expired"
    assert await reason_at(start, subtotal=4499) == "promo-min-subtotal"
    result = await PromoService(settings, clock=lambda: start).evaluate(
        "WEEK", subtotal=4500, lines=[], user_id=None, email=None)
    assert result.discount == 450  # 10 % of 4500
