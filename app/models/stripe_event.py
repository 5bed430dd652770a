"""Stripe webhook events as received: each stored once under its event id, then marked processed."""

from __future__ import annotations

from typing import Any

from beanie import Document
from pydantic import Field

from app.models.base import UtcDateTime, now_field


class Event(Document):
    """Something that must be processed exactly once, keyed by its external id (e.g. a Stripe event)."""

    id: str  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    kind: str
    payload: dict[str, Any] = Field(default_factory=dict)
    processed_at: UtcDateTime | None = None
    outcome: str | None = None  # "processed", or "ignored: <why>" (e.g. about a payment we do not know)
    created_at: UtcDateTime = now_field()

    class Settings:
        name = "events"
