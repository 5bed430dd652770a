"""Back-in-stock requests: "tell me when this sold-out size is back", one email per request, then it is spent.

- ``request``: a guest (by address) or a customer (the account's address) asks about a sold-out size of an
  active product. Idempotent per product, size and address while the request waits (``dedupe_key``).
- ``stock_returned``: called by ``inventory.adjust_stock`` when a size goes from none to some units; its
  waiting requests become ``due`` (one indexed ``update_many``) and the ``stock-alerts`` job is woken. The
  stock change itself waits for nothing else.
- ``send_due`` (the job): claims due requests one at a time with a lease; if the size is still available it
  queues the email (dedupe key ``stock-alert:<id>``, so a retry after a crash queues nothing twice) and
  spends the request; if it sold out again meanwhile, the request waits again.
- ``stop``: anyone may type any address into a guest's request, so every back-in-stock email carries a link
  (and RFC 8058 ``List-Unsubscribe`` headers) that stops them: the address's waiting requests are cancelled
  and a ``StockAlertOptOut`` drops later requests for it (answered the same 202) — from guests, and from an
  account whose address is not verified. The account owning the address, verified, lifts it by asking.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from pymongo.errors import DuplicateKeyError

from app.config import Settings
from app.core.errors import Conflict, Unprocessable
from app.core.jobs import JobRunner, claim, release
from app.core.money import money
from app.core.security import read_link, sign_link
from app.models.catalog import Product, ProductStatus
from app.models.marketing import EmailSuppression, StockAlert, StockAlertOptOut, StockAlertStatus
from app.models.user import User
from app.services.auth import InvalidToken
from app.services.email import EmailService, one_click_unsubscribe
from app.services.email_templates import RenderedEmail, render_email
from app.services.product_lookup import load_product

log = logging.getLogger("app.stock_alerts")

JOB = "stock-alerts"
STOP = "stock-alert-stop"  # sign_link purpose of the stop link
API_STOP_PATH = "/api/v1/stock-alerts/stop"


class StockAlertService:
    def __init__(self, settings: Settings, email: EmailService | None, jobs: Any = None) -> None:
        self.settings = settings
        self.email = email
        self.jobs = jobs  # app.core.jobs.JobRunner, to wake the job (None: it finds the work when it polls)

    async def request(self, product_id: str, size: str, *, user: User | None, email: str | None) -> None:
        """Record a request for one email when ``size`` of ``product_id`` is back. NotFound (no such active
        product), Unprocessable ``unknown-size`` / ``email-required`` (a guest without ``email``) /
        ``email-not-allowed`` (a signed-in customer with one), Conflict ``size-in-stock`` (it can be bought
        now). Asking again while a request waits changes nothing."""
        product = await load_product(product_id)
        if size not in {s.code for s in product.sizes}:
            raise Unprocessable(f"{product.name} has no size {size!r}.", code="unknown-size",
                                sizes=[s.code for s in product.sizes])
        if user is not None and email is not None:
            raise Unprocessable("Signed in, the alert goes to your account's address: omit `email`.",
                                code="email-not-allowed")
        address = user.email.lower() if user is not None else email
        if address is None:
            raise Unprocessable("Give the email address to notify.", code="email-required")
        opt_outs = StockAlertOptOut.get_pymongo_collection()
        if user is not None and user.email_verified_at is not None:
            await opt_outs.delete_one({"email": address})  # its proven owner asks now: their earlier stop is lifted
        elif await opt_outs.find_one({"email": address}) is not None:
            return  # the address stopped these emails: taken, not recorded (the answer reveals nothing)
        units = product.stock.get(size, 0)
        if units > 0:
            raise Conflict(f"{product.name} ({size}) is in stock: it can be ordered now.", code="size-in-stock",
                           available=units, product_id=product.id, size=size)
        try:
            await StockAlert(product_id=product.id, size=size, email=address, user_id=user.id if user else None,
                             dedupe_key=f"{product.id}:{size}:{address}").insert()
        except DuplicateKeyError:
            return  # the same request already waits
        # The size may have come back between the check above and the insert: then no restock will follow.
        fresh = await Product.get_pymongo_collection().find_one({"_id": product.id}, {"stock": 1})
        if ((fresh or {}).get("stock") or {}).get(size, 0) > 0:
            await stock_returned(self.jobs, product.id, size)

    async def send_due(self) -> int:
        """The job: handle up to MARKETING_BATCH_SIZE due requests; returns how many were handled."""
        coll = StockAlert.get_pymongo_collection()
        handled = 0
        for _ in range(self.settings.marketing_batch_size):
            raw = await claim(coll, {"status": StockAlertStatus.due}, lease_seconds=self.settings.worker_lease_seconds,
                              sort_key="_id")
            if raw is None:
                break
            await self._handle(coll, raw)
            handled += 1
        return handled

    async def _handle(self, coll: Any, raw: dict[str, Any]) -> None:
        alert = StockAlert.model_validate(raw)
        product = await Product.get(alert.product_id)
        if product is not None and (product.status != ProductStatus.active or product.stock.get(alert.size, 0) <= 0):
            await release(coll, raw, changes={"status": StockAlertStatus.waiting})  # sold out again, or hidden
            return
        if product is not None and self.email is not None and \
                await EmailSuppression.find_one({"email": alert.email}) is None:
            page, headers = self.stop_link(alert.id)
            await self.email.enqueue_rendered(to=alert.email, rendered=self.render(product, alert.size, page),
                                              template="stock_alert", dedupe_key=f"stock-alert:{alert.id}",
                                              headers=headers)
        spent = {"status": StockAlertStatus.sent, "dedupe_key": f"spent:{alert.id}"}
        await release(coll, raw, changes=spent)

    def stop_link(self, alert_id: str) -> tuple[str, dict[str, str]]:
        """(the storefront page that stops back-in-stock emails, for the email body; the RFC 8058 headers whose
        one-click POST does it) for the email answering request ``alert_id``. The token names the request, not
        the address, and never expires."""
        token = quote(sign_link(self.settings, STOP, {"i": alert_id}))
        api = f"{self.settings.public_base_url.rstrip('/')}{API_STOP_PATH}?token={token}"
        return f"{self.settings.storefront_url.rstrip('/')}/stock-alerts/stop?token={token}", one_click_unsubscribe(api)

    async def stop(self, token: str) -> None:
        """No more back-in-stock emails to the address of the request ``token`` names: its waiting requests are
        cancelled and later ones dropped (``StockAlertOptOut``; see ``request``). Idempotent; InvalidToken (400)
        for a token we did not sign."""
        payload = read_link(self.settings, STOP, token)
        if payload is None or not isinstance(payload.get("i"), str):
            raise InvalidToken("This link is not valid.")
        alert = await StockAlert.get(payload["i"])
        if alert is None:
            return
        try:
            await StockAlertOptOut(email=alert.email).insert()
        except DuplicateKeyError:
            pass  # stopped before
        coll = StockAlert.get_pymongo_collection()
        unspent = {"$in": [StockAlertStatus.waiting.value, StockAlertStatus.due.value]}
        async for raw in coll.find({"email": alert.email, "status": unspent}, {"_id": 1}):
            # one by one: each cancelled request frees its own dedupe key ("spent:<id>", unique)
            await coll.update_one({"_id": raw["_id"], "status": unspent},
                                  {"$set": {"status": StockAlertStatus.cancelled.value,
                                            "dedupe_key": f"spent:{raw['_id']}"}})

    def render(self, product: Product, size_code: str, stop_url: str = "") -> RenderedEmail:
        """The email telling that ``size_code`` of ``product`` is back (its price, image and page link), with the
        link that stops these emails (``stop_link``)."""
        size = next((s for s in product.sizes if s.code == size_code), None)
        base = self.settings.storefront_url.rstrip("/")
        card = {"name": product.name, "url": f"{base}/products/{quote(product.slug)}",
                "image_url": product.images[0].url if product.images else None,
                "image_alt": product.images[0].alt if product.images else product.name,
                "price": money(size.price if size else product.price_min, self.settings.currency)}
        return render_email("stock_alert", {"product": card, "size_name": size.name if size else size_code,
                                            "stop_url": stop_url})


async def stock_returned(jobs: Any, product_id: str, size: str) -> None:
    """``size`` of ``product_id`` went from none to some units: its waiting requests become due, and the job
    is woken through ``jobs`` (the runtime's JobRunner; None: it finds them when it next polls)."""
    res = await StockAlert.get_pymongo_collection().update_many(
        {"product_id": product_id, "size": size, "status": StockAlertStatus.waiting},
        {"$set": {"status": StockAlertStatus.due}})
    if res.modified_count and jobs is not None:
        jobs.wake(JOB)


def register_stock_alert_job(jobs: JobRunner, settings: Settings, email: EmailService) -> None:
    """Register the back-in-stock sender with the runtime's job runner (woken by ``stock_returned``)."""
    async def run() -> int:
        return await StockAlertService(settings, email, jobs).send_due()

    jobs.register(JOB, run, poll_seconds=settings.marketing_poll_seconds)
