"""The ``cart-reminders`` job: one reminder per cart version to customers who left items in their cart.

A customer's cart unchanged for ABANDONED_CART_AFTER_MINUTES gets one email with its lines and a link back
to the storefront's cart — if the customer is a confirmed newsletter subscriber who may be mailed (the
marketing consent; app/services/newsletter.py), the account is active, and they placed no order since the
cart last changed. Guest carts are never reminded (no consent, no address).

The job scans customer carts by ``(updated_at, _id)`` from where it stopped (``JobCursor`` "cart-reminders",
leased like any work item, so one process scans at a time) up to now − ABANDONED_CART_AFTER_MINUTES, and at
most ABANDONED_CART_LOOKBACK_HOURS further back. Every change of a cart moves its ``updated_at`` (and
``version``) forward, so a changed cart is met again in a later window: a new version, a new reminder. The
email's dedupe key ``cart-reminder:<cart id>:<version>`` makes a batch done again after a crash send nothing
twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from beanie import SortDirection

from app.config import Settings
from app.core.clock import utcnow
from app.core.jobs import JobRunner, claim, release
from app.core.pagination import keyset_filter
from app.models.cart import Cart
from app.models.marketing import CursorMark, JobCursor
from app.models.order import Order
from app.models.user import User
from app.services.email import EmailService
from app.services.email_templates import render_email
from app.services.newsletter import NewsletterService

log = logging.getLogger("app.cart_reminders")

JOB = "cart-reminders"
ORDER = [("updated_at", SortDirection.ASCENDING), ("_id", SortDirection.ASCENDING)]


class CartReminders:
    def __init__(self, settings: Settings, email: EmailService) -> None:
        self.settings = settings
        self.email = email
        self.newsletter = NewsletterService(settings, email)

    async def run(self) -> int:
        """Scan one batch of carts past the delay; returns how many carts were read (0: nothing to do)."""
        coll = JobCursor.get_pymongo_collection()
        await coll.update_one({"_id": JOB}, {"$setOnInsert": {"mark": None, "lease": None}}, upsert=True)
        raw = await claim(coll, {"_id": JOB}, lease_seconds=self.settings.worker_lease_seconds, sort_key="_id")
        if raw is None:
            return 0  # another process is scanning
        end = utcnow() - timedelta(minutes=self.settings.abandoned_cart_after_minutes)
        floor = end - timedelta(hours=self.settings.abandoned_cart_lookback_hours)
        mark = CursorMark.model_validate(raw["mark"]) if raw.get("mark") else None
        after = [mark.at, mark.id] if mark is not None and mark.at > floor else [floor, ""]
        query = {"$and": [{"user_id": {"$type": "string"}, "updated_at": {"$lte": end}}, keyset_filter(ORDER, after)]}
        carts = await Cart.find(query).sort(ORDER).limit(self.settings.marketing_batch_size).to_list()
        for cart in carts:
            try:
                await self._remind(cart)
            except Exception:  # one cart must not stop the scan; the others still get theirs
                log.exception("cart reminder of %s failed; skipped", cart.id)
        if len(carts) == self.settings.marketing_batch_size:  # more may follow: go on after the last one read
            next_mark = {"at": carts[-1].updated_at, "id": carts[-1].id}
        else:  # everything up to `end` was read
            next_mark = {"at": end, "id": ""}
        await release(coll, raw, changes={"mark": next_mark})
        return len(carts)

    async def _remind(self, cart: Cart) -> bool:
        """Queue the reminder of this cart version if everything allows it; True when one was queued."""
        if not cart.lines or cart.user_id is None:
            return False
        user = await User.get(cart.user_id)
        if user is None or not user.is_active:
            return False
        sub = await self.newsletter.mailable(user.email)
        if sub is None:
            return False
        if await Order.find_one({"contact.user_id": user.id, "created_at": {"$gte": cart.updated_at}}) is not None:
            return False  # they ordered since the cart last changed
        url, headers = self.newsletter.unsubscribe_link(sub.id, "cart-reminder")
        lines = [{"quantity": x.quantity, "name": x.product_name, "size_name": x.size_name} for x in cart.lines]
        rendered = render_email("cart_reminder", {
            "first_name": user.first_name, "lines": lines, "unsubscribe_url": url,
            "cart_url": f"{self.settings.storefront_url.rstrip('/')}/cart"})
        return await self.email.enqueue_rendered(to=sub.email, rendered=rendered, template="cart_reminder",
                                                 headers=headers, marketing=True,
                                                 dedupe_key=f"cart-reminder:{cart.id}:{cart.version}")


def register_cart_reminder_job(jobs: JobRunner, settings: Settings, email: EmailService) -> None:
    """Register the abandoned-cart scan with the runtime's job runner (it polls MARKETING_POLL_SECONDS)."""
    async def run() -> int:
        return await CartReminders(settings, email).run()

    jobs.register(JOB, run, poll_seconds=settings.marketing_poll_seconds)

