"""Stream tickets: short-lived, single-use permissions to open one live-event stream (storage).

Browsers' ``EventSource`` cannot send an Authorization header, and tokens do not belong in URLs: a signed-in
client (or a guest with the order token) asks for a ticket, then opens the stream with ``?ticket=``. The
ticket is stored only as its SHA-256 hash, as the document id; taking it is one atomic ``find_one_and_delete``
on ``{_id, scope, order_id}``, so of two processes (or two requests) only one ever gets it.
"""

from __future__ import annotations

from typing import Literal

from beanie import Document
from pymongo import ASCENDING, IndexModel

from app.models.base import UtcDateTime, now_field


class StreamTicket(Document):
    id: str  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId; sha256 of the ticket
    scope: Literal["order", "staff"]
    order_id: str = ""  # the order of an ``order`` ticket; "" for the staff board (no null-equality filters)
    user_id: str | None = None  # None: a guest holding the order's access token
    family_id: str | None = None  # the refresh-session family of the access token that asked for it
    expires_at: UtcDateTime
    created_at: UtcDateTime = now_field()

    class Settings:
        name = "stream_tickets"
        indexes = [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=3600, name="expires_ttl")]
