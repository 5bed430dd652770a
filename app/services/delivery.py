"""Delivery: zones, the delivery config, options per date and slot, quotes, and slot capacity holds.

Every shop-day rule (dates, same-day cutoff, slot windows) is evaluated in the shop's zone
(``settings.tz``); the windows handed out are aware UTC datetimes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Literal

from beanie import SortDirection
from pydantic import BaseModel

from app.config import Settings
from app.core.atomic import ensure_document
from app.core.clock import utcnow
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.openapi import register_problem_codes
from app.core.pagination import PageParams, paginate
from app.core.versioned import update_versioned
from app.models.delivery import (
    CONFIG_ID,
    PICKUP_SCOPE,
    DeliveryConfig,
    DeliveryZone,
    SlotCode,
    SlotConfig,
    SlotUsage,
    slot_key,
)
from app.models.delivery_options import DayAvailability, DeliveryOptions, SlotAvailability
from app.schemas.delivery import DeliveryConfigPatch, ZoneIn, ZonePatch

Clock = Callable[[], dt.datetime]

REASONS = {
    "zip-required": "A ZIP code is needed for delivery.",
    "zip-not-served": "We do not deliver to this ZIP code yet; store pickup is available.",
    "pickup-unavailable": "Store pickup is not offered at the moment.",
    "date-in-past": "This date has already passed.",
    "too-far-ahead": "Orders can be scheduled at most {max_days} days ahead.",
    "date-closed": "The shop does not deliver on this date.",
    "same-day-unavailable": "Same-day delivery is not offered in this zone.",
    "past-cutoff": "Same-day orders close at {cutoff} shop time.",
    "slot-unavailable": "This time slot is not offered.",
    "slot-passed": "This time slot has already started.",
    "slot-full": "This time slot is fully booked.",
    "no-slot-available": "No time slot is left on this date.",
}
register_problem_codes(*REASONS)  # answered as problem codes by checkout (``quote``), chosen at run time


class DeliveryQuote(BaseModel):
    method: Literal["delivery", "pickup"]
    zone_id: str | None
    zip: str | None
    date: dt.date
    slot: str
    fee: int
    window_start: dt.datetime  # aware UTC
    window_end: dt.datetime  # aware UTC
    zone_name: str | None = None
    capacity: int | None = None  # the slot's capacity when quoted (hold_slot takes a place against it)


def _hhmm(value: str) -> dt.time:
    hours, minutes = value.split(":")
    return dt.time(int(hours), int(minutes))


class DeliveryService:
    def __init__(self, settings: Settings, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.clock = clock
        self.tz = settings.tz

    # --- config ---------------------------------------------------------------------------------
    def _default_config(self) -> DeliveryConfig:
        s = self.settings
        times = {SlotCode.morning: ("09:00", "12:00"), SlotCode.afternoon: ("12:00", "17:00"),
                 SlotCode.evening: ("17:00", "20:00")}
        return DeliveryConfig(
            slots={c.value: SlotConfig(start=a, end=b, capacity=s.delivery_slot_capacity)
                   for c, (a, b) in times.items()},
            pickup_slots={c.value: SlotConfig(start=a, end=b, capacity=s.pickup_slot_capacity)
                          for c, (a, b) in times.items()},
            same_day_cutoff=s.same_day_cutoff, max_days_ahead=s.delivery_max_days_ahead,
        )

    async def config(self) -> DeliveryConfig:
        raw = await DeliveryConfig.get_pymongo_collection().find_one({"_id": CONFIG_ID})
        if raw is None:
            defaults = self._default_config().model_dump(by_alias=True, exclude={"id"})
            await ensure_document(DeliveryConfig.get_pymongo_collection(), CONFIG_ID, defaults)
            raw = await DeliveryConfig.get_pymongo_collection().find_one({"_id": CONFIG_ID})
        config: DeliveryConfig = DeliveryConfig.model_validate(raw)
        return config

    async def update_config(self, patch: DeliveryConfigPatch) -> DeliveryConfig:
        await self.config()  # make sure the document exists
        fields = patch.model_dump(exclude_unset=True, exclude_none=True)

        def mutate(doc: DeliveryConfig) -> dict[str, Any]:
            changes: dict[str, Any] = {}
            for name in ("slots", "pickup_slots"):
                if name in fields:
                    merged = {k: v.model_dump() for k, v in getattr(doc, name).items()}
                    merged.update({str(k): v for k, v in fields[name].items()})
                    changes[name] = merged
            if "blackout_dates" in fields:
                changes["blackout_dates"] = [d.isoformat() for d in fields["blackout_dates"]]
            for name in ("pickup_enabled", "closed_weekdays", "same_day_cutoff", "max_days_ahead"):
                if name in fields:
                    changes[name] = fields[name]
            if changes:
                changes["updated_at"] = self.clock()
            return changes

        config: DeliveryConfig = await update_versioned(DeliveryConfig, CONFIG_ID, mutate, replace=True)
        return config

    # --- zones ----------------------------------------------------------------------------------
    async def list_zones(self, params: PageParams, *, active: bool | None = None
                         ) -> tuple[list[DeliveryZone], str | None, int | None]:
        query = {} if active is None else {"active": active}
        return await paginate(DeliveryZone, query, [("_id", 1)], params, total=True)

    async def get_zone(self, zone_id: str) -> DeliveryZone:
        zone = await DeliveryZone.get(zone_id)
        if zone is None:
            raise NotFound("No such delivery zone.")
        return zone

    async def create_zone(self, data: ZoneIn) -> DeliveryZone:
        await self._ensure_zips_free(data.zip_codes, data.zip_prefixes, except_id=None)
        zone = DeliveryZone(**data.model_dump())
        await zone.insert()
        return zone

    async def update_zone(self, zone_id: str, patch: ZonePatch) -> DeliveryZone:
        zone = await self.get_zone(zone_id)
        changes = patch.model_dump(exclude_unset=True, exclude_none=True)
        codes = changes.get("zip_codes", zone.zip_codes)
        prefixes = changes.get("zip_prefixes", zone.zip_prefixes)
        if not codes and not prefixes:
            raise Unprocessable("A zone needs at least one ZIP code or ZIP prefix.", code="zone-without-zip")
        await self._ensure_zips_free(codes, prefixes, except_id=zone_id)
        if not changes:
            return zone
        changes["updated_at"] = self.clock()
        updated: DeliveryZone = await update_versioned(DeliveryZone, zone_id, lambda _: changes, replace=True)
        return updated

    async def delete_zone(self, zone_id: str) -> None:
        await self.get_zone(zone_id)
        await DeliveryZone.find_one(DeliveryZone.id == zone_id).delete()

    async def _ensure_zips_free(self, codes: list[str], prefixes: list[str], *, except_id: str | None) -> None:
        ors: list[dict[str, Any]] = []
        if codes:
            ors.append({"zip_codes": {"$in": codes}})
        if prefixes:
            ors.append({"zip_prefixes": {"$in": prefixes}})
        query: dict[str, Any] = {"$or": ors}
        if except_id:
            query = {"$and": [query, {"_id": {"$ne": except_id}}]}
        other = await DeliveryZone.get_pymongo_collection().find_one(query)
        if other is not None:
            taken = sorted((set(codes) & set(other.get("zip_codes", [])))
                           | (set(prefixes) & set(other.get("zip_prefixes", []))))
            raise Conflict(f"ZIP codes or prefixes already belong to zone {other['name']}: {', '.join(taken)}.",
                           code="zip-taken", zone_id=other["_id"], zips=taken)

    async def zone_for_zip(self, zip_code: str) -> DeliveryZone | None:
        """The active zone serving ``zip_code``: an exact ZIP wins over a prefix, a longer prefix over a shorter."""
        zip5 = zip_code[:5]
        prefixes = [zip5[:n] for n in range(1, 5)]
        docs = await DeliveryZone.find({"active": True, "$or": [{"zip_codes": {"$in": [zip5]}},
                                                                {"zip_prefixes": {"$in": prefixes}}]}).to_list()

        def rank(zone: DeliveryZone) -> tuple[int, str]:
            if zip5 in zone.zip_codes:
                return (10, zone.id)
            return (max(len(p) for p in zone.zip_prefixes if zip5.startswith(p)), zone.id)

        matches = [z for z in docs if zip5 in z.zip_codes or any(zip5.startswith(p) for p in z.zip_prefixes)]
        return max(matches, key=rank) if matches else None

    # --- options and quotes -------------------------------------------------------------------------
    def _now_local(self) -> dt.datetime:
        return self.clock().astimezone(self.tz)

    def _window(self, day: dt.date, slot: SlotConfig) -> tuple[dt.datetime, dt.datetime]:
        start = dt.datetime.combine(day, _hhmm(slot.start), tzinfo=self.tz).astimezone(dt.UTC)
        end = dt.datetime.combine(day, _hhmm(slot.end), tzinfo=self.tz).astimezone(dt.UTC)
        return start, end

    def _day_reason(self, cfg: DeliveryConfig, zone: DeliveryZone | None, day: dt.date,
                    now_local: dt.datetime) -> str | None:
        today = now_local.date()
        if day < today:
            return "date-in-past"
        if day > today + dt.timedelta(days=cfg.max_days_ahead):
            return "too-far-ahead"
        if day.isoformat() in cfg.blackout_dates or day.weekday() in cfg.closed_weekdays:
            return "date-closed"
        if day == today:
            if zone is not None and not zone.same_day_allowed:
                return "same-day-unavailable"
            if now_local.time() >= _hhmm(cfg.same_day_cutoff):
                return "past-cutoff"
        return None

    def _detail(self, reason: str | None, cfg: DeliveryConfig) -> str | None:
        if reason is None:
            return None
        return REASONS[reason].format(max_days=cfg.max_days_ahead, cutoff=cfg.same_day_cutoff)

    async def _resolve(self, method: str, zip_code: str | None) -> tuple[DeliveryConfig, DeliveryZone | None]:
        cfg = await self.config()
        if method == "pickup":
            if not cfg.pickup_enabled:
                raise Unprocessable(REASONS["pickup-unavailable"], code="pickup-unavailable")
            return cfg, None
        if not zip_code:
            raise Unprocessable(REASONS["zip-required"], code="zip-required")
        zone = await self.zone_for_zip(zip_code)
        if zone is None:
            raise Unprocessable(REASONS["zip-not-served"], code="zip-not-served", zip=zip_code[:5])
        return cfg, zone

    async def options(self, *, method: Literal["delivery", "pickup"], zip: str | None,
                      date: dt.date | None) -> DeliveryOptions:
        """Every date (``date`` alone, or the next ``DELIVERY_OPTIONS_DAYS``) with each slot's remaining
        capacity and why it cannot be chosen. A ZIP no zone serves (or pickup switched off) is an answer with
        a ``reason`` and no dates; Unprocessable(code="zip-required") for delivery without a ZIP."""
        out = DeliveryOptions(method=method, zip=zip[:5] if zip else None, currency=self.settings.currency,
                              timezone=self.settings.shop_timezone)
        try:
            cfg, zone = await self._resolve(method, zip)
        except Unprocessable as exc:
            if exc.code == "zip-required":
                raise
            out.reason, out.detail = exc.code, exc.detail
            return out
        now = self.clock()
        now_local = now.astimezone(self.tz)
        if date is not None:
            days = [date]
        else:
            count = min(self.settings.delivery_options_days, cfg.max_days_ahead + 1)
            days = [now_local.date() + dt.timedelta(days=i) for i in range(count)]
        slots_cfg = cfg.pickup_slots if method == "pickup" else cfg.slots
        scope = zone.id if zone else PICKUP_SCOPE
        keys = [slot_key(scope, d.isoformat(), code) for d in days for code in slots_cfg]
        taken = {raw["_id"]: raw.get("taken", 0)
                 async for raw in SlotUsage.get_pymongo_collection().find({"_id": {"$in": keys}})}
        for day in days:
            day_reason = self._day_reason(cfg, zone, day, now_local)
            slots: list[SlotAvailability] = []
            for code in SlotCode:
                slot = slots_cfg.get(code.value)
                if slot is None:
                    continue
                start, end = self._window(day, slot)
                remaining = max(0, slot.capacity - taken.get(slot_key(scope, day.isoformat(), code.value), 0))
                slots.append(SlotAvailability(code=code, start=slot.start, end=slot.end, window_start=start,
                                              window_end=end, capacity=slot.capacity, remaining=remaining,
                                              reason=day_reason or self._slot_reason(slot, start, now, remaining)))
            if day_reason is None and not any(s.available for s in slots):
                reasons = {s.reason for s in slots}
                day_reason = "slot-full" if reasons == {"slot-full"} else "no-slot-available"
            out.dates.append(DayAvailability(date=day, reason=day_reason, detail=self._detail(day_reason, cfg),
                                             slots=slots))
        out.zone_id, out.zone_name = (zone.id, zone.name) if zone else (None, None)
        out.fee = zone.fee if zone else 0
        return out

    @staticmethod
    def _slot_reason(slot: SlotConfig, start: dt.datetime, now: dt.datetime, remaining: int) -> str | None:
        if not slot.active:
            return "slot-unavailable"
        if now >= start:
            return "slot-passed"
        if remaining <= 0:
            return "slot-full"
        return None

    async def quote(self, *, method: str, zip: str | None, date: dt.date, slot: str,
                    check_capacity: bool = True) -> DeliveryQuote:
        """Price and check one choice. Unprocessable(code=reason) when it cannot be had; a full slot is
        Conflict(code="slot-full") (capacity is only really taken by ``hold_slot``). ``check_capacity=False``
        skips reading the slot's usage, for a caller that takes the place with ``hold_slot`` next (which
        refuses a full slot the same way)."""
        if method not in ("delivery", "pickup"):
            raise Unprocessable("Choose delivery or pickup.", code="method-invalid")
        cfg, zone = await self._resolve(method, zip)
        slot_cfg = (cfg.pickup_slots if method == "pickup" else cfg.slots).get(slot)
        if slot_cfg is None:
            raise Unprocessable(REASONS["slot-unavailable"], code="slot-unavailable")
        now = self.clock()
        reason = self._day_reason(cfg, zone, date, now.astimezone(self.tz))
        start, end = self._window(date, slot_cfg)
        if reason is None and not check_capacity:
            reason = self._slot_reason(slot_cfg, start, now, slot_cfg.capacity)  # everything but fullness
        elif reason is None:
            usage = await SlotUsage.get_pymongo_collection().find_one(
                {"_id": slot_key(zone.id if zone else PICKUP_SCOPE, date.isoformat(), slot)})
            reason = self._slot_reason(slot_cfg, start, now, slot_cfg.capacity - (usage or {}).get("taken", 0))
        if reason == "slot-full":
            raise Conflict(REASONS[reason], code=reason)
        if reason is not None:
            raise Unprocessable(self._detail(reason, cfg), code=reason)
        kind: Literal["delivery", "pickup"] = "pickup" if method == "pickup" else "delivery"  # checked above
        return DeliveryQuote(method=kind, zone_id=zone.id if zone else None, zip=zip[:5] if zone and zip else None,
                             date=date, slot=slot, fee=zone.fee if zone else 0, window_start=start, window_end=end,
                             zone_name=zone.name if zone else None, capacity=slot_cfg.capacity)

    # --- capacity -------------------------------------------------------------------------------
    async def hold_slot(self, quote: DeliveryQuote, order_id: str) -> None:
        """Take one place in the quoted slot for ``order_id``: atomic, idempotent per order id.
        Conflict(code="slot-full") when no place is left. The capacity is the quote's (a quote made just
        before); a quote without one reads the configuration. Usually one round trip: the slot's usage
        document is created only when the take finds none."""
        capacity = quote.capacity
        if capacity is None:
            cfg = await self.config()
            slot_cfg = (cfg.pickup_slots if quote.method == "pickup" else cfg.slots).get(quote.slot)
            if slot_cfg is None or not slot_cfg.active:
                raise Unprocessable(REASONS["slot-unavailable"], code="slot-unavailable")
            capacity = slot_cfg.capacity
        scope = quote.zone_id if quote.method == "delivery" and quote.zone_id else PICKUP_SCOPE
        day = quote.date.isoformat()
        key = slot_key(scope, day, quote.slot)
        coll = SlotUsage.get_pymongo_collection()
        for _ in range(5):
            # `$nin: [id]`, not `$ne: id`: the embedded server mis-evaluates `$ne` on arrays in update filters,
            # and `{"holds": id}` finds nothing on its indexed array (tests/test_db_contract_delivery.py).
            res = await coll.update_one(
                {"_id": key, "taken": {"$lt": capacity}, "holds": {"$nin": [order_id]}},
                {"$inc": {"taken": 1}, "$addToSet": {"holds": order_id}},
            )
            if res.modified_count == 1:
                return
            found = await coll.find_one({"_id": key}, {"holds": 1, "taken": 1})
            if found is None:
                await ensure_document(coll, key, {"scope": scope, "date": day, "slot": quote.slot, "taken": 0,
                                                  "holds": []})
                continue
            if order_id in (found.get("holds") or []):
                return  # this order already holds the slot
            if found.get("taken", 0) >= capacity:
                break
            # the document was created (or a place given back) between the take and the read: take again
        raise Conflict(REASONS["slot-full"], code="slot-full")

    async def release_slot(self, order_id: str) -> None:
        """Give back every place ``order_id`` holds; each exactly once, also when called concurrently."""
        coll = SlotUsage.get_pymongo_collection()
        # `$in: [id]` rather than `{"holds": id}`: see tests/test_db_contract_delivery.py (indexed arrays).
        while await coll.find_one_and_update({"holds": {"$in": [order_id]}},
                                             {"$pull": {"holds": order_id}, "$inc": {"taken": -1}}) is not None:
            pass

    async def usage(self, day: dt.date) -> list[SlotUsage]:
        return await SlotUsage.find({"date": day.isoformat()}).sort([("_id", SortDirection.ASCENDING)]).to_list()
