"""The order status machine. Statuses only move forward along these edges; anything else is a 409.

Card orders:      pending_payment → paid → preparing → out_for_delivery → delivered
                                                     → ready_for_pickup → picked_up   (store pickup)
Pay on pickup:    confirmed → preparing → ready_for_pickup → picked_up
                  (no online payment: payment_status stays `unpaid` until staff settle it at the counter;
                  `picked_up` needs the payment settled)
Free orders:      pending_payment → paid at once (total 0, payment method `free`), then as card orders
Ends:             pending_payment → expired (sweeper) | payment_failed (PaymentIntent canceled by Stripe,
                  or the payment could not be started at checkout)
                  pending_payment / paid / confirmed → cancelled (customer or staff)
                  preparing / ready_for_pickup → cancelled (staff only)
"""

from __future__ import annotations

from app.models.order import DeliveryMethod, OrderStatus

S = OrderStatus

_EDGES: dict[OrderStatus, set[OrderStatus]] = {
    S.pending_payment: {S.paid, S.cancelled, S.payment_failed, S.expired},
    S.paid: {S.preparing, S.cancelled},
    S.confirmed: {S.preparing, S.cancelled},
    S.preparing: {S.out_for_delivery, S.ready_for_pickup, S.cancelled},
    S.out_for_delivery: {S.delivered},
    S.ready_for_pickup: {S.picked_up, S.cancelled},
}

TERMINAL = frozenset({S.delivered, S.picked_up, S.cancelled, S.payment_failed, S.expired})
# Orders that ended without being fulfilled: whatever they held is given back.
CLOSED = frozenset({S.cancelled, S.payment_failed, S.expired})
CUSTOMER_CANCELLABLE = frozenset({S.pending_payment, S.paid, S.confirmed})
# Statuses only payments move an order into (Stripe's PaymentIntent, the expiry sweeper, checkout).
PAYMENT_DRIVEN = frozenset({S.paid, S.payment_failed, S.expired})
# What staff may set with POST /admin/orders/{id}/status: every target of an edge except the payment-driven ones.
STAFF_TARGETS = frozenset(t for targets in _EDGES.values() for t in targets) - PAYMENT_DRIVEN
FULFILLED = frozenset({S.delivered, S.picked_up})

_METHOD_ONLY = {
    S.out_for_delivery: DeliveryMethod.delivery, S.delivered: DeliveryMethod.delivery,
    S.ready_for_pickup: DeliveryMethod.pickup, S.picked_up: DeliveryMethod.pickup,
}


def can_move(current: OrderStatus, target: OrderStatus, method: DeliveryMethod) -> bool:
    """Whether one step from ``current`` to ``target`` is an edge of the machine for an order of ``method``."""
    if target not in _EDGES.get(current, set()):
        return False
    only = _METHOD_ONLY.get(target)
    return only is None or only == method


def next_statuses(current: OrderStatus, method: DeliveryMethod) -> list[OrderStatus]:
    """The statuses an order of ``method`` can move to from ``current``, in ``OrderStatus`` order."""
    return [t for t in OrderStatus if can_move(current, t, method)]
