"""Delivery storage: zones (ZIP codes/prefixes -> fee), the one delivery config, and slot capacity usage.

Slot capacity lives in one small document per (zone-or-pickup, local date, slot): a ``taken`` counter and
a scalar ``holds`` array of order ids, changed only by conditional atomic updates (never read-modify-write).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from beanie import Document
from pydantic import BaseModel, Field
from pymongo import ASCENDING, IndexModel

from app.models.base import id_field, now_field

CONFIG_ID = "delivery"
PICKUP_SCOPE = "pickup"


class SlotCode(StrEnum):
    morning = "morning"
    afternoon = "afternoon"
    evening = "evening"


class SlotConfig(BaseModel):
    start: str  # local "HH:MM" in the shop's zone
    end: str
    capacity: int  # deliveries (or pickups) per zone per day in this slot
    active: bool = True


class DeliveryZone(Document):
    id: str = id_field("dzn")  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    name: str
    zip_codes: list[str] = Field(default_factory=list)  # exact 5-digit ZIPs
    zip_prefixes: list[str] = Field(default_factory=list)  # 1-4 leading digits, e.g. "100"
    fee: int  # cents
    same_day_allowed: bool = True
    active: bool = True
    version: int = 0
    created_at: datetime = now_field()
    updated_at: datetime = now_field()

    class Settings:
        name = "delivery_zones"
        indexes = [
            IndexModel([("active", ASCENDING), ("zip_codes", ASCENDING)], name="active_zip"),
            IndexModel([("name", ASCENDING)], name="name"),
        ]


class DeliveryConfig(Document):
    """The single delivery configuration (``_id`` = "delivery"), created from settings on first read."""

    id: str = CONFIG_ID  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    slots: dict[str, SlotConfig]  # keyed by SlotCode
    pickup_enabled: bool = True
    pickup_slots: dict[str, SlotConfig]
    blackout_dates: list[str] = Field(default_factory=list)  # local ISO dates "YYYY-MM-DD"
    closed_weekdays: list[int] = Field(default_factory=list)  # 0 = Monday ... 6 = Sunday
    same_day_cutoff: str  # local "HH:MM"
    max_days_ahead: int
    version: int = 0
    updated_at: datetime = now_field()

    class Settings:
        name = "delivery_config"


class SlotUsage(Document):
    """Capacity taken in one slot: ``_id`` = "<zone id | pickup>:<YYYY-MM-DD>:<slot>"."""

    id: str  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    scope: str
    date: str
    slot: str
    taken: int = 0
    holds: list[str] = Field(default_factory=list)  # order ids holding a place (scalars: $addToSet/$pull)

    class Settings:
        name = "delivery_slot_usage"
        indexes = [
            IndexModel([("holds", ASCENDING)], name="holds"),
            IndexModel([("date", ASCENDING)], name="date"),
        ]


def slot_key(scope: str, day: str, slot: str) -> str:
    return f"{scope}:{day}:{slot}"
