"""Stripe webhook events: verified on the raw body, checked for Stripe's structure, stored once under their
event id, acted on (a PaymentIntent settles its order; a refund re-reads the charge's refunded amount) and
marked processed with their outcome. The object is always re-read from Stripe, never taken from the event,
so events applied late or out of order settle an order from its current state.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from app.core.errors import BadRequest
from app.core.ids import looks_like_id
from app.models.order import Order
from app.services import order_repository
from app.services.orders import OrderService
from app.services.stripe_integration.events import PAYMENT_EVENTS, REFUND_EVENTS, StripeEvent, parse_event
from app.services.stripe_integration.gateway import InvalidRequestError, SignatureVerificationError, id_of

log = logging.getLogger("app.orders.jobs")


WebhookResult = Literal["processed", "ignored", "duplicate"]


class StripeWebhooks:
    """Stripe's events about our orders, on behalf of ``OrderService`` (its gateway, payments and refunds)."""

    def __init__(self, orders: OrderService) -> None:
        self.orders = orders
        self.gateway = orders.gateway

    async def handle_webhook(self, payload: bytes, signature: str | None) -> WebhookResult:
        """Verify, check the structure, store the event id once, process, then mark it processed with its
        outcome. Returns ``processed``, ``ignored`` (recorded; about nothing we know) or ``duplicate``.
        BadRequest ``invalid-signature`` / ``malformed-event``; a failure of our storage, or Stripe being
        unreachable while we re-read the object, propagates as a 5xx and leaves the event unprocessed, so
        Stripe's retry processes it again."""
        try:
            raw = self.gateway.verify_event(payload, signature)
        except SignatureVerificationError as exc:
            raise BadRequest("The Stripe-Signature header does not match the payload.",
                             code="invalid-signature") from exc
        except ValueError as exc:
            raise BadRequest("The event is not JSON.", code="malformed-event") from exc
        event = parse_event(raw)
        key = f"stripe:{event.id}"
        if not await order_repository.record_event(key, event.type, event.object_id):
            return "duplicate"  # delivered and processed before (an interrupted one is processed again)
        outcome = await self._process(event)
        await order_repository.mark_event_processed(key, outcome)
        return "processed" if outcome == "processed" else "ignored"

    async def _process(self, event: StripeEvent) -> str:
        """Act on the event; ``processed``, or ``ignored: <why>`` for objects we (or Stripe) do not know."""
        if event.type in PAYMENT_EVENTS:
            order = await self._order_for_intent(event.object_id, event.metadata)
            if order is None:
                return "ignored: no order has this PaymentIntent"
            try:
                intent = await self.gateway.retrieve_intent(event.object_id or "")
            except InvalidRequestError as exc:  # e.g. resource_missing: Stripe no longer knows it
                return f"ignored: Stripe refused to read the PaymentIntent ({exc.code})"
            failure = event.id if event.type == "payment_intent.payment_failed" else None
            await self.orders.apply_intent(order, intent, failure_key=failure)
            return "processed"
        if event.type in REFUND_EVENTS:
            try:
                charge = await self.gateway.retrieve_charge(event.charge_id or "")
            except InvalidRequestError as exc:
                return f"ignored: Stripe refused to read the charge ({exc.code})"
            order = await self._order_for_intent(id_of(charge.payment_intent), {})
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
