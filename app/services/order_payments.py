"""Order payments: starting a card payment, settling a free order at once, and settling an order from its
Stripe PaymentIntent's current state (never from an event's place in time)."""

from __future__ import annotations

from typing import Any

from app.core.money import money
from app.core.versioned import NOW
from app.models.order import SETTLED, Order, OrderFlag, OrderStatus, PaymentStatus
from app.models.order_states import CLOSED
from app.services import order_repository
from app.services.order_events import update_versioned  # this one publishes each payment-status change
from app.services.order_lifecycle import OrderLifecycle, dump_all
from app.services.stripe_integration.gateway import PaymentIntent

S = OrderStatus


class OrderPayments(OrderLifecycle):
    """Payment settlement on top of the lifecycle (a payment moves the order to ``paid`` or ends it)."""

    async def start_card_payment(self, order: Order) -> PaymentIntent:
        """Create the order's PaymentIntent (the key derived from the order id makes a repeat return the same
        intent) and remember its id. Returns the intent (its ``client_secret`` goes to Stripe.js)."""
        a = order.amounts
        intent = await self.gateway.create_intent(order_id=order.id, number=order.number, amount=a.total,
                                                  currency=a.currency, email=order.contact.email)
        await order_repository.set_payment_intent(order.id, intent.id)
        order.payment_intent_id = intent.id
        return intent

    async def settle_free(self, order: Order) -> Order:
        """A placed order with nothing to pay (total 0): paid at once (payment method ``free``, no
        PaymentIntent), so the sale, the cart, the receipt and the rest of the lifecycle go as usual."""
        payment = {"payment_status": PaymentStatus.paid, "amount_paid": 0, "paid_at": NOW}
        return await self.move(order.id, S.paid, by="system", note="Nothing to pay.", extra=lambda _doc: payment,
                               current=order)

    # --- settlement from the PaymentIntent -----------------------------------------------------------
    async def apply_intent(self, order: Order, intent: PaymentIntent, *, failure_key: str | None = None) -> Order:
        """Settle ``order`` from the PaymentIntent's current state (never from an event's place in time)."""
        if intent.status == "succeeded":
            return await self._paid(order, intent)
        if intent.status == "canceled":
            return await self.try_move(order.id, S.payment_failed, by="stripe",
                                       note="The payment was canceled.") or order
        if intent.status == "requires_payment_method" and intent.last_payment_error and failure_key:
            return await self._failed_attempt(order, intent)
        return order

    async def _paid(self, order: Order, intent: PaymentIntent) -> Order:
        received, currency = int(intent.amount_received or 0), str(intent.currency).upper()
        if received != order.amounts.total or currency != order.amounts.currency.upper():
            await self.flag(order.id, "amount-mismatch",
                            f"Stripe received {money(received, currency)} for {intent.id}; the order total is "
                            f"{money(order.amounts.total, order.amounts.currency)}. Not marked paid.")
            return order
        if order.payment_status in SETTLED:
            return order
        # The intent id is written too: a crash between creating the intent and saving its id leaves an order
        # found by its metadata order_id, and refunds need the id.
        payment = {"payment_status": PaymentStatus.paid, "amount_paid": received, "paid_at": NOW,
                   "payment_intent_id": intent.id}
        moved = await self.try_move(order.id, S.paid, by="stripe", extra=lambda _doc: payment,
                                    current=order)
        if moved is not None:
            return moved

        def record_late(doc: Order) -> dict[str, Any]:  # the order ended before the money arrived
            if doc.payment_status in SETTLED or doc.status not in CLOSED:
                return {}
            flags = [*doc.flags, OrderFlag(code="paid-after-close",
                                           detail=f"{intent.id} succeeded after the order became {doc.status.value}; "
                                                  "refund the customer.")]
            return {**payment, "flags": dump_all(flags), "updated_at": NOW}

        return await update_versioned(Order, order.id, record_late, rollups=self.rollups)

    async def _failed_attempt(self, order: Order, intent: PaymentIntent) -> Order:
        message = str(getattr(intent.last_payment_error, "message", None) or "The payment failed.")[:300]

        def mutate(doc: Order) -> dict[str, Any]:
            if doc.status != S.pending_payment or doc.payment_status in SETTLED:
                return {}
            return {"payment_status": PaymentStatus.failed, "payment_attempts": doc.payment_attempts + 1,
                    "last_payment_error": message, "updated_at": NOW}

        return await update_versioned(Order, order.id, mutate, rollups=self.rollups, current=order)
