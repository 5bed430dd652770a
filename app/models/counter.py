"""Atomic counters (e.g. order numbers)."""

from __future__ import annotations

from beanie import Document


class Counter(Document):
    """A named atomic sequence (e.g. order numbers): ``$inc`` with upsert."""

    id: str  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    value: int = 0

    class Settings:
        name = "counters"
