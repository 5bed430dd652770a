"""Live order events: every change of an order's status or payment status is published on the event bus.

``app/services/order_lifecycle.py``, ``order_payments.py`` and ``refunds.py`` write every status and payment
change of an order through ``update_versioned``; they import the one below, which is the core version-guarded
write plus a publication when the status or the payment status changed (and, when the payment became paid, the analytics
``order_paid`` event), and the daily sales rollups kept with it: a write that changes the order's share of
them queues that change in the same write, and it is applied right after (``app.services.sales_rollups``).
``publish_order`` publishes a newly placed order. Each order event goes to
``order:<id>`` (the order's own stream, event ``order``) and to ``staff`` (event ``order.new`` when the
order enters paid or confirmed, i.e. a new order to prepare; ``order.status`` otherwise), keyed by the
order id with its ``version`` as the sequence, so streams drop an older state that arrives late.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from app.core import bus
from app.core.versioned import Mutation
from app.core.versioned import update_versioned as _update_versioned
from app.models.order import Order, OrderStatus, PaymentStatus
from app.services import analytics
from app.services.sales_rollups import SalesRollups

log = logging.getLogger("app.orders")

NEW_WORK = (OrderStatus.paid, OrderStatus.confirmed)
# Money that arrived for an order already over is flagged for a refund, not a sale (analytics' "paid").
NOT_A_SALE = (OrderStatus.cancelled, OrderStatus.expired, OrderStatus.payment_failed)


def order_view(order: Order) -> dict[str, Any]:
    """The ``order`` event's data (schemas/events.py OrderEvent)."""
    return {"order_id": order.id, "number": order.number, "status": order.status.value,
            "payment_status": order.payment_status.value, "total": order.amounts.total,
            "currency": order.amounts.currency, "delivery_method": order.delivery.method.value,
            "delivery_date": order.delivery.date, "updated_at": order.updated_at.isoformat().replace("+00:00", "Z")}


def publish_order(order: Order, previous_status: OrderStatus | None = None) -> None:
    """Publish ``order``'s current state to its stream and to the staff board (``previous_status`` None: just
    placed, which the board shows only for an order ready to prepare, not one waiting for its payment)."""
    data = order_view(order)
    bus.publish(f"order:{order.id}", "order", data, key=order.id, seq=order.version)
    new = order.status in NEW_WORK and previous_status not in NEW_WORK
    if previous_status is None and not new:
        return
    bus.publish("staff", "order.new" if new else "order.status", data, key=order.id, seq=order.version)


async def update_versioned(document: type[Order], doc_id: str, mutate: Mutation, *, rollups: SalesRollups,
                           **kw: Any) -> Order:
    """``app.core.versioned.update_versioned`` of an order (``current=`` a snapshot the caller just read),
    publishing it when its status or payment changed and keeping ``rollups`` (a change of its share is
    queued in the same write, then applied; if applying fails, the background job applies it later)."""
    before: list[Order] = []

    async def watch(doc: Order) -> dict[str, Any]:
        before[:] = [doc]
        changes = mutate(doc)
        if isinstance(changes, Awaitable):
            changes = await changes
        return rollups.queue(doc, changes) if changes else changes

    result: Order = await _update_versioned(document, doc_id, watch, **kw)
    if before and result.version != before[0].version:
        old = before[0]
        if (result.status, result.payment_status) != (old.status, old.payment_status):
            publish_order(result, old.status)
            if result.payment_status == PaymentStatus.paid and old.payment_status != PaymentStatus.paid \
                    and result.status not in NOT_A_SALE:
                analytics.record_order_paid(result)
        if result.rollup.pending_any:
            try:
                await rollups.settle(result)
            except Exception:
                log.exception("rollup change of order %s left pending for the background job", result.id)
    return result
