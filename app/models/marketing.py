"""Marketing email (storage): newsletter consent, the suppression list, campaigns, back-in-stock requests and
the abandoned-cart scanner's position.

- ``NewsletterSubscription`` is the one record of marketing consent per address, for guests and customers
  alike: an account's ``preferences.newsletter`` is read from and written to it (never stored on the user).
- ``EmailSuppression``: addresses no marketing email goes to again (a permanent SMTP refusal), whatever the
  consent says.
- ``Campaign``: content, audience, state and progress. Its emails are outbox items carrying ``campaign_id``
  with the dedupe key ``campaign:<campaign id>:<address>`` (unique), so a batch done twice queues nothing
  twice; the statistics are counted from them.
- ``StockAlert``: one "tell me when it is back" request, spent by the one email it causes.
- ``JobCursor``: where a scanning job (the abandoned-cart pass) got to, leased like any work item.

Datetimes that are filtered on are written by insert, inside a whole sub-document (``schedule``, ``lease``,
``mark``) or with ``$currentDate``: the embedded server stores a datetime given to a scalar ``$set`` as a
string (see docs/system-design.md, database notes).
"""

from __future__ import annotations

from enum import StrEnum

from beanie import Document
from pydantic import BaseModel, Field
from pymongo import ASCENDING, IndexModel

from app.models.base import Lease, UtcDateTime, id_field, now_field
from app.models.catalog import Occasion


class SubscriptionStatus(StrEnum):
    pending = "pending"  # asked, confirmation link sent, not confirmed yet
    confirmed = "confirmed"  # double opt-in done (or set by the signed-in owner of a verified address)
    unsubscribed = "unsubscribed"


class NewsletterSubscription(Document):
    id: str = id_field("nls")  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    email: str  # lower-case
    status: SubscriptionStatus = SubscriptionStatus.pending
    # How consent was last given: "form" (double opt-in), "account" (the verified owner signed in), "seed",
    # "migration" (an account preference before subscriptions existed).
    source: str = "form"
    confirmed_at: UtcDateTime | None = None
    unsubscribed_at: UtcDateTime | None = None
    # What the unsubscribe came through: a campaign id, "cart-reminder", "account", "link" or "account-closed".
    unsubscribed_via: str | None = None
    created_at: UtcDateTime = now_field()

    class Settings:
        name = "newsletter_subscriptions"
        indexes = [
            IndexModel([("email", ASCENDING)], unique=True, name="email_unique"),
            # Campaign audiences page through confirmed subscribers in `_id` order.
            IndexModel([("status", ASCENDING)], name="status"),
        ]


class EmailSuppression(Document):
    id: str = id_field("sup")  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    email: str
    reason: str  # "hard-bounce"
    detail: str | None = None  # e.g. the SMTP reply
    created_at: UtcDateTime = now_field()

    class Settings:
        name = "email_suppressions"
        indexes = [IndexModel([("email", ASCENDING)], unique=True, name="email_unique")]


class CampaignStatus(StrEnum):
    draft = "draft"
    scheduled = "scheduled"
    sending = "sending"  # recipients' emails are being queued, or some queued one is not sent yet
    sent = "sent"  # every email of it was sent, failed, bounced or cancelled: nothing left to send
    cancelled = "cancelled"


class AudienceKind(StrEnum):
    subscribers = "subscribers"  # every confirmed subscriber
    occasion = "occasion"  # confirmed subscribers who bought a bouquet for this occasion
    lapsed = "lapsed"  # confirmed subscribers who ordered before, but not in the last `days` days


class Audience(BaseModel):
    kind: AudienceKind = AudienceKind.subscribers
    occasion: Occasion | None = None
    days: int | None = None


class BlockKind(StrEnum):
    heading = "heading"
    paragraph = "paragraph"
    products = "products"
    button = "button"


class CampaignBlock(BaseModel):
    """One block of a campaign body; which fields are set depends on ``type`` (see app/schemas/campaigns.py)."""

    type: BlockKind
    text: str | None = None  # heading, paragraph; a button's label
    url: str | None = None  # button
    title: str | None = None  # products: optional heading above the cards
    product_ids: list[str] = Field(default_factory=list)  # products


class CampaignSchedule(BaseModel):
    send_at: UtcDateTime  # a sub-document, so it stays a date when written with $set (see module docstring)


class Campaign(Document):
    id: str = id_field("cmp")  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    name: str  # internal
    subject: str
    preheader: str | None = None
    blocks: list[CampaignBlock] = Field(default_factory=list)
    audience: Audience = Field(default_factory=Audience)
    status: CampaignStatus = CampaignStatus.draft
    schedule: CampaignSchedule | None = None
    # The `_id` of the last subscriber whose batch was fully queued ("" before the first batch).
    cursor: str = ""
    unsubscribed: int = 0  # recipients who unsubscribed through this campaign's link ($inc, once each)
    lease: Lease | None = None
    version: int = 0
    created_by: str
    created_at: UtcDateTime = now_field()
    updated_at: UtcDateTime = now_field()
    started_at: UtcDateTime | None = None
    finished_at: UtcDateTime | None = None
    cancelled_at: UtcDateTime | None = None

    class Settings:
        name = "campaigns"
        indexes = [
            IndexModel([("status", ASCENDING), ("schedule.send_at", ASCENDING)], name="status_send_at"),
        ]


class StockAlertStatus(StrEnum):
    waiting = "waiting"  # the size is sold out; nothing to send yet
    due = "due"  # the size came back: the job sends the email
    sent = "sent"  # spent
    cancelled = "cancelled"  # stopped from the link of a back-in-stock email to its address


class StockAlert(Document):
    id: str = id_field("sta")  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    product_id: str
    size: str
    email: str
    user_id: str | None = None
    status: StockAlertStatus = StockAlertStatus.waiting
    # Unique. "<product>:<size>:<email>" while the request waits (a second identical request is the same one);
    # "spent:<id>" once its email is queued or it is cancelled, so the same shopper may ask again later.
    dedupe_key: str
    lease: Lease | None = None
    created_at: UtcDateTime = now_field()

    class Settings:
        name = "stock_alerts"
        indexes = [
            IndexModel([("dedupe_key", ASCENDING)], unique=True, name="dedupe_unique"),
            IndexModel([("product_id", ASCENDING), ("size", ASCENDING), ("status", ASCENDING)],
                       name="product_size_status"),
            IndexModel([("status", ASCENDING)], name="status"),
            # Stopping every waiting request of an address (the link in a back-in-stock email).
            IndexModel([("email", ASCENDING), ("status", ASCENDING)], name="email_status"),
        ]


class StockAlertOptOut(Document):
    """An address that asked, from the link in a back-in-stock email, to get no more of them: requests for it
    are taken (the same 202) and dropped, unless they come from the account owning the address with the address
    verified, which lifts it."""

    id: str = id_field("sao")  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    email: str  # lower-case
    created_at: UtcDateTime = now_field()

    class Settings:
        name = "stock_alert_opt_outs"
        indexes = [IndexModel([("email", ASCENDING)], unique=True, name="email_unique")]


class CursorMark(BaseModel):
    at: UtcDateTime
    id: str = ""


class JobCursor(Document):
    """A scanning job's position (``_id`` is the job's name)."""

    id: str  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    mark: CursorMark | None = None
    lease: Lease | None = None

    class Settings:
        name = "job_cursors"
