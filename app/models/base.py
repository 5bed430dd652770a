"""Shared pieces of storage documents: prefixed string ids, timestamps, aware-UTC datetimes, leases."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from app.core.clock import utcnow
from app.core.ids import new_id
from app.core.types import UtcDateTime

# Every stored instant reads back timezone-aware UTC (``UtcDateTime``). The embedded server stores a datetime
# written by a scalar ``$set`` as a naive string; without this it would come back naive (and ``.timestamp()``
# would then use the machine's local zone).
__all__ = ["Lease", "UtcDateTime", "id_field", "now_field"]


class Lease(BaseModel):
    """Who holds a work item and until when (see app/core/jobs.py). ``owner`` is None while a failed
    item waits for its retry time. A sub-document, because the embedded server stores a datetime
    written by ``$set`` as a string unless it sits inside a sub-document."""

    owner: str | None = None
    token: str | None = None
    until: UtcDateTime


def id_field(prefix: str) -> Any:
    return Field(default_factory=lambda: new_id(prefix))


def now_field() -> Any:
    return Field(default_factory=utcnow)
