"""The ``campaigns`` job: sends scheduled campaigns in batches through the outbox, resumable after a crash.

Each round claims one campaign with a lease (``app.core.jobs.claim``): one already ``sending``, else one
``scheduled`` whose time has come (it becomes ``sending``). It reads the next MARKETING_BATCH_SIZE confirmed
subscribers after the campaign's ``cursor`` (in ``_id`` order), keeps those in the audience who may be mailed
(``NewsletterService.reachable``), renders one email each and queues them in one unordered insert — each
with the dedupe key ``campaign:<campaign id>:<address>`` (unique) — then records the batch's last ``_id`` as
the cursor and ends the lease. When no subscriber is left, ``finished_at`` records that every recipient's
email is queued; the campaign stays ``sending`` while any of its emails is still pending (waiting for SMTP,
retrying), so it can still be cancelled, and becomes ``sent`` once each one is sent, failed, bounced or
cancelled. Until then the job looks again every ``min(5 s, MARKETING_POLL_SECONDS)`` at most (one indexed
read on the outbox's ``campaign_id`` + ``status`` index), when it wakes or polls.

A process that dies mid-batch leaves the lease to expire and the cursor where it was: the next claim does the
batch again, and the emails already queued are skipped by their keys. No recipient gets two, none is missed.
A cancel during a batch is caught after it: that batch's unsent emails are cancelled too.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from beanie import SortDirection

from app.config import Settings
from app.core.clock import utcnow
from app.core.jobs import JobRunner, claim, release
from app.models.catalog import Product
from app.models.marketing import AudienceKind, Campaign, CampaignStatus, NewsletterSubscription, SubscriptionStatus
from app.models.order import Order, OrderStatus
from app.models.outbox import EmailStatus, OutboxEmail
from app.services.campaigns import CampaignRenderer, cancel_campaign_emails
from app.services.email import EmailService
from app.services.newsletter import NewsletterService

log = logging.getLogger("app.campaigns")

# Orders that count as a purchase for the audiences.
PLACED = [OrderStatus.paid, OrderStatus.confirmed, OrderStatus.preparing, OrderStatus.out_for_delivery,
          OrderStatus.delivered, OrderStatus.ready_for_pickup, OrderStatus.picked_up]
# A fully queued campaign waiting for its emails is looked at again after at most this many seconds.
SETTLE_SECONDS = 5.0


class CampaignSender:
    def __init__(self, settings: Settings, email: EmailService) -> None:
        self.settings = settings
        self.email = email
        self.newsletter = NewsletterService(settings, email)
        self.renderer = CampaignRenderer(settings)

    async def run_due(self) -> int:
        """One batch of one campaign (or finishing one). Returns 0 when no campaign needs work."""
        coll = Campaign.get_pymongo_collection()
        lease = self.settings.worker_lease_seconds
        raw = await claim(coll, {"status": CampaignStatus.sending}, lease_seconds=lease, sort_key="_id")
        if raw is None:
            raw = await claim(coll, {"status": CampaignStatus.scheduled, "schedule.send_at": {"$lte": utcnow()}},
                              lease_seconds=lease, sort_key="schedule.send_at")
            if raw is None:
                return 0
            started = await coll.update_one(
                {"_id": raw["_id"], "status": CampaignStatus.scheduled, "lease.token": raw["lease"]["token"]},
                {"$set": {"status": CampaignStatus.sending}, "$currentDate": {"started_at": True},
                 "$inc": {"version": 1}})
            if started.modified_count != 1:  # cancelled (or rescheduled) between the claim and now
                await release(coll, raw)
                return 1
        campaign = Campaign.model_validate(raw)
        if campaign.finished_at is not None:  # every email is queued: wait for the outbox to deliver them
            await self._settle(coll, raw)
            return 1
        subscribers = await NewsletterSubscription.find(
            {"status": SubscriptionStatus.confirmed.value, "_id": {"$gt": campaign.cursor}},
        ).sort([("_id", SortDirection.ASCENDING)]).limit(self.settings.marketing_batch_size).to_list()
        if not subscribers:
            await self._finish(coll, raw)
            return 1
        queued = await self._enqueue_batch(campaign, subscribers)
        if not await release(coll, raw, changes={"cursor": subscribers[-1].id}):
            log.warning("campaign %s: lease lost during a batch; another worker does it again", campaign.id)
        now = await coll.find_one({"_id": campaign.id}, {"status": 1})
        if now is not None and now.get("status") == CampaignStatus.cancelled:
            await cancel_campaign_emails(campaign.id)
        log.info("campaign %s: %s email(s) queued for %s subscriber(s)", campaign.id, queued, len(subscribers))
        return len(subscribers)

    async def _finish(self, coll: Any, raw: dict[str, Any]) -> None:
        """No subscriber left: record that every email is queued (``finished_at``), then ``_settle``."""
        queued = await coll.update_one(
            {"_id": raw["_id"], "status": CampaignStatus.sending, "lease.token": raw["lease"]["token"]},
            {"$currentDate": {"finished_at": True}})
        if queued.modified_count != 1:  # cancelled meanwhile (or the lease was lost)
            await release(coll, raw)
            return
        await self._settle(coll, raw)

    async def _settle(self, coll: Any, raw: dict[str, Any]) -> None:
        """A fully queued campaign becomes ``sent`` when none of its emails is pending any more; otherwise it
        stays ``sending`` and nobody claims it again before the next look (``min(5 s, MARKETING_POLL_SECONDS)``).
        The emails are only ever queued by the holder of this lease, so none can turn up after the check."""
        waiting = await OutboxEmail.get_pymongo_collection().find_one(
            {"campaign_id": raw["_id"], "status": EmailStatus.pending.value}, {"_id": 1})
        if waiting is not None:
            await release(coll, raw, retry_at=utcnow() + timedelta(
                seconds=min(SETTLE_SECONDS, self.settings.marketing_poll_seconds)))
            return
        done = await coll.update_one(
            {"_id": raw["_id"], "status": CampaignStatus.sending, "lease.token": raw["lease"]["token"]},
            {"$set": {"status": CampaignStatus.sent, "lease": None}, "$inc": {"version": 1}})
        if done.modified_count != 1:  # cancelled meanwhile
            await release(coll, raw)

    async def _enqueue_batch(self, campaign: Campaign, subscribers: list[NewsletterSubscription]) -> int:
        """Render and queue the emails of one batch; returns how many were queued now (a batch done again
        after a crash queues only what it had not)."""
        names = await self.newsletter.reachable([s.email for s in subscribers])
        chosen = await self._audience(campaign, [s for s in subscribers if s.email in names])
        if not chosen:
            return 0
        products = await self.renderer.products(campaign)
        items: list[OutboxEmail] = []
        for sub in chosen:
            url, headers = self.newsletter.unsubscribe_link(sub.id, campaign.id)
            rendered = self.renderer.render(campaign, products, first_name=names[sub.email], unsubscribe_url=url)
            items.append(self.email.item(to=sub.email, rendered=rendered, template="campaign", headers=headers,
                                         marketing=True, campaign_id=campaign.id,
                                         dedupe_key=f"campaign:{campaign.id}:{sub.email}"))
        return await self.email.enqueue_many(items)

    async def _audience(self, campaign: Campaign, subscribers: list[NewsletterSubscription],
                        ) -> list[NewsletterSubscription]:
        audience = campaign.audience
        if audience.kind == AudienceKind.subscribers or not subscribers:
            return subscribers
        # Their placed orders, by address (index contact.email + created_at); whole sub-documents are read
        # because the embedded server cannot project fields inside arrays.
        orders = await Order.get_pymongo_collection().find(
            {"contact.email": {"$in": [s.email for s in subscribers]}, "status": {"$in": PLACED}},
            {"contact": 1, "lines": 1, "created_at": 1}).to_list(None)
        if audience.kind == AudienceKind.occasion:
            products = {d["_id"] for d in await Product.get_pymongo_collection().find(
                {"occasions": {"$in": [audience.occasion]}}, {"_id": 1}).to_list(None)}
            buyers = {o["contact"]["email"] for o in orders
                      if any(line.get("product_id") in products for line in o.get("lines", []))}
            return [s for s in subscribers if s.email in buyers]
        cutoff = utcnow() - timedelta(days=audience.days or 0)
        latest: dict[str, Any] = {}
        for o in orders:
            address, at = o["contact"]["email"], o["created_at"]
            latest[address] = max(latest.get(address, at), at)
        return [s for s in subscribers if s.email in latest and latest[s.email] < cutoff]


def register_campaign_job(jobs: JobRunner, settings: Settings, email: EmailService) -> None:
    """Register the campaign sender with the runtime's job runner (woken when a campaign is scheduled)."""
    async def run() -> int:
        return await CampaignSender(settings, email).run_due()

    jobs.register("campaigns", run, poll_seconds=settings.marketing_poll_seconds)
