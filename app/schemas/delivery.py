"""Delivery API schemas: admin zones and config, public delivery options."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from app.core.pagination import PageParams
from app.core.text import FreeText
from app.core.types import Bool, Int, RequestDate, UtcDateTime
from app.models.delivery import DeliveryConfig, DeliveryZone, SlotCode, SlotUsage
from app.models.delivery_options import DeliveryOptions
from app.schemas.common import StrictModel, unique_items

LocalTime = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
ZipCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{5}$")]
ZipPrefix = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{1,4}$")]
Fee = Annotated[Int, Field(ge=0, le=100_000, description="Cents.")]
Method = Literal["delivery", "pickup"]


class SlotConfigIn(StrictModel):
    start: LocalTime = Field(description="Local start time in the shop's zone, HH:MM.")
    end: LocalTime
    capacity: Int = Field(ge=0, le=10_000, description="Deliveries per zone per day (pickups per day).")
    active: Bool = True

    @model_validator(mode="after")
    def _ordered(self) -> SlotConfigIn:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class SlotConfigOut(BaseModel):
    start: str
    end: str
    capacity: int
    active: bool


class DeliveryConfigPatch(StrictModel):
    slots: dict[SlotCode, SlotConfigIn] | None = Field(None, description="Replaces the listed slots.")
    pickup_enabled: Bool | None = None
    pickup_slots: dict[SlotCode, SlotConfigIn] | None = None
    blackout_dates: Annotated[list[RequestDate], Field(max_length=366),
                              unique_items("blackout dates", sort=True)] | None = None
    closed_weekdays: Annotated[list[Annotated[Int, Field(ge=0, le=6)]], Field(max_length=7),
                               unique_items("weekdays", sort=True)] | None = Field(
        None, description="0 = Monday ... 6 = Sunday.")
    same_day_cutoff: LocalTime | None = Field(None, description="Local time after which same-day is closed.")
    max_days_ahead: Int | None = Field(None, ge=0, le=365)


class DeliveryConfigOut(BaseModel):
    slots: dict[str, SlotConfigOut]
    pickup_enabled: bool
    pickup_slots: dict[str, SlotConfigOut]
    blackout_dates: list[dt.date]
    closed_weekdays: list[int]
    same_day_cutoff: str
    max_days_ahead: int
    timezone: str
    updated_at: UtcDateTime


ZipCodes = Annotated[list[ZipCode], Field(max_length=500), unique_items("ZIP codes", sort=True)]
ZipPrefixes = Annotated[list[ZipPrefix], Field(max_length=50), unique_items("ZIP prefixes", sort=True)]
ZoneName = Annotated[str, FreeText(80, min_length=1)]


class ZoneIn(StrictModel):
    name: ZoneName
    zip_codes: ZipCodes = Field(default_factory=list)
    zip_prefixes: ZipPrefixes = Field(default_factory=list)
    fee: Fee
    same_day_allowed: Bool = True
    active: Bool = True

    @model_validator(mode="after")
    def _some_zip(self) -> ZoneIn:
        if not self.zip_codes and not self.zip_prefixes:
            raise ValueError("a zone needs at least one ZIP code or ZIP prefix")
        return self


class ZonePatch(StrictModel):
    name: ZoneName | None = None
    zip_codes: ZipCodes | None = None
    zip_prefixes: ZipPrefixes | None = None
    fee: Fee | None = None
    same_day_allowed: Bool | None = None
    active: Bool | None = None


class ZoneOut(BaseModel):
    id: str
    name: str
    zip_codes: list[str]
    zip_prefixes: list[str]
    fee: int
    same_day_allowed: bool
    active: bool
    created_at: UtcDateTime
    updated_at: UtcDateTime


class SlotOption(BaseModel):
    code: SlotCode
    start: str = Field(description="Local HH:MM.")
    end: str
    window_start: UtcDateTime
    window_end: UtcDateTime
    capacity: int
    remaining: int
    available: bool
    reason: str | None = Field(None, description="Why the slot cannot be chosen (slot-full, slot-passed, ...).")


class DateOption(BaseModel):
    date: dt.date
    available: bool
    reason: str | None = Field(None, description="Why the date cannot be chosen (date-closed, past-cutoff, ...).")
    detail: str | None = None
    slots: list[SlotOption]


class DeliveryOptionsOut(BaseModel):
    method: Method
    zip: str | None
    zone_id: str | None
    zone_name: str | None
    fee: int | None
    currency: str
    timezone: str
    available: bool
    reason: str | None = Field(None, description="Why nothing can be offered (zip-not-served, pickup-unavailable).")
    detail: str | None = None
    dates: list[DateOption]


class SlotUsageOut(BaseModel):
    scope: str
    date: dt.date
    slot: str
    taken: int


class ZoneListParams(PageParams):
    active: bool | None = None


def delivery_options_out(options: DeliveryOptions) -> DeliveryOptionsOut:
    """The public view of computed ``DeliveryOptions`` (amounts in cents, windows in UTC)."""
    return DeliveryOptionsOut(
        method=options.method, zip=options.zip, zone_id=options.zone_id,
        zone_name=options.zone_name, fee=options.fee, currency=options.currency, timezone=options.timezone,
        available=options.available, reason=options.reason, detail=options.detail,
        dates=[DateOption(date=d.date, available=d.available, reason=d.reason, detail=d.detail,
                          slots=[SlotOption(code=s.code, start=s.start, end=s.end, window_start=s.window_start,
                                            window_end=s.window_end, capacity=s.capacity, remaining=s.remaining,
                                            available=s.available, reason=s.reason) for s in d.slots])
               for d in options.dates])


def usage_out(usage: SlotUsage) -> SlotUsageOut:
    """The admin view of one ``SlotUsage`` document (places taken in one slot of one date)."""
    return SlotUsageOut(scope=usage.scope, date=dt.date.fromisoformat(usage.date), slot=usage.slot, taken=usage.taken)


def zone_out(zone: DeliveryZone) -> ZoneOut:
    """The admin view of a ``DeliveryZone`` document."""
    return ZoneOut.model_validate(zone.model_dump())


def config_out(cfg: DeliveryConfig, tz: str) -> DeliveryConfigOut:
    """The admin view of the ``DeliveryConfig`` document, with the shop's IANA time zone ``tz``."""
    return DeliveryConfigOut.model_validate({**cfg.model_dump(exclude={"id", "version"}), "timezone": tz})
