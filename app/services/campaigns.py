"""Campaigns (admins): drafts, preview and test send, schedule, cancel, statistics; and how an email of a
campaign is rendered. Sending is the ``campaigns`` job (app/services/campaign_jobs.py).

States: ``draft`` → ``scheduled`` (``schedule``; scheduling again moves the time) → ``sending`` (the job
starts; it stays so while recipients' emails are being queued or any queued one is still pending) → ``sent``
(every email of it was sent, failed, bounced or cancelled); ``draft``/``scheduled``/``sending`` →
``cancelled``: every email of the campaign not sent yet is cancelled (one that an outbox worker is handing to
the SMTP server at that moment may still go, and is then counted as sent). Only drafts are edited. Every state
change and edit bumps ``version`` (``update_versioned``), so an edit never lands on a campaign that moved on
meanwhile; the job's own progress fields (``cursor``, ``finished_at``, ``lease``) are written beside it without
touching the content.

Statistics are counted from the campaign's outbox emails (one per recipient, by status) in one aggregation
for a whole page, plus the ``unsubscribed`` counter kept by the unsubscribe link.
"""

from __future__ import annotations

import builtins  # builtins.list: in the service class the method ``list`` shadows the type
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from app.config import Settings
from app.core.clock import utcnow
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.ids import new_id
from app.core.money import money
from app.core.pagination import PageParams, paginate
from app.core.versioned import NOW, update_versioned
from app.models.catalog import Product, ProductStatus
from app.models.marketing import Audience, Campaign, CampaignBlock, CampaignSchedule, CampaignStatus
from app.models.outbox import EmailStatus, OutboxEmail
from app.models.user import User
from app.schemas.campaigns import CampaignIn, CampaignPatch, CampaignStats
from app.services import audit
from app.services.email import EmailService
from app.services.email_templates import RenderedEmail, render_email
from app.services.newsletter import PREVIEW, NewsletterService

JOB = "campaigns"
PAST_TOLERANCE = timedelta(minutes=5)
EDITABLE = (CampaignStatus.draft,)
CANCELLABLE = (CampaignStatus.draft, CampaignStatus.scheduled, CampaignStatus.sending)
PLACEHOLDER = "{first_name}"


class CampaignRenderer:
    """Renders one campaign for one recipient: personalised text, product cards from the current catalog."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def products(self, campaign: Campaign) -> dict[str, dict[str, Any]]:
        """The cards of every active product the campaign's blocks name (one query)."""
        ids = sorted({pid for b in campaign.blocks for pid in b.product_ids})
        if not ids:
            return {}
        docs = await Product.find({"_id": {"$in": ids}, "status": ProductStatus.active.value}).to_list()
        base = self.settings.storefront_url.rstrip("/")
        tracking = urlencode({"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": campaign.id})
        return {p.id: {"name": p.name, "url": f"{base}/products/{quote(p.slug)}?{tracking}",
                       "image_url": p.images[0].url if p.images else None,
                       "image_alt": (p.images[0].alt or p.name) if p.images else p.name,
                       "price": money(p.price_min, self.settings.currency)} for p in docs}

    def render(self, campaign: Campaign, products: dict[str, dict[str, Any]], *, first_name: str | None,
               unsubscribe_url: str, subject_prefix: str = "") -> RenderedEmail:
        """One recipient's email: ``{first_name}`` replaced (``"there"`` when None), the product cards of
        ``products`` (from ``products()``; blocks naming none of them show nothing), the footer's unsubscribe
        link ``unsubscribe_url``."""
        name = first_name or "there"

        def personal(text: str) -> str:
            return text.replace(PLACEHOLDER, name)

        blocks = [self._block(b, products, personal) for b in campaign.blocks]
        return render_email("campaign", {"blocks": blocks, "unsubscribe_url": unsubscribe_url,
                                         "preheader": personal(campaign.preheader) if campaign.preheader else None},
                            subject=subject_prefix + personal(campaign.subject))

    def _block(self, block: CampaignBlock, products: dict[str, dict[str, Any]], personal: Any) -> dict[str, Any]:
        if block.type == "products":
            return {"type": "products", "title": block.title,
                    "products": [products[pid] for pid in block.product_ids if pid in products]}
        text = personal(block.text or "")
        out: dict[str, Any] = {"type": block.type.value, "text": text}
        if block.type == "paragraph":
            out["paragraphs"] = [p for p in text.split("\n\n") if p.strip()]
        if block.type == "button":
            url = block.url or "/"
            out["url"] = self.settings.storefront_url.rstrip("/") + url if url.startswith("/") else url
        return out


class CampaignService:
    def __init__(self, settings: Settings, email: EmailService, jobs: Any = None) -> None:
        self.settings = settings
        self.email = email
        self.jobs = jobs  # app.core.jobs.JobRunner (to wake the job at once); None: it polls
        self.renderer = CampaignRenderer(settings)
        self.newsletter = NewsletterService(settings, email)

    # --- drafts -------------------------------------------------------------------------------------
    async def create(self, body: CampaignIn, actor: User) -> Campaign:
        """A new draft. Unprocessable ``unknown-product`` when a block names a product that does not exist."""
        fields = body.model_dump()
        await _check_products(fields["blocks"])
        campaign = Campaign(name=fields["name"], subject=fields["subject"], preheader=fields["preheader"],
                            blocks=[CampaignBlock.model_validate(b) for b in fields["blocks"]],
                            audience=Audience.model_validate(fields["audience"]), created_by=actor.id)
        await campaign.insert()
        return campaign

    async def get(self, campaign_id: str) -> Campaign:
        campaign = await Campaign.get(campaign_id)
        if campaign is None:
            raise NotFound("No such campaign.", code="campaign-not-found")
        return campaign

    async def list(self, params: PageParams, status: CampaignStatus | None) -> tuple[list[Campaign], str | None]:
        query = {"status": status.value} if status is not None else {}
        docs, cursor, _ = await paginate(Campaign, query, [("_id", -1)], params)
        return docs, cursor

    async def update(self, campaign_id: str, patch: CampaignPatch) -> Campaign:
        """Change a draft. Conflict ``campaign-not-draft`` once it is scheduled or later."""
        changes = patch.model_dump(exclude_unset=True)
        if "blocks" in changes:
            await _check_products(changes["blocks"])

        def mutate(doc: Campaign) -> dict[str, Any]:
            _require(doc, EDITABLE, CampaignNotDraft, "Only a draft can be edited; cancel it and start again.")
            return {**changes, "updated_at": NOW} if changes else {}

        return await self._write(campaign_id, mutate)

    # --- schedule and cancel ----------------------------------------------------------------------------
    async def schedule(self, campaign_id: str, send_at: datetime | None) -> Campaign:
        """Schedule a draft (or move a scheduled campaign's time). ``send_at`` None: now. Unprocessable
        ``send-at-in-past`` more than 5 minutes ago; Conflict ``campaign-not-draft`` once it is sending."""
        now = utcnow()
        when = send_at or now
        if when < now - PAST_TOLERANCE:
            raise Unprocessable("send_at is in the past.", code="send-at-in-past")

        def mutate(doc: Campaign) -> dict[str, Any]:
            _require(doc, (CampaignStatus.draft, CampaignStatus.scheduled), CampaignNotDraft,
                     "This campaign is already sending, sent or cancelled.")
            return {"status": CampaignStatus.scheduled, "schedule": CampaignSchedule(send_at=when).model_dump(),
                    "updated_at": NOW}

        campaign = await self._write(campaign_id, mutate)
        if self.jobs is not None:
            self.jobs.wake(JOB)
        return campaign

    async def cancel(self, campaign_id: str) -> Campaign:
        """Stop a campaign that has not finished (draft, scheduled, or sending: being queued or with emails not
        sent yet); its unsent emails are cancelled (one being handed to SMTP at this moment may still go).
        Conflict ``campaign-not-cancellable`` once it is sent (nothing left to send) or cancelled."""
        def mutate(doc: Campaign) -> dict[str, Any]:
            _require(doc, CANCELLABLE, CampaignNotCancellable, "This campaign is already sent or cancelled.")
            return {"status": CampaignStatus.cancelled, "cancelled_at": NOW, "updated_at": NOW}

        campaign = await self._write(campaign_id, mutate)
        await cancel_campaign_emails(campaign.id)
        return campaign

    # --- preview and test send ------------------------------------------------------------------------------
    async def preview(self, campaign: Campaign, viewer: User) -> tuple[RenderedEmail, dict[str, str]]:
        """The email as ``viewer`` would get it (their first name), with the headers every copy carries. Its
        unsubscribe link names no subscription, so following it changes nothing."""
        url, headers = self.newsletter.unsubscribe_link(PREVIEW, campaign.id)
        rendered = self.renderer.render(campaign, await self.renderer.products(campaign),
                                        first_name=viewer.first_name, unsubscribe_url=url)
        return rendered, headers

    async def test_send(self, campaign: Campaign, to: str) -> None:
        """Queue one copy to ``to`` (subject prefixed ``[Test]``; the first name of the account with that
        address, if any). Not counted in the statistics. The request's audit entry (``campaign.test_send``)
        records the address as the change ``test_send.to`` (null → ``to``)."""
        account = await User.find_one({"email": to})
        url, headers = self.newsletter.unsubscribe_link(PREVIEW, campaign.id)
        rendered = self.renderer.render(campaign, await self.renderer.products(campaign),
                                        first_name=account.first_name if account else None, unsubscribe_url=url,
                                        subject_prefix="[Test] ")
        await self.email.enqueue_rendered(to=to, rendered=rendered, template="campaign", headers=headers,
                                          dedupe_key=f"campaign-test:{campaign.id}:{new_id('tst')}")
        audit.note_change("campaign", campaign.id, {"test_send.to": None}, {"test_send.to": to})

    # --- statistics -------------------------------------------------------------------------------------
    @staticmethod
    async def stats(campaigns: builtins.list[Campaign]) -> dict[str, CampaignStats]:
        """Per campaign: its outbox emails counted by status (one aggregation), and its unsubscribe count."""
        counts: dict[str, dict[str, int]] = {}
        if campaigns:
            def count(*statuses: EmailStatus) -> dict[str, Any]:
                return {"$sum": {"$cond": [{"$in": ["$status", [s.value for s in statuses]]}, 1, 0]}}

            pipeline: builtins.list[dict[str, Any]] = [{"$match": {"campaign_id": {"$in": [c.id for c in campaigns]}}},
                        {"$group": {"_id": "$campaign_id", "recipients": {"$sum": 1},
                                    "queued": count(EmailStatus.pending), "sent": count(EmailStatus.sent),
                                    "failed": count(EmailStatus.failed, EmailStatus.bounced),
                                    "cancelled": count(EmailStatus.cancelled)}}]
            cursor = await OutboxEmail.get_pymongo_collection().aggregate(pipeline)
            counts = {row["_id"]: row async for row in cursor}
        empty = {"recipients": 0, "queued": 0, "sent": 0, "failed": 0, "cancelled": 0}
        return {c.id: CampaignStats(**{k: int(counts.get(c.id, empty).get(k, 0)) for k in empty},
                                    unsubscribed=c.unsubscribed) for c in campaigns}

    async def _write(self, campaign_id: str, mutate: Any) -> Campaign:
        try:
            campaign: Campaign = await update_versioned(Campaign, campaign_id, mutate)
            return campaign
        except NotFound:
            raise NotFound("No such campaign.", code="campaign-not-found") from None


class CampaignNotDraft(Conflict):
    """409: the campaign is past the stage the change needs (scheduled or later)."""

    code = "campaign-not-draft"


class CampaignNotCancellable(Conflict):
    """409: the campaign was already sent or cancelled."""

    code = "campaign-not-cancellable"


def _require(doc: Campaign, allowed: tuple[CampaignStatus, ...], error: type[Conflict], detail: str) -> None:
    """Raise ``error`` (with the campaign's ``current_status``) unless the campaign's status is ``allowed``."""
    if doc.status not in allowed:
        raise error(detail, current_status=doc.status.value)


async def _check_products(blocks: list[dict[str, Any]]) -> None:
    ids = sorted({pid for b in blocks for pid in b.get("product_ids") or []})
    if not ids:
        return
    found = {d["_id"] for d in await Product.get_pymongo_collection().find({"_id": {"$in": ids}}, {"_id": 1})
             .to_list(None)}
    missing = [pid for pid in ids if pid not in found]
    if missing:
        raise Unprocessable(f"No product {', '.join(missing)}.", code="unknown-product")


async def cancel_campaign_emails(campaign_id: str) -> int:
    """Cancel the campaign's emails not sent yet (one ``update_many`` on the campaign's index), including one
    leased by a worker right now: if its SMTP hand-over succeeds it is ``sent``, otherwise it stays cancelled
    (``EmailService`` never puts a cancelled email back to pending)."""
    res = await OutboxEmail.get_pymongo_collection().update_many(
        {"campaign_id": campaign_id, "status": EmailStatus.pending}, {"$set": {"status": EmailStatus.cancelled}})
    return res.modified_count
