"""Stripe webhooks and the two order jobs: the expiry sweeper and the payment reconciliation.

Both jobs claim one order at a time with a lease (``app.core.jobs.claim``), so several API processes
never work on the same order at once; the status change itself is version-guarded, so whatever an
order held is released exactly once whoever gets there first.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import stripe
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.core.clock import utcnow
from app.core.errors import BadRequest
from app.core.jobs import WORKER_ID
from app.models.counter import Event
from app.models.order import Order, OrderStatus, PaymentMethod, RefundStatus
from app.services.orders import OrderService

log = logging.getLogger("app.orders.jobs")

PAYMENT_EVENTS = {"payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled",
                  "payment_intent.processing", "payment_intent.amount_capturable_updated"}
REFUND_EVENTS = {"charge.refunded", "charge.refund.updated"}
REFUND_RETRY_AFTER = timedelta(minutes=1)


class OrderPayments:
    def __init__(self, orders: OrderService) -> None:
        self.orders = orders
        self.gateway = orders.gateway
        self.settings = orders.settings

    # --- webhook ------------------------------------------------------------------------------------
    async def handle_webhook(self, payload: bytes, signature: str | None) -> str:
        """Verify, store the event id once, process, then mark it processed. A failure propagates (5xx, so
        Stripe retries) and leaves the event unprocessed, so the retry processes it again."""
        try:
            event = self.gateway.construct_event(payload, signature)
        except (ValueError, stripe.SignatureVerificationError) as exc:
            raise BadRequest("The Stripe-Signature header does not match the payload.",
                             code="invalid-signature") from exc
        key = f"stripe:{event.id}"
        stored = await Event.get(key)
        if stored is None:
            try:
                object_id = event.data.object.to_dict().get("id")
                await Event(id=key, kind=event.type, payload={"object_id": object_id}).insert()
            except DuplicateKeyError:
                stored = await Event.get(key)
        if stored is not None and stored.processed_at is not None:
            return "duplicate"
        await self._process(event)
        await Event.get_pymongo_collection().update_one({"_id": key}, {"$currentDate": {"processed_at": True}})
        return "processed"

    async def _process(self, event: Any) -> None:
        obj = event.data.object.to_dict()
        if event.type in PAYMENT_EVENTS:
            order = await self._order_for_intent(obj.get("id"), obj.get("metadata") or {})
            if order is None:
                return
            intent = await self.gateway.retrieve_intent(obj["id"])  # the current state, not the event's
            failure = event.id if event.type == "payment_intent.payment_failed" else None
            await self.orders.apply_intent(order, intent, failure_key=failure)
        elif event.type in REFUND_EVENTS:
            charge_id = obj.get("charge") if obj.get("object") == "refund" else obj.get("id")
            if not charge_id:
                return
            charge = await self.gateway.retrieve_charge(charge_id)
            order = await self._order_for_intent(charge.payment_intent, {})
            if order is not None:
                await self.orders.refunds.apply_event(order, charge)
        else:
            log.info("stripe event %s (%s) ignored", event.id, event.type)

    async def _order_for_intent(self, intent_id: str | None, metadata: dict[str, Any]) -> Order | None:
        if not intent_id:
            return None
        order = await Order.find_one({"payment_intent_id": intent_id})
        if order is None and metadata.get("order_id"):
            candidate = await Order.get(str(metadata["order_id"]))
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
    rt.jobs.register("orders-reconcile", reconcile)
