"""The order service: placement, payments and the lifecycle together (``order_placement``,
``order_payments``, ``order_lifecycle``), plus what customers and staff do to an order (cancel, move it on).
Refunds live in ``app.services.refunds`` (``OrderService.refunds``); access rules in ``order_access``.
"""

from __future__ import annotations

from app.core.errors import Conflict
from app.models.order import SETTLED, Order, OrderStatus, PaymentMethod
from app.models.order_states import CUSTOMER_CANCELLABLE, FULFILLED
from app.services.order_payments import OrderPayments
from app.services.order_placement import OrderPlacement

S = OrderStatus


class OrderService(OrderPlacement, OrderPayments):
    """Orders of one shop: place, pay, move along the status machine, cancel, refund (``refunds``)."""

    async def cancel(self, order: Order, *, by: str, note: str | None = None, staff: bool = False) -> Order:
        """Cancel (customers: only before preparation, else 409 ``not-cancellable``); an open PaymentIntent is
        closed first, and money that arrived meanwhile is settled, then refunded with the cancellation."""
        if not staff and order.status not in CUSTOMER_CANCELLABLE:
            raise Conflict(f"An order that is {order.status.value} can no longer be cancelled.",
                           code="not-cancellable", current_status=order.status.value)
        if order.status == S.pending_payment and order.payment_intent_id:
            # Close the PaymentIntent first: if the customer paid meanwhile, settle it and refund below.
            intent = await self.gateway.cancel_intent(order.payment_intent_id, order_id=order.id)
            if intent is not None and intent.status == "succeeded":
                order = await self.apply_intent(order, intent)
        return await self.move(order.id, S.cancelled, by=by, note=note)

    async def staff_move(self, order: Order, to: OrderStatus, *, by: str, note: str | None) -> Order:
        """A staff status change (409 ``illegal-transition``; ``payment-not-settled`` for a pay-on-pickup
        handover before the counter payment)."""
        if to == S.cancelled:
            return await self.cancel(order, by=by, note=note, staff=True)

        def check(doc: Order) -> None:
            if (to == S.picked_up and doc.payment_method == PaymentMethod.pay_on_pickup
                    and doc.payment_status not in SETTLED):
                raise Conflict("Settle the payment before handing the order over.", code="payment-not-settled")

        return await self.move(order.id, to, by=by, note=note, check=check)


async def has_delivered_purchase(user_id: str, product_id: str) -> bool:
    """True when ``user_id`` received ``product_id`` (a delivered or picked-up order): verified purchase."""
    found = await Order.find({"contact.user_id": user_id, "lines.product_id": product_id,
                              "status": {"$in": [s.value for s in FULFILLED]}}).limit(1).to_list()
    return bool(found)
