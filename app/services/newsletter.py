"""Newsletter consent: double opt-in, one-click unsubscribe, the account preference, and who may be mailed.

One fact per address: ``NewsletterSubscription`` (app/models/marketing.py). ``/newsletter/*`` and an account's
``preferences.newsletter`` (``/users/me``) read and write the same record, found by the lower-case address.

- ``subscribe``: for anyone; the caller learns nothing (same answer whether the address is new, waiting,
  subscribed or suppressed). A new or unsubscribed address gets a confirmation email with a signed link
  that expires after NEWSLETTER_CONFIRM_HOURS (an unsubscribed one is ``pending`` again until it is used);
  a confirmed or suppressed one gets nothing.
- ``confirm``: the link's token makes the subscription ``confirmed``.
- ``unsubscribe``: the signed token of every marketing email (never expires; it can only unsubscribe)
  makes it ``unsubscribed`` at once and cancels the address's unsent marketing email; the campaign that
  carried the link counts it once. The link of a campaign's preview and test copies names no subscription
  (``PREVIEW``): it changes nothing and says so (``PreviewLink``).
- Marketing email goes only to a confirmed subscription whose address is not suppressed (hard bounce) and
  whose account, if it has one, is active (``reachable``).
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import quote

from pymongo.errors import DuplicateKeyError

from app.config import Settings
from app.core.clock import utcnow
from app.core.errors import Unprocessable
from app.core.ids import new_id
from app.core.security import LINK_TOKEN_PATTERN, read_link, sign_link
from app.models.marketing import Campaign, EmailSuppression, NewsletterSubscription, SubscriptionStatus
from app.models.user import User
from app.services.auth import InvalidToken
from app.services.email import EmailService, cancel_marketing_to, one_click_unsubscribe
from app.services.email_templates import render_email

log = logging.getLogger("app.newsletter")

CONFIRM = "nl-confirm"
UNSUBSCRIBE = "nl-unsub"
API_UNSUBSCRIBE_PATH = "/api/v1/newsletter/unsubscribe"
INVALID_LINK = "This link is invalid or has expired."
# What the unsubscribe link of a campaign's preview or test copy names instead of a subscription.
PREVIEW = "preview"

LinkState = Literal["valid", "invalid", "preview"]


class PreviewLink(Unprocessable):
    """422: the unsubscribe link of a preview or test copy, which names no subscriber: nothing was changed."""

    code = "preview-link"


class NewsletterService:
    def __init__(self, settings: Settings, email: EmailService) -> None:
        self.settings = settings
        self.email = email

    # --- subscribe and confirm ----------------------------------------------------------------------
    async def subscribe(self, address: str) -> None:
        """Start (or restart) the double opt-in of ``address`` (lower-case). Never reveals the address's state:
        it returns the same way whatever it is, and only a new, waiting or unsubscribed address is emailed."""
        if await EmailSuppression.find_one({"email": address}) is not None:
            log.info("newsletter sign-up of a suppressed address ignored")
            return
        sub = await self._get_or_create(address, SubscriptionStatus.pending, source="form")
        if sub.status == SubscriptionStatus.unsubscribed:
            # Waiting for its confirmation again (not mailed meanwhile). ``unsubscribed_at`` stays: it still voids
            # the links sent before that unsubscribe (see ``confirm``).
            await NewsletterSubscription.get_pymongo_collection().update_one(
                {"_id": sub.id, "status": SubscriptionStatus.unsubscribed},
                {"$set": {"status": SubscriptionStatus.pending}})
        if sub.status != SubscriptionStatus.confirmed:
            await self._send_confirmation(sub)

    async def confirm(self, token: str) -> NewsletterSubscription:
        """Confirm the subscription named by a confirmation token. InvalidToken (400) when the token is forged,
        expired, names a subscription that no longer exists, or was issued before the address unsubscribed
        (an old link never signs up again someone who said no since)."""
        payload = read_link(self.settings, CONFIRM, token)
        sub = await NewsletterSubscription.get(payload["i"]) if payload and isinstance(payload.get("i"), str) else None
        if sub is None:
            raise InvalidToken(INVALID_LINK)
        issued = payload.get("t") if payload else None
        if sub.unsubscribed_at is not None and (
                not isinstance(issued, int) or issued <= sub.unsubscribed_at.timestamp() * 1000):
            raise InvalidToken(INVALID_LINK)
        if sub.status != SubscriptionStatus.confirmed:
            await self._set_confirmed(sub.id, source="form")
        return await NewsletterSubscription.get(sub.id)  # type: ignore[return-value]  # read just above: it exists

    # --- unsubscribe ------------------------------------------------------------------------------------
    async def unsubscribe(self, token: str) -> None:
        """One-click unsubscribe with a token from a marketing email (RFC 8058). Idempotent; InvalidToken (400)
        for a token we did not sign; PreviewLink (422) for the link of a preview or test copy (nobody to
        unsubscribe; nothing changes). A subscription deleted since (account closed) needs nothing more."""
        payload = read_link(self.settings, UNSUBSCRIBE, token)
        if payload is None or not isinstance(payload.get("i"), str):
            raise InvalidToken(INVALID_LINK)
        if payload["i"] == PREVIEW:
            raise PreviewLink("This is the unsubscribe link of a preview or test copy of a campaign: it names no "
                              "subscriber, so nothing was changed.")
        campaign_id = payload.get("c")
        via = campaign_id if isinstance(campaign_id, str) else "link"
        sub = await NewsletterSubscription.get(payload["i"])
        if sub is None:
            return
        if await self._set_unsubscribed({"_id": sub.id}, via) and via.startswith("cmp_"):
            await Campaign.get_pymongo_collection().update_one({"_id": via}, {"$inc": {"unsubscribed": 1}})
        await cancel_marketing_to(sub.email)

    def unsubscribe_link_state(self, token: str) -> LinkState:
        """What an unsubscribe ``token`` (any text, as a browser sends it) is, without a database read:
        ``valid`` (signed by us, names a subscription), ``preview`` (signed, of a preview or test copy) or
        ``invalid`` (malformed, altered, or not an unsubscribe token)."""
        if not re.fullmatch(LINK_TOKEN_PATTERN, token):  # also keeps non-ASCII text from the MAC comparison
            return "invalid"
        payload = read_link(self.settings, UNSUBSCRIBE, token)
        if payload is None or not isinstance(payload.get("i"), str):
            return "invalid"
        return "preview" if payload["i"] == PREVIEW else "valid"

    def unsubscribe_link(self, subscription_id: str, via: str) -> tuple[str, dict[str, str]]:
        """(the storefront unsubscribe page's URL for the email body, the RFC 8058 headers) of one recipient.
        ``via`` names what carried the link (a campaign id, "cart-reminder"); ``subscription_id`` ``PREVIEW``
        makes the link of a preview or test copy."""
        token = sign_link(self.settings, UNSUBSCRIBE, {"i": subscription_id, "c": via})
        api = f"{self.settings.public_base_url.rstrip('/')}{API_UNSUBSCRIBE_PATH}?token={quote(token)}"
        targets = [api]
        if self.settings.email_unsubscribe_mailto:
            targets.append(f"mailto:{self.settings.email_unsubscribe_mailto}?subject=unsubscribe%20{quote(token)}")
        headers = one_click_unsubscribe(*targets)
        return f"{self.settings.storefront_url.rstrip('/')}/newsletter/unsubscribe?token={quote(token)}", headers

    # --- the account preference -------------------------------------------------------------------------
    async def set_for_account(self, user: User, wanted: bool) -> None:
        """``preferences.newsletter`` written by the signed-in owner. Turning it on confirms at once when the
        account's address is verified (the owner proved it and asks now), else starts the double opt-in;
        turning it off unsubscribes."""
        address = user.email.lower()
        if not wanted:
            if await self._set_unsubscribed({"email": address}, "account"):
                await cancel_marketing_to(address)
            return
        if user.email_verified_at is None:
            await self.subscribe(address)
            return
        sub = await self._get_or_create(address, SubscriptionStatus.confirmed, source="account")
        if sub.status != SubscriptionStatus.confirmed:
            await self._set_confirmed(sub.id, source="account")

    async def forget(self, address: str) -> None:
        """The account of ``address`` is being closed: its consent record goes, with its unsent marketing."""
        await NewsletterSubscription.get_pymongo_collection().delete_one({"email": address.lower()})
        await cancel_marketing_to(address.lower())

    # --- who may be mailed --------------------------------------------------------------------------------
    @staticmethod
    async def reachable(addresses: list[str]) -> dict[str, str | None]:
        """Those of ``addresses`` (lower-case) marketing email may go to, consent aside, each with the first name
        of its account (None: no account): not suppressed (hard bounce), not a deactivated account. A closed
        account's address is anonymised, so it matches nothing here. Two indexed ``$in`` reads."""
        if not addresses:
            return {}
        suppressed = {d["email"] for d in await EmailSuppression.get_pymongo_collection().find(
            {"email": {"$in": addresses}}, {"email": 1}).to_list(None)}
        accounts = {d["email"]: d for d in await User.get_pymongo_collection().find(
            {"email": {"$in": addresses}}, {"email": 1, "first_name": 1, "is_active": 1}).to_list(None)}
        out: dict[str, str | None] = {}
        for address in addresses:
            account = accounts.get(address)
            if address in suppressed or (account is not None and not account.get("is_active", True)):
                continue
            out[address] = account.get("first_name") if account else None
        return out

    @staticmethod
    async def states(addresses: list[str]) -> dict[str, SubscriptionStatus]:
        """The subscription status of each of ``addresses`` that has one (one ``$in`` read)."""
        if not addresses:
            return {}
        docs = await NewsletterSubscription.get_pymongo_collection().find(
            {"email": {"$in": addresses}}, {"email": 1, "status": 1}).to_list(None)
        return {d["email"]: SubscriptionStatus(d["status"]) for d in docs}

    async def mailable(self, address: str) -> NewsletterSubscription | None:
        """The confirmed subscription of ``address`` if marketing email may go to it now, else None."""
        sub = await NewsletterSubscription.find_one({"email": address.lower()})
        if sub is None or sub.status != SubscriptionStatus.confirmed:
            return None
        return sub if sub.email in await self.reachable([sub.email]) else None

    # --- internals ----------------------------------------------------------------------------------------
    @staticmethod
    async def _get_or_create(address: str, status: SubscriptionStatus, *, source: str) -> NewsletterSubscription:
        sub = await NewsletterSubscription.find_one({"email": address})
        if sub is not None:
            return sub
        fields: dict[str, Any] = {"email": address, "status": status, "source": source}
        if status == SubscriptionStatus.confirmed:
            fields["confirmed_at"] = utcnow()
        try:
            sub = NewsletterSubscription(**fields)
            await sub.insert()
            return sub
        except DuplicateKeyError:  # a concurrent request created it
            # The duplicate key says it exists.
            return await NewsletterSubscription.find_one({"email": address})  # type: ignore[return-value]  # see above

    @staticmethod
    async def _set_confirmed(subscription_id: str, *, source: str) -> None:
        await NewsletterSubscription.get_pymongo_collection().update_one(
            {"_id": subscription_id, "status": {"$in": [SubscriptionStatus.pending, SubscriptionStatus.unsubscribed]}},
            {"$set": {"status": SubscriptionStatus.confirmed, "source": source, "unsubscribed_via": None,
                      "unsubscribed_at": None}, "$currentDate": {"confirmed_at": True}})

    @staticmethod
    async def _set_unsubscribed(query: dict[str, Any], via: str) -> bool:
        """Unsubscribe the subscription matching ``query`` unless it already is; True when this call did it."""
        res = await NewsletterSubscription.get_pymongo_collection().update_one(
            {**query, "status": {"$in": [SubscriptionStatus.pending, SubscriptionStatus.confirmed]}},
            {"$set": {"status": SubscriptionStatus.unsubscribed, "unsubscribed_via": via},
             "$currentDate": {"unsubscribed_at": True}})
        return res.modified_count == 1

    async def _send_confirmation(self, sub: NewsletterSubscription) -> None:
        hours = self.settings.newsletter_confirm_hours
        issued_ms = int(utcnow().timestamp() * 1000)  # an unsubscribe after this voids the link (see confirm)
        token = sign_link(self.settings, CONFIRM, {"i": sub.id, "t": issued_ms}, ttl=timedelta(hours=hours))
        link = f"{self.settings.storefront_url.rstrip('/')}/newsletter/confirm?token={quote(token)}"
        rendered = render_email("newsletter_confirm", {"email": sub.email, "hours": hours, "link": link})
        # One email per request (the sign-up is rate limited per address): each gets its own key.
        await self.email.enqueue_rendered(to=sub.email, rendered=rendered, template="newsletter_confirm",
                                          dedupe_key=f"newsletter-confirm:{new_id('nlc')}")
