"""Stripe webhooks and the order jobs: the expiry sweeper, the payment reconciliation and the sales rollups
(changes left pending by a process that stopped between an order's write and its rollup update).

Both jobs claim one order at a time with a lease (``app.core.jobs.claim``), so several API processes
never work on the same order at once; the status change itself is version-guarded, so whatever an
order held is released exactly once whoever gets there first.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import stripe
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.core.clock import utcnow
from app.core.errors import BadRequest
from app.core.ids import looks_like_id
from app.core.jobs import WORKER_ID
from app.models.counter import Event
from app.models.order import Order, OrderStatus, PaymentMethod, RefundStatus
from app.services.orders import OrderService
from app.services.stripe_events import PAYMENT_EVENTS, REFUND_EVENTS, StripeEvent, parse_event

log = logging.getLogger("app.orders.jobs")

REFUND_RETRY_AFTER = timedelta(minutes=1)
PRUNE_EVERY_SECONDS = 3600.0
_last_prune: list[float] = [float("-inf")]  # monotonic time of this process's last token pruning


class OrderPayments:
    def __init__(self, orders: OrderService) -> None:
        self.orders = orders
        self.gateway = orders.gateway
        self.settings = orders.settings

    # --- webhook ------------------------------------------------------------------------------------
    async def handle_webhook(self, payload: bytes, signature: str | None) -> str:
        """Verify, check the structure, store the event id once, process, then mark it processed with its
        outcome. Returns ``processed``, ``ignored`` (recorded; about nothing we know) or ``duplicate``.
        BadRequest ``invalid-signature`` / ``malformed-event``; a failure of our storage, or Stripe being
        unreachable while we re-read the object, propagates as a 5xx and leaves the event unprocessed, so
        Stripe's retry processes it again."""
        try:
            raw = self.gateway.verify_event(payload, signature)
        except stripe.SignatureVerificationError as exc:
            raise BadRequest("The Stripe-Signature header does not match the payload.",
                             code="invalid-signature") from exc
        except ValueError as exc:
            raise BadRequest("The event is not JSON.", code="malformed-event") from exc
        event = parse_event(raw)
        key = f"stripe:{event.id}"
        try:
            await Event(id=key, kind=event.type, payload={"object_id": event.object_id}).insert()
        except DuplicateKeyError:  # delivered before: done, or interrupted (then processed again)
            stored = await Event.get(key)
            if stored is not None and stored.processed_at is not None:
                return "duplicate"
        outcome = await self._process(event)
        await Event.get_pymongo_collection().update_one(
            {"_id": key}, {"$set": {"outcome": outcome}, "$currentDate": {"processed_at": True}})
        return "processed" if outcome == "processed" else "ignored"

    async def _process(self, event: StripeEvent) -> str:
        """Act on the event; ``processed``, or ``ignored: <why>`` for objects we (or Stripe) do not know."""
        if event.type in PAYMENT_EVENTS:
            order = await self._order_for_intent(event.object_id, event.metadata)
            if order is None:
                return "ignored: no order has this PaymentIntent"
            try:
                intent = await self.gateway.retrieve_intent(event.object_id or "")
            except stripe.InvalidRequestError as exc:  # e.g. resource_missing: Stripe no longer knows it
                return f"ignored: Stripe refused to read the PaymentIntent ({exc.code})"
            failure = event.id if event.type == "payment_intent.payment_failed" else None
            await self.orders.apply_intent(order, intent, failure_key=failure)
            return "processed"
        if event.type in REFUND_EVENTS:
            try:
                charge = await self.gateway.retrieve_charge(event.charge_id or "")
            except stripe.InvalidRequestError as exc:
                return f"ignored: Stripe refused to read the charge ({exc.code})"
            order = await self._order_for_intent(charge.payment_intent, {})
            if order is None:
                return "ignored: no order has this charge's PaymentIntent"
            await self.orders.refunds.apply_event(order, charge)
            return "processed"
        log.info("stripe event %s (%s) ignored", event.id, event.type)
        return "ignored: event type not handled"

    async def _order_for_intent(self, intent_id: str | None, metadata: dict[str, Any]) -> Order | None:
        if not intent_id:
            return None
        order = await Order.find_one({"payment_intent_id": intent_id})
        order_id = metadata.get("order_id")
        if order is None and isinstance(order_id, str) and looks_like_id(order_id, "ord"):
            candidate = await Order.get(order_id)
            if candidate is not None and candidate.payment_intent_id in (None, intent_id):
                order = candidate
        if order is None:
            log.warning("stripe payment intent %s matches no order", intent_id)
        return order

    # --- jobs -----------------------------------------------------------------------------------------
    async def _drain(self, due: dict[str, Any], sort_key: str, work: Any) -> int:
        """Claim due orders one at a time with a lease and work on each. Work that succeeds leaves the order
        no longer due; work that fails keeps the lease, so the order is tried again once the lease is over."""
        coll = Order.get_pymongo_collection()
        lease = timedelta(seconds=self.settings.worker_lease_seconds)
        done = 0
        for _ in range(self.settings.order_job_batch):
            raw = await coll.find_one_and_update(
                {**due, "leased_at": {"$lt": utcnow() - lease}},
                {"$set": {"lease_owner": WORKER_ID}, "$currentDate": {"leased_at": True}},
                sort=[(sort_key, 1)], return_document=ReturnDocument.AFTER)
            if raw is None:
                break
            order = Order.model_validate(raw)
            try:
                await work(order)
            except Exception:
                log.exception("order job failed on %s; tried again after the lease", order.id)
                continue
            done += 1
        return done

    async def expire_due(self) -> int:
        """Unpaid orders past ``expires_at`` become ``expired``; stock, slot and promo use go back once.
        Closed orders whose release was interrupted (a crash after the status change) are released too."""
        now = utcnow()
        n = await self._drain({"status": OrderStatus.pending_payment, "expires_at": {"$lte": now}}, "expires_at",
                              self._expire)
        stale = {"status": {"$in": [OrderStatus.cancelled, OrderStatus.expired, OrderStatus.payment_failed]},
                 "reservation.released": False, "updated_at": {"$lte": now - REFUND_RETRY_AFTER}}
        return n + await self._drain(stale, "updated_at", self.orders.release)

    async def _expire(self, order: Order) -> None:
        if order.payment_intent_id:
            # Close the door first: an intent that succeeded meanwhile makes the order paid instead.
            intent = await self.gateway.cancel_intent(order.payment_intent_id, order_id=order.id)
            if intent is not None and intent.status == "succeeded":
                await self.orders.apply_intent(order, intent)
                return
        await self.orders.try_move(order.id, OrderStatus.expired, by="system",
                                   note=f"Not paid within {self.settings.order_payment_minutes} minutes.")

    async def reconcile_due(self) -> int:
        """Orders still ``pending_payment`` with a PaymentIntent older than RECONCILE_AFTER_MINUTES are
        settled from Stripe (a lost webhook never leaves a paid customer without an order); refunds left
        pending by a failed Stripe call are sent again with the same idempotency key."""
        now = utcnow()
        cutoff = now - timedelta(minutes=self.settings.reconcile_after_minutes)
        due = {"status": OrderStatus.pending_payment, "payment_method": PaymentMethod.card,
               "created_at": {"$lte": cutoff}, "reconciled_at": {"$lte": cutoff}}
        n = await self._drain(due, "created_at", self._reconcile)
        refunds = {"refunds_pending": {"$gt": 0}, "updated_at": {"$lte": now - REFUND_RETRY_AFTER}}
        return n + await self._drain(refunds, "updated_at", self._retry_refunds)

    async def _reconcile(self, order: Order) -> None:
        if order.payment_intent_id:
            intent = await self.gateway.retrieve_intent(order.payment_intent_id)
            await self.orders.apply_intent(order, intent)
        await Order.get_pymongo_collection().update_one({"_id": order.id}, {"$currentDate": {"reconciled_at": True}})

    async def settle_rollups_due(self) -> int:
        """Apply rollup changes still pending ROLLUP_RETRY_SECONDS after their order's write (each once: a
        change already applied is recognised by its token), and hourly drop old tokens from the day documents."""
        cutoff = utcnow() - timedelta(seconds=self.settings.rollup_retry_seconds)
        rollups = self.orders.rollups
        n = await self._drain({"rollup.pending_any": True, "rollup.since": {"$lte": cutoff}}, "rollup.since",
                              rollups.settle)
        if time.monotonic() - _last_prune[0] >= PRUNE_EVERY_SECONDS:
            _last_prune[0] = time.monotonic()
            await rollups.prune()
        return n

    async def _retry_refunds(self, order: Order) -> None:
        for record in order.refunds:
            if record.status == RefundStatus.pending:
                order = await self.orders.refunds.push(order, record.id)
        await Order.get_pymongo_collection().update_one({"_id": order.id}, {"$currentDate": {"updated_at": True}})


def register_order_jobs(rt: Any) -> None:
    """Register the sweeper and the reconciliation with the runtime's job runner."""
    from app.deps import build_order_service

    def payments() -> OrderPayments:
        return OrderPayments(build_order_service(rt))

    async def expire() -> int:
        return await payments().expire_due()

    async def reconcile() -> int:
        if not rt.stripe.enabled:
            return 0
        return await payments().reconcile_due()

    rt.jobs.register("orders-expire", expire)
    async def rollups() -> int:
        return await payments().settle_rollups_due()

    rt.jobs.register("orders-reconcile", reconcile)
    rt.jobs.register("orders-rollups", rollups)
