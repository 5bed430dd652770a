"""Delivery: admin zones and config, public options with their reasons, quotes, slot capacity holds.

The shop clock is fixed through ``app.state.clock`` so no test depends on the hour it runs at.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from app.core.errors import Conflict, Unprocessable
from app.models.delivery import SlotUsage
from app.services.delivery import DeliveryService

NY = ZoneInfo("America/New_York")
WED = dt.date(2030, 4, 10)  # a Wednesday (EDT, UTC-4)
ADMIN_ZONES = "/api/v1/admin/delivery/zones"
CONFIG = "/api/v1/admin/delivery/config"
OPTIONS = "/api/v1/delivery/options"


def shop_time(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY).astimezone(dt.UTC)


def at(app, when: dt.datetime) -> None:
    app.state.clock = lambda: when


@pytest.fixture
async def zone(client, admin):
    _, headers = admin
    r = await client.post(ADMIN_ZONES, headers=headers, json={
        "name": "Manhattan South", "zip_codes": ["10013", "10012"], "zip_prefixes": ["100"], "fee": 999})
    assert r.status_code == 201, r.text
    return r.json()


def slot(day_option: dict, code: str) -> dict:
    return next(s for s in day_option["slots"] if s["code"] == code)


async def test_admin_delivery_routes_are_for_admins(client, customer, staff):
    assert (await client.get(ADMIN_ZONES)).status_code == 401
    assert (await client.get(ADMIN_ZONES, headers=customer[1])).status_code == 403
    assert (await client.get(CONFIG, headers=staff[1])).status_code == 403


async def test_zone_crud_and_zip_conflicts(client, admin, zone):
    _, headers = admin
    assert zone["zip_codes"] == ["10012", "10013"] and zone["fee"] == 999 and zone["same_day_allowed"] is True
    r = await client.post(ADMIN_ZONES, headers=headers, json={"name": "Other", "zip_codes": ["10013"], "fee": 1})
    assert r.status_code == 409 and r.json()["zips"] == ["10013"], r.text
    r = await client.post(ADMIN_ZONES, headers=headers, json={"name": "Empty", "fee": 1})
    assert r.status_code == 422
    r = await client.post(ADMIN_ZONES, headers=headers, json={"name": "Bad", "zip_codes": ["1001"], "fee": 1})
    assert r.status_code == 422
    r = await client.post(ADMIN_ZONES, headers=headers, json={"name": "X", "zip_codes": {"$ne": ""}, "fee": 1})
    assert r.status_code == 422
    r = await client.patch(f"{ADMIN_ZONES}/{zone['id']}", headers=headers,
                           json={"fee": 1299, "same_day_allowed": False})
    assert r.status_code == 200 and r.json()["fee"] == 1299 and r.json()["same_day_allowed"] is False
    r = await client.get(ADMIN_ZONES, headers=headers)
    assert [z["id"] for z in r.json()["items"]] == [zone["id"]] and r.json()["total"] == 1
    assert (await client.delete(f"{ADMIN_ZONES}/{zone['id']}", headers=headers)).status_code == 204
    assert (await client.get(f"{ADMIN_ZONES}/{zone['id']}", headers=headers)).status_code == 404


async def test_options_without_a_served_zip(client, app, zone):
    at(app, shop_time(WED, 9))
    r = await client.get(OPTIONS, params={"zip": "94110"})
    assert r.status_code == 200
    body = r.json()
    assert body["available"] is False and body["reason"] == "zip-not-served" and body["dates"] == []
    r = await client.get(OPTIONS)
    assert r.status_code == 422 and r.json()["type"].endswith("/zip-required")
    assert (await client.get(OPTIONS, params={"zip": "abc"})).status_code == 422


async def test_options_list_next_days_with_slots_windows_and_fee(client, app, settings, zone):
    at(app, shop_time(WED, 10))
    r = await client.get(OPTIONS, params={"zip": "10012"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["available"] is True and body["zone_id"] == zone["id"] and body["fee"] == 999
    assert body["timezone"] == "America/New_York" and body["currency"] == "USD"
    assert len(body["dates"]) == settings.delivery_options_days
    assert body["dates"][0]["date"] == WED.isoformat() and body["dates"][1]["date"] == "2030-04-11"
    today = body["dates"][0]
    assert today["available"] is True
    assert slot(today, "morning")["reason"] == "slot-passed"  # 09:00 already started at 10:00
    afternoon = slot(today, "afternoon")
    assert afternoon["available"] is True and afternoon["remaining"] == settings.delivery_slot_capacity
    assert afternoon["window_start"] == "2030-04-10T16:00:00Z" and afternoon["window_end"] == "2030-04-10T21:00:00Z"
    # A prefix zone answers for other ZIPs under it; the exact ZIP wins over a prefix.
    r = await client.get(OPTIONS, params={"zip": "10075"})
    assert r.json()["zone_id"] == zone["id"]


async def test_same_day_cutoff_uses_the_shop_time_zone(client, app, zone):
    # 12:59 in New York is 16:59 UTC: still before the 13:00 cutoff in shop time.
    at(app, shop_time(WED, 12, 59))
    today = (await client.get(OPTIONS, params={"zip": "10012", "date": WED.isoformat()})).json()["dates"][0]
    assert today["available"] is True and slot(today, "evening")["available"] is True
    assert slot(today, "afternoon")["reason"] == "slot-passed"
    at(app, shop_time(WED, 13, 0))
    body = (await client.get(OPTIONS, params={"zip": "10012"})).json()
    today, tomorrow = body["dates"][0], body["dates"][1]
    assert today["available"] is False and today["reason"] == "past-cutoff" and "13:00" in today["detail"]
    assert all(s["reason"] == "past-cutoff" for s in today["slots"])
    assert tomorrow["available"] is True and slot(tomorrow, "morning")["available"] is True
    # 23:30 in New York is already the next day in UTC: "today" is still the shop's Wednesday.
    at(app, shop_time(WED, 23, 30))
    body = (await client.get(OPTIONS, params={"zip": "10012"})).json()
    assert body["dates"][0]["date"] == WED.isoformat() and body["dates"][0]["reason"] == "past-cutoff"


async def test_zone_without_same_day(client, app, admin, zone):
    await client.patch(f"{ADMIN_ZONES}/{zone['id']}", headers=admin[1], json={"same_day_allowed": False})
    at(app, shop_time(WED, 8))
    body = (await client.get(OPTIONS, params={"zip": "10012"})).json()
    assert body["dates"][0]["reason"] == "same-day-unavailable" and body["dates"][1]["available"] is True


async def test_blackout_closed_weekday_past_and_too_far(client, app, admin, zone):
    r = await client.patch(CONFIG, headers=admin[1], json={
        "blackout_dates": ["2030-04-12"], "closed_weekdays": [6], "max_days_ahead": 5})
    assert r.status_code == 200, r.text
    assert r.json()["blackout_dates"] == ["2030-04-12"] and r.json()["closed_weekdays"] == [6]
    at(app, shop_time(WED, 8))
    reasons = {}
    for day in ["2030-04-09", "2030-04-12", "2030-04-14", "2030-04-15", "2030-04-16"]:
        r = await client.get(OPTIONS, params={"zip": "10012", "date": day})
        assert r.status_code == 200 and len(r.json()["dates"]) == 1
        reasons[day] = r.json()["dates"][0]["reason"]
    assert reasons == {"2030-04-09": "date-in-past", "2030-04-12": "date-closed", "2030-04-14": "date-closed",
                       "2030-04-15": None, "2030-04-16": "too-far-ahead"}
    body = (await client.get(OPTIONS, params={"zip": "10012"})).json()
    assert [d["date"] for d in body["dates"]] == [str(WED + dt.timedelta(days=i)) for i in range(6)]


async def test_delivery_config_validation_and_defaults(client, admin, settings):
    _, headers = admin
    cfg = (await client.get(CONFIG, headers=headers)).json()
    assert cfg["same_day_cutoff"] == settings.same_day_cutoff and cfg["timezone"] == "America/New_York"
    assert cfg["slots"]["morning"] == {"start": "09:00", "end": "12:00", "capacity": settings.delivery_slot_capacity,
                                       "active": True}
    bad = [{"slots": {"morning": {"start": "12:00", "end": "09:00", "capacity": 3}}},
           {"slots": {"night": {"start": "20:00", "end": "22:00", "capacity": 3}}},
           {"closed_weekdays": [7]}, {"same_day_cutoff": "25:00"}, {"blackout_dates": ["2030-01-01", "2030-01-01"]},
           {"unknown": 1}]
    for body in bad:
        assert (await client.patch(CONFIG, headers=headers, json=body)).status_code == 422, body
    r = await client.patch(CONFIG, headers=headers, json={
        "slots": {"evening": {"start": "17:00", "end": "19:30", "capacity": 4, "active": False}}})
    assert r.status_code == 200
    assert r.json()["slots"]["evening"]["capacity"] == 4 and r.json()["slots"]["morning"]["start"] == "09:00"


async def test_pickup_options_and_disabled_pickup(client, app, admin):
    at(app, shop_time(WED, 8))
    body = (await client.get(OPTIONS, params={"method": "pickup"})).json()
    assert body["available"] is True and body["fee"] == 0 and body["zone_id"] is None
    await client.patch(CONFIG, headers=admin[1], json={"pickup_enabled": False})
    body = (await client.get(OPTIONS, params={"method": "pickup"})).json()
    assert body["available"] is False and body["reason"] == "pickup-unavailable"


async def test_quote_and_its_reasons(app, settings, zone):
    clock = shop_time(WED, 13, 30)
    service = DeliveryService(settings, lambda: clock)
    quote = await service.quote(method="delivery", zip="10012-1234", date=WED + dt.timedelta(days=1), slot="morning")
    assert quote.fee == 999 and quote.zone_id == zone["id"] and quote.zip == "10012"
    assert quote.window_start == dt.datetime(2030, 4, 11, 13, tzinfo=dt.UTC)
    assert quote.window_start.tzinfo is not None
    pickup = await service.quote(method="pickup", zip=None, date=WED + dt.timedelta(days=1), slot="evening")
    assert pickup.fee == 0 and pickup.zone_id is None and pickup.zip is None
    for kwargs, code in [
        ({"method": "delivery", "zip": "10012", "date": WED, "slot": "evening"}, "past-cutoff"),
        ({"method": "delivery", "zip": "94110", "date": WED, "slot": "evening"}, "zip-not-served"),
        ({"method": "delivery", "zip": None, "date": WED, "slot": "evening"}, "zip-required"),
        ({"method": "delivery", "zip": "10012", "date": WED, "slot": "night"}, "slot-unavailable"),
    ]:
        with pytest.raises(Unprocessable) as exc:
            await service.quote(**kwargs)
        assert exc.value.code == code


async def test_slot_capacity_holds_are_atomic_and_released_once(client, app, admin, settings, zone):
    r = await client.patch(CONFIG, headers=admin[1], json={
        "slots": {"afternoon": {"start": "12:00", "end": "17:00", "capacity": 3}}})
    assert r.status_code == 200
    now = shop_time(WED, 8)
    at(app, now)
    service = DeliveryService(settings, lambda: now)
    quote = await service.quote(method="delivery", zip="10012", date=WED, slot="afternoon")

    async def hold(order_id: str) -> bool:
        try:
            await service.hold_slot(quote, order_id)
            return True
        except Conflict as exc:
            assert exc.code == "slot-full"
            return False

    results = await asyncio.gather(*[hold(f"ord_{i}") for i in range(10)])
    assert sum(results) == 3
    winners = [f"ord_{i}" for i, ok in enumerate(results) if ok]
    usage = await SlotUsage.get(f"{zone['id']}:{WED.isoformat()}:afternoon")
    assert usage.taken == 3 and sorted(usage.holds) == sorted(winners)
    await service.hold_slot(quote, winners[0])  # idempotent per order: no error, nothing more taken
    assert (await SlotUsage.get(usage.id)).taken == 3

    # The full slot is no longer offered, and quoting it is a conflict.
    today = (await client.get(OPTIONS, params={"zip": "10012", "date": WED.isoformat()})).json()["dates"][0]
    assert slot(today, "afternoon") | {"window_start": None, "window_end": None} == {
        "code": "afternoon", "start": "12:00", "end": "17:00", "window_start": None, "window_end": None,
        "capacity": 3, "remaining": 0, "available": False, "reason": "slot-full"}
    assert slot(today, "evening")["available"] is True
    with pytest.raises(Conflict):
        await service.quote(method="delivery", zip="10012", date=WED, slot="afternoon")
    r = await client.get("/api/v1/admin/delivery/usage", headers=admin[1], params={"date": WED.isoformat()})
    assert r.json() == [{"scope": zone["id"], "date": WED.isoformat(), "slot": "afternoon", "taken": 3}]

    # Releasing twice (even concurrently) gives the place back once.
    await asyncio.gather(service.release_slot(winners[0]), service.release_slot(winners[0]))
    await service.release_slot(winners[0])
    usage = await SlotUsage.get(usage.id)
    assert usage.taken == 2 and winners[0] not in usage.holds
    today = (await client.get(OPTIONS, params={"zip": "10012", "date": WED.isoformat()})).json()["dates"][0]
    assert slot(today, "afternoon")["remaining"] == 1 and slot(today, "afternoon")["available"] is True
    await service.release_slot("ord_never_held")
    assert (await SlotUsage.get(usage.id)).taken == 2


async def test_all_slots_full_closes_the_date(app, client, admin, settings, zone):
    slots = {code: {"start": s, "end": e, "capacity": 1} for code, s, e in
             [("morning", "09:00", "12:00"), ("afternoon", "12:00", "17:00"), ("evening", "17:00", "20:00")]}
    await client.patch(CONFIG, headers=admin[1], json={"slots": slots})
    now = shop_time(WED, 8)
    at(app, now)
    service = DeliveryService(settings, lambda: now)
    day = WED + dt.timedelta(days=1)
    for code in slots:
        await service.hold_slot(await service.quote(method="delivery", zip="10012", date=day, slot=code), f"o_{code}")
    option = (await client.get(OPTIONS, params={"zip": "10012", "date": day.isoformat()})).json()["dates"][0]
    assert option["available"] is False and option["reason"] == "slot-full"
    # Another zone has its own capacity.
    other = await client.post(ADMIN_ZONES, headers=admin[1], json={"name": "Brooklyn", "zip_codes": ["11201"],
                                                                   "fee": 1500})
    assert other.status_code == 201
    option = (await client.get(OPTIONS, params={"zip": "11201", "date": day.isoformat()})).json()
    assert option["fee"] == 1500 and option["dates"][0]["available"] is True
