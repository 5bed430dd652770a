"""The email outbox (storage): every email is a document first, sent by a leased background worker."""

from __future__ import annotations

from enum import StrEnum

from beanie import Document
from pydantic import Field
from pymongo import ASCENDING, IndexModel

from app.models.base import Lease, UtcDateTime, id_field, now_field


class EmailStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"  # gave up after EMAIL_MAX_ATTEMPTS
    bounced = "bounced"  # the recipient's server refused the address permanently (SMTP 5xx): suppressed
    cancelled = "cancelled"  # marketing not sent: its campaign was cancelled, or the address unsubscribed,
    #                          bounced or its account was closed while it waited


class OutboxEmail(Document):
    id: str = id_field("eml")  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    # Unique: the same logical email (e.g. "order ord_x confirmed") is queued at most once.
    dedupe_key: str
    to: str
    subject: str
    text: str
    html: str | None = None
    template: str
    # Extra message headers (marketing: List-Unsubscribe and List-Unsubscribe-Post, RFC 8058).
    headers: dict[str, str] = Field(default_factory=dict)
    # Marketing email (campaigns, abandoned-cart reminders) is cancelled when its address unsubscribes or
    # bounces before it is sent; transactional email is not.
    marketing: bool = False
    campaign_id: str | None = None
    # Emails of one ordering key (e.g. ``order:<id>``: confirmation, progress, refunds) reach the customer in
    # the order they were queued: one waits while an earlier one of its key, due no later, is still pending
    # (retrying, or being sent by another worker). None: no order among emails.
    ordering_key: str | None = None
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
            # Campaign statistics (count per status) and cancelling a campaign's unsent emails.
            IndexModel([("campaign_id", ASCENDING), ("status", ASCENDING)], name="campaign_status",
                       partialFilterExpression={"campaign_id": {"$type": "string"}}),
            # Cancelling the unsent marketing email of an address that unsubscribed or bounced.
            IndexModel([("to", ASCENDING), ("status", ASCENDING)], name="to_status"),
            # The earlier pending email of an ordering key, looked up when a later one is claimed.
            # (No `_id` in it: the embedded server refuses every insert into a collection with such an index.)
            IndexModel([("ordering_key", ASCENDING), ("status", ASCENDING)], name="ordering_key_status",
                       partialFilterExpression={"ordering_key": {"$type": "string"}}),
        ]
