"""Delivery API schemas: admin zones and config, public delivery options."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator

from app.core.pagination import PageParams
from app.core.text import free_text
from app.core.types import Int, RequestDate, UtcDateTime
from app.models.delivery import SlotCode
from app.schemas.common import StrictModel

LocalTime = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
ZipCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{5}$")]
ZipPrefix = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{1,4}$")]
Fee = Annotated[Int, Field(ge=0, le=100_000, description="Cents.")]
Method = Literal["delivery", "pickup"]


def _unique_sorted(values: list) -> list:
    if len(set(values)) != len(values):
        raise ValueError("must not contain duplicates")
    return sorted(values)


class SlotConfigIn(StrictModel):
    start: LocalTime = Field(description="Local start time in the shop's zone, HH:MM.")
    end: LocalTime
    capacity: Int = Field(ge=0, le=10_000, description="Deliveries per zone per day (pickups per day).")
    active: bool = True

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
    pickup_enabled: bool | None = None
    pickup_slots: dict[SlotCode, SlotConfigIn] | None = None
    blackout_dates: Annotated[list[RequestDate], Field(max_length=366), AfterValidator(_unique_sorted)] | None = None
    closed_weekdays: Annotated[list[Annotated[Int, Field(ge=0, le=6)]], Field(max_length=7),
                               AfterValidator(_unique_sorted)] | None = Field(
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


ZipCodes = Annotated[list[ZipCode], Field(max_length=500), AfterValidator(_unique_sorted)]
ZipPrefixes = Annotated[list[ZipPrefix], Field(max_length=50), AfterValidator(_unique_sorted)]
ZoneName = free_text(80, min_length=1)


class ZoneIn(StrictModel):
    name: ZoneName
    zip_codes: ZipCodes = Field(default_factory=list)
    zip_prefixes: ZipPrefixes = Field(default_factory=list)
    fee: Fee
    same_day_allowed: bool = True
    active: bool = True

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
    same_day_allowed: bool | None = None
    active: bool | None = None


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


def zone_out(zone) -> ZoneOut:
    """The admin view of a ``DeliveryZone`` document."""
    return ZoneOut.model_validate(zone.model_dump())


def config_out(cfg, tz: str) -> DeliveryConfigOut:
    """The admin view of the ``DeliveryConfig`` document, with the shop's IANA time zone ``tz``."""
    return DeliveryConfigOut.model_validate({**cfg.model_dump(exclude={"id", "version"}), "timezone": tz})
