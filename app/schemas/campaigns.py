"""Campaign API schemas (admins): content blocks, audiences, schedule, preview, statistics."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.core.pagination import PageParams
from app.core.text import FreeText
from app.core.types import Int, UtcDateTime, UtcInstant
from app.models.catalog import Occasion
from app.models.marketing import Campaign, CampaignStatus
from app.schemas.auth import Email
from app.schemas.common import LinkUrl, StrictModel, unique_items

ProductRef = Annotated[str, StringConstraints(pattern=r"^prd_[0-9A-HJKMNP-TV-Z]{26}$")]
PERSONALISE = "`{first_name}` is replaced by the recipient's first name (\"there\" when unknown)."


class HeadingBlock(StrictModel):
    type: Literal["heading"]
    text: Annotated[str, FreeText(150, min_length=1)] = Field(description=PERSONALISE)


class ParagraphBlock(StrictModel):
    type: Literal["paragraph"]
    text: Annotated[str, FreeText(5000, min_length=1, multiline=True)] = Field(
        description="Plain text (no markup: it is escaped); a blank line starts a new paragraph. " + PERSONALISE)


class ProductsBlock(StrictModel):
    type: Literal["products"]
    title: Annotated[str, FreeText(150)] | None = None
    product_ids: Annotated[list[ProductRef], Field(min_length=1, max_length=6), unique_items("product ids")] = Field(
        description="Shown as cards (image, name, price from, link) from the catalog at sending time; products "
                    "not active then are left out.")


class ButtonBlock(StrictModel):
    type: Literal["button"]
    text: Annotated[str, FreeText(60, min_length=1)] = Field(description="The label. " + PERSONALISE)
    url: LinkUrl = Field(description="`https://host/…`, or a storefront path such as `/collections/spring`. No "
                                     "whitespace, control or invisible format character (Unicode Cc, Cf).")


Block = Annotated[HeadingBlock | ParagraphBlock | ProductsBlock | ButtonBlock, Field(discriminator="type")]
Blocks = Annotated[list[Block], Field(min_length=1, max_length=40)]


class SubscribersAudience(StrictModel):
    kind: Literal["subscribers"]


class OccasionAudience(StrictModel):
    kind: Literal["occasion"]
    occasion: Occasion = Field(description="Subscribers who placed an order with a bouquet for this occasion.")


class LapsedAudience(StrictModel):
    kind: Literal["lapsed"]
    days: Int = Field(ge=1, le=3650, description="Subscribers who ordered before, but not in the last `days` days.")


Audience = Annotated[SubscribersAudience | OccasionAudience | LapsedAudience, Field(discriminator="kind")]
AUDIENCE_NOTE = ("Every audience is limited to confirmed newsletter subscribers whose address is not suppressed "
                 "(hard bounce) and whose account, if any, is active.")

Name = Annotated[str, FreeText(120, min_length=1)]
Subject = Annotated[str, FreeText(150, min_length=1)]
Preheader = Annotated[str, FreeText(150)]


class CampaignIn(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "Spring 2027", "subject": "{first_name}, spring is in bloom", "preheader": "New peonies and tulips",
        "blocks": [{"type": "heading", "text": "Spring is here"},
                   {"type": "paragraph", "text": "Hello {first_name},\n\nOur spring collection has arrived."},
                   {"type": "products", "product_ids": ["prd_01JD7Z8K4M2N6P8Q0R2S4T6V8W"]},
                   {"type": "button", "text": "Shop spring", "url": "/collections/spring"}],
        "audience": {"kind": "subscribers"}}]})

    name: Name = Field(description="For staff only.")
    subject: Subject = Field(description=PERSONALISE)
    preheader: Preheader | None = Field(None, description="Preview text shown by mail clients after the subject.")
    blocks: Blocks
    audience: Audience = Field(default_factory=lambda: SubscribersAudience(kind="subscribers"),
                               description=AUDIENCE_NOTE)


def _not_null(value: object) -> object:
    if value is None:
        raise ValueError("may be omitted, but not null")
    return value


class CampaignPatch(StrictModel):
    """Changes to a draft (omitted fields stay; `preheader: null` removes it)."""

    name: Name | None = None
    subject: Subject | None = None
    preheader: Preheader | None = None
    blocks: Blocks | None = None
    audience: Audience | None = None

    _required = field_validator("name", "subject", "blocks", "audience")(_not_null)


class ScheduleIn(StrictModel):
    send_at: UtcInstant | None = Field(None, description="When to start sending (with an offset; stored in UTC). "
                                                         "Omitted: now. At most 5 minutes in the past.")


class TestSendIn(StrictModel):
    email: Email = Field(description="Where to send one copy (subject prefixed `[Test]`).")


class CampaignStats(BaseModel):
    recipients: int = Field(description="Emails queued for this campaign (one per recipient).")
    queued: int = Field(description="Not sent yet.")
    sent: int = Field(description="Accepted by the SMTP server.")
    failed: int = Field(description="Refused permanently (hard bounce) or given up after retries.")
    cancelled: int = Field(description="Not sent: the campaign was cancelled, or the address unsubscribed, "
                                       "bounced or closed its account first.")
    unsubscribed: int = Field(description="Recipients who unsubscribed through this campaign's link.")


class CampaignOut(BaseModel):
    id: str
    name: str
    subject: str
    preheader: str | None
    blocks: list[Block]
    audience: Audience
    status: CampaignStatus = Field(description=(
        "`draft` → `scheduled` → `sending` (recipients' emails are being queued, or some queued email is not "
        "sent yet: waiting for the mail server or retrying) → `sent` (each email was sent, failed, bounced or "
        "cancelled); `draft`, `scheduled` and `sending` may become `cancelled`."))
    send_at: UtcDateTime | None = Field(description="When sending starts (scheduled) or started.")
    stats: CampaignStats
    created_by: str
    created_at: UtcDateTime
    updated_at: UtcDateTime
    started_at: UtcDateTime | None
    finished_at: UtcDateTime | None = Field(description="When the last recipient's email was queued (the campaign "
                                                        "stays `sending` until none of them is pending).")
    cancelled_at: UtcDateTime | None


class CampaignListParams(PageParams):
    status: CampaignStatus | None = None


class PreviewOut(BaseModel):
    to: str = Field(description="The sample recipient (you).")
    subject: str
    text: str
    html: str
    headers: dict[str, str] = Field(description="Extra headers every recipient's copy carries (List-Unsubscribe, "
                                                "List-Unsubscribe-Post).")



def campaign_out(c: Campaign, stats: CampaignStats) -> CampaignOut:
    """The admin view of a ``Campaign`` document with its ``stats`` (app.services.campaigns.CampaignService.stats)."""
    return CampaignOut.model_validate({
        **c.model_dump(exclude={"schedule", "cursor", "lease", "version", "unsubscribed"}),
        "blocks": [b.model_dump(mode="json", exclude_none=True,
                                exclude={"product_ids"} if b.type != "products" else set()) for b in c.blocks],
        "audience": c.audience.model_dump(mode="json", exclude_none=True),
        "send_at": c.schedule.send_at if c.schedule else None, "stats": stats})
