"""Computed delivery availability (never stored): what ``DeliveryService.options`` answers for one method
and ZIP code. The API view is built from it by ``app.schemas.delivery.delivery_options_out``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from app.models.delivery import SlotCode


@dataclass(frozen=True, slots=True)
class SlotAvailability:
    """One time slot of one date: local ``start``/``end`` (``HH:MM``), its window as aware UTC datetimes,
    places left, and ``reason`` (a problem code such as ``slot-full``) when it cannot be chosen."""

    code: SlotCode
    start: str
    end: str
    window_start: dt.datetime
    window_end: dt.datetime
    capacity: int
    remaining: int
    reason: str | None = None

    @property
    def available(self) -> bool:
        return self.reason is None


@dataclass(frozen=True, slots=True)
class DayAvailability:
    """One shop-local date with its slots; ``reason``/``detail`` say why the whole day cannot be chosen."""

    date: dt.date
    slots: list[SlotAvailability]
    reason: str | None = None
    detail: str | None = None

    @property
    def available(self) -> bool:
        return self.reason is None


@dataclass(slots=True)
class DeliveryOptions:
    """Dates and slots for ``method`` (``delivery`` or ``pickup``) and ``zip``: the zone that serves it,
    its ``fee`` (integer minor units of ``currency``; ``None`` when no zone serves the ZIP), the shop's IANA
    ``timezone``, and ``reason``/``detail`` when nothing can be offered at all (then ``dates`` is empty)."""

    method: Literal["delivery", "pickup"]
    zip: str | None
    currency: str
    timezone: str
    zone_id: str | None = None
    zone_name: str | None = None
    fee: int | None = None
    reason: str | None = None
    detail: str | None = None
    dates: list[DayAvailability] = field(default_factory=list)

    @property
    def available(self) -> bool:
        return any(d.available for d in self.dates)
