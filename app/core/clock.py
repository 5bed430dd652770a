"""Time: timezone-aware UTC everywhere; the shop's own zone only for business days."""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo


def utcnow() -> datetime:
    # MongoDB keeps milliseconds; truncate so a value reads back equal to what was written.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def ensure_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def shop_today(tz: tzinfo) -> date:
    return datetime.now(tz).date()
