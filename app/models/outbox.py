"""The email outbox (storage): every email is a document first, sent by a leased background worker."""

from __future__ import annotations

from enum import StrEnum

from beanie import Document
from pymongo import ASCENDING, IndexModel

from app.models.base import Lease, UtcDateTime, id_field, now_field


class EmailStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"  # gave up after EMAIL_MAX_ATTEMPTS


class OutboxEmail(Document):
    id: str = id_field("eml")
    # Unique: the same logical email (e.g. "order ord_x confirmed") is queued at most once.
    dedupe_key: str
    to: str
    subject: str
    text: str
    html: str | None = None
    template: str
    status: EmailStatus = EmailStatus.pending
    attempts: int = 0
    # Not sent before this instant (as enqueued). A failed attempt holds the lease for nobody until the
    # retry time instead: ``lease.until`` (see app/core/jobs.py).
    next_attempt_at: UtcDateTime = now_field()
    lease: Lease | None = None
    last_error: str | None = None
    sent_at: UtcDateTime | None = None
    created_at: UtcDateTime = now_field()

    class Settings:
        name = "email_outbox"
        indexes = [
            IndexModel([("dedupe_key", ASCENDING)], unique=True, name="dedupe_unique"),
            IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)], name="status_due"),
        ]
