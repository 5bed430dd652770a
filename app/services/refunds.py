"""Refunds of card orders: made through Stripe, counted from Stripe.

One source of truth: a card order's ``amount_refunded`` and its payment status (``paid`` /
``partially_refunded`` / ``refunded``) are the charge's ``amount_refunded`` as Stripe holds it, re-read
before and after every refund we make and on every ``charge.refunded`` / ``charge.refund.updated`` event.
Refunds made anywhere — this API, Stripe's dashboard, another integration — therefore add up to exactly
what Stripe holds, in any order or interleaving. (Two reads racing could write the older one last; the
event Stripe sends for every refund re-reads the charge, so the order converges to Stripe's figure.)

A refund we make is recorded on the order first (``pending``) under its own id, which is also Stripe's
idempotency key, so a retry or a second request never refunds twice; the limit — what was paid, minus
what Stripe says was refunded, minus our refunds still pending — is checked in that same version-guarded
write, before Stripe is asked. A pending refund whose Stripe call failed is sent again by the
reconciliation job (``order_jobs``); one Stripe refuses is marked failed and flags the order for staff.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from app.core.errors import Conflict, ServiceUnavailable
from app.core.ids import new_id
from app.core.money import money
from app.core.versioned import NOW
from app.models.order import Order, PaymentMethod, PaymentStatus, RefundRecord, RefundStatus
from app.services.order_events import update_versioned  # publishes each payment-status change to live streams
from app.services.stripe_integration.gateway import Charge, StripeError, id_of

if TYPE_CHECKING:  # pragma: no cover - imports for type checkers only, never run
    from app.services.order_lifecycle import OrderLifecycle

log = logging.getLogger("app.refunds")


def refund_status(paid: int, refunded: int) -> PaymentStatus:
    """The payment status of an order paid ``paid`` cents of which ``refunded`` were refunded."""
    if refunded <= 0:
        return PaymentStatus.paid
    return PaymentStatus.refunded if refunded >= paid else PaymentStatus.partially_refunded


def _has_card_payment(order: Order) -> bool:
    return order.payment_method == PaymentMethod.card and bool(order.payment_intent_id) and order.amount_paid > 0


class OrderRefunds:
    """Refunds of one shop's orders, on behalf of the order lifecycle (its gateway, emails and flags)."""

    def __init__(self, orders: OrderLifecycle) -> None:
        self.orders = orders
        self.gateway = orders.gateway
        self.notify = orders.notify

    # --- Stripe's figure --------------------------------------------------------------------------
    async def charge_of(self, order: Order) -> Charge | None:
        """The order's charge as Stripe holds it now (via its PaymentIntent's latest charge), or None."""
        intent = await self.gateway.retrieve_intent(order.payment_intent_id or "")
        charge_id = intent.latest_charge  # an id: we never ask Stripe to expand it (None before any charge)
        return await self.gateway.retrieve_charge(charge_id) if isinstance(charge_id, str) else None

    async def sync(self, order: Order, charge: Charge | None, *, ours: int = 0) -> Order:
        """Write Stripe's ``amount_refunded`` of ``charge`` (and the payment status it implies) on the order.
        An increase beyond ``ours`` (the refund we just made, whose record is still pending while this runs) was
        made elsewhere, e.g. in the dashboard: the customer is told, unless another refund of ours is still
        pending (its amount cannot be told apart yet)."""
        if charge is None or charge.payment_intent != order.payment_intent_id:
            return order
        seen = int(charge.amount_refunded or 0)

        def mutate(doc: Order) -> dict[str, Any]:
            if doc.amount_paid <= 0 or seen == doc.amount_refunded:
                return {}
            return {"amount_refunded": seen, "payment_status": refund_status(doc.amount_paid, seen),
                    "updated_at": NOW}

        before = order.amount_refunded
        order = await update_versioned(Order, order.id, mutate, rollups=self.orders.rollups, current=order)
        elsewhere = order.amount_refunded - before - ours
        if elsewhere > 0 and order.refunds_pending <= (1 if ours else 0):
            await self.notify.send(order, "order_refunded", key=f"refunded:total:{order.amount_refunded}",
                                   amount=money(elsewhere, order.amounts.currency), reason="Refund issued by the shop")
        return order

    async def refresh(self, order: Order) -> Order:
        """``sync`` from a fresh read of the charge. If Stripe cannot be read, the order is left as it is
        (the refund that follows is still bounded by Stripe itself, and the next event re-reads)."""
        try:
            return await self.sync(order, await self.charge_of(order))
        except (ServiceUnavailable, StripeError) as exc:
            log.warning("charge of order %s not re-read: %s", order.id, exc)
            return order

    async def apply_event(self, order: Order, charge: Charge) -> Order:
        """``charge.refunded`` / ``charge.refund.updated``: ``charge`` as just re-fetched from Stripe."""
        return await self.sync(order, charge)

    # --- refunds we make ----------------------------------------------------------------------------
    async def refund(self, order_id: str, *, amount: int | None, reason: str, by: str, key: str | None = None,
                     notify: bool = True) -> Order:
        """Refund ``amount`` cents (None: all that is left) of the order's card payment through Stripe.
        Conflict ``not-refundable`` (no card payment), ``nothing-to-refund``, ``refund-exceeds-paid`` (with
        ``refundable``) or ``refund-refused`` (Stripe said no); ServiceUnavailable when Stripe cannot be
        reached (the refund stays pending and is sent again by the reconciliation job)."""
        order = await self.orders.get(order_id)
        if _has_card_payment(order):
            order = await self.refresh(order)
        record_id = key or new_id("rfd")

        def mutate(doc: Order) -> dict[str, Any]:
            if any(r.id == record_id for r in doc.refunds):
                return {}
            if not _has_card_payment(doc):
                raise Conflict("This order has no card payment to refund.", code="not-refundable")
            pending = sum(r.amount for r in doc.refunds if r.status == RefundStatus.pending)
            left = doc.amount_paid - doc.amount_refunded - pending
            if left <= 0:
                raise Conflict("Everything paid for this order was already refunded.", code="nothing-to-refund")
            wanted = left if amount is None else amount
            if wanted > left:
                raise Conflict(f"At most {money(left, doc.amounts.currency)} can still be refunded.",
                               code="refund-exceeds-paid", refundable=left)
            record = RefundRecord(id=record_id, amount=wanted, reason=reason, by=by)
            return {"refunds": [r.model_dump() for r in [*doc.refunds, record]],
                    "refunds_pending": doc.refunds_pending + 1, "updated_at": NOW}

        order = await update_versioned(Order, order_id, mutate, rollups=self.orders.rollups, current=order)
        return await self.push(order, record_id, notify=notify)

    async def push(self, order: Order, record_id: str, *, notify: bool = True) -> Order:
        """Send a pending refund to Stripe (again: its key makes that safe), record the outcome and re-read
        the charge. A refusal marks it failed, flags the order and is a Conflict ``refund-refused``."""
        record = next(r for r in order.refunds if r.id == record_id)
        if record.status != RefundStatus.pending:
            return order
        try:
            refund = await self.gateway.refund(intent_id=order.payment_intent_id or "", amount=record.amount,
                                               key=record.id, order_id=order.id, reason=record.reason)
        except StripeError as exc:
            message = str(exc.user_message or exc)[:300]
            await self._settle(order.id, record_id, RefundStatus.failed, error=message)
            await self.orders.flag(order.id, "refund-failed", f"Refund {record_id} was refused by Stripe: {message}")
            raise Conflict("The payment provider refused the refund; staff have been alerted.",
                           code="refund-refused", provider_code=exc.code) from exc
        # Stripe's figure first, then the record: the record stays pending until the amount counts it, so a
        # concurrent refund never sees neither (it would pass our limit and be refused by Stripe).
        try:
            charge = await self.gateway.retrieve_charge(id_of(refund.charge) or "")
        except (ServiceUnavailable, StripeError) as exc:
            log.warning("charge of refund %s not re-read: %s", refund.id, exc)  # the charge.refunded event will
        else:
            order = await self.sync(order, charge, ours=record.amount)
        order = await self._settle(order.id, record_id, RefundStatus.succeeded, stripe_id=refund.id)
        if notify:
            await self.notify.send(order, "order_refunded", key=f"refunded:{record_id}",
                                   amount=money(record.amount, order.amounts.currency), reason=record.reason)
        return order

    async def _settle(self, order_id: str, record_id: str, status: RefundStatus, *,
                      stripe_id: str | None = None, error: str | None = None) -> Order:
        def mutate(doc: Order) -> dict[str, Any]:
            refunds = [r.model_copy() for r in doc.refunds]
            record = next(r for r in refunds if r.id == record_id)
            if record.status != RefundStatus.pending:
                return {}
            record.status, record.stripe_refund_id, record.error = status, stripe_id, error
            return {"refunds": [r.model_dump() for r in refunds], "refunds_pending": max(0, doc.refunds_pending - 1),
                    "updated_at": NOW}

        return await update_versioned(Order, order_id, mutate, rollups=self.orders.rollups)
