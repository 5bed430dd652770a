"""The order lifecycle: the status machine and the side effects of entering each status (like Netflix
Dispatch's ``flows.py``), the release of what an order held, staff settlement, notes and flags.

Every status change is one version-guarded write (``move``); its side effects run after it, each exactly
once: the sale and the release are claimed by conditional updates of order-level markers
(``order_repository``), emails are deduplicated by the outbox, Stripe writes carry idempotency keys derived
from our ids. Placement (``order_placement``), payment settlement (``order_payments``) and refunds
(``refunds``) build on this class; ``orders.OrderService`` is all of them together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel

from app.config import Settings
from app.core.clock import utcnow
from app.core.errors import AppError, Conflict
from app.core.versioned import NOW
from app.models.order import (
    SETTLED,
    Order,
    OrderFlag,
    OrderNote,
    OrderStatus,
    PaymentMethod,
    PaymentStatus,
    StatusChange,
)
from app.models.order_states import CLOSED, can_move
from app.models.user import User
from app.services import order_repository
from app.services.cart import CartService
from app.services.delivery import DeliveryService
from app.services.email import EmailService
from app.services.inventory import record_sale, return_stock
from app.services.order_access import load_for_customer, load_order
from app.services.order_errors import IllegalTransition, NotSettleable
from app.services.order_events import update_versioned  # this one publishes each status change
from app.services.order_notify import OrderNotifier
from app.services.promo import PromoService
from app.services.refunds import OrderRefunds
from app.services.sales_rollups import SalesRollups
from app.services.stock_host import StockHost
from app.services.stripe_integration.gateway import StripeGateway

log = logging.getLogger("app.orders")

S = OrderStatus
MAX_NOTES = 200


def dump_all(items: Sequence[BaseModel]) -> list[dict[str, Any]]:
    """``items`` (pydantic models) as the plain dicts a ``$set`` of their array writes."""
    return [i.model_dump() for i in items]


class OrderLifecycle:
    """The status machine of one shop's orders and everything it sets off."""

    def __init__(self, settings: Settings, email: EmailService, gateway: StripeGateway, *, stock: StockHost,
                 delivery: DeliveryService | None = None, promo: PromoService | None = None,
                 cart: CartService | None = None, notify_customers: bool = True) -> None:
        """``stock``: what taking and returning stock needs (``app.composition.Runtime``); ``delivery``,
        ``promo``, ``cart``: the services whose holds are taken and released and whose cart is cleared (None:
        nothing to do there); ``notify_customers=False``: a service that queues no order emails (the demo seeder)."""
        self.settings = settings
        self.stock = stock
        self.gateway = gateway
        self.notify = OrderNotifier(settings, email, enabled=notify_customers)
        self.delivery = delivery
        self.promo = promo
        self.cart = cart
        self.rollups = SalesRollups(settings)
        self.refunds = OrderRefunds(self)

    # --- loading ------------------------------------------------------------------------------------
    async def get(self, order_id: str) -> Order:
        """The order; NotFound (404) for an unknown id (``app.services.order_access.load_order``)."""
        return await load_order(order_id)

    async def get_for_customer(self, order_id: str, user: User | None, token: str | None) -> Order:
        """The owner (signed in) or the holder of the order's access token; anyone else gets a 404."""
        return await load_for_customer(order_id, user, token)

    # --- the status machine ---------------------------------------------------------------------------
    async def move(self, order_id: str, to: OrderStatus, *, by: str, note: str | None = None,
                   extra: Callable[[Order], dict[str, Any]] | None = None,
                   check: Callable[[Order], None] | None = None, current: Order | None = None) -> Order:
        """One forward step along the machine (409 ``illegal-transition`` otherwise), then its side effects.
        ``current``: the order as the caller just read it (spares reading it again; a stale one is re-read).
        Entering ``paid`` claims the sale (``reservation.sold``) in the same write, unless it was released."""
        sold: list[bool] = []

        def mutate(doc: Order) -> dict[str, Any]:
            if not can_move(doc.status, to, doc.delivery.method):
                raise IllegalTransition(f"An order that is {doc.status.value} cannot become {to.value}.",
                                        current_status=doc.status.value)
            if check is not None:
                check(doc)
            history = [*doc.status_history, StatusChange(by=by, from_status=doc.status, to_status=to, note=note)]
            changes: dict[str, Any] = {"status": to, "status_history": dump_all(history), "updated_at": NOW,
                                       "expires_at": None}
            if extra is not None:
                changes.update(extra(doc))
            sold[:] = [to == S.paid and not doc.reservation.sold and not doc.reservation.released]
            if sold[0]:
                changes["reservation"] = doc.reservation.model_copy(update={"sold": True,
                                                                             "sold_at": utcnow()}).model_dump()
            return changes

        order = await update_versioned(Order, order_id, mutate, rollups=self.rollups, current=current)
        await self._on_enter(order, to, sold=bool(sold and sold[0]))
        return await self.get(order.id) if to in CLOSED else order  # a cancellation may have refunded

    async def try_move(self, order_id: str, to: OrderStatus, **kw: Any) -> Order | None:
        """``move`` for webhooks and jobs: a step the order can no longer take is no change, not an error."""
        try:
            return await self.move(order_id, to, **kw)
        except IllegalTransition:
            return None

    async def _on_enter(self, order: Order, status: OrderStatus, *, sold: bool = False) -> None:
        """Side effects of entering ``status``; ``sold``: the write that made the change claimed the sale."""
        if status in (S.paid, S.confirmed):
            if sold:
                await record_sale([(h.product_id, h.size, h.quantity) for h in order.reservation.stock])
            if order.cart_id and self.cart is not None:
                await self.cart.clear(order.cart_id)
            await self.notify.send(order, "order_confirmation")
        elif status in CLOSED:
            await self.release(order)
            if order.cart_id and order.payment_status not in SETTLED:
                # Unpaid and over: the cart's version is free for a new checkout (one version, one live order).
                await order_repository.free_cart_version(order.cart_id, order.cart_version)
            if status == S.cancelled:
                await self._after_cancel(order)
        else:
            await self.notify.status_changed(order, status)

    async def _after_cancel(self, order: Order) -> None:
        refund_note = ""
        if order.payment_method == PaymentMethod.card and order.amount_paid > order.amount_refunded:
            try:
                order = await self.refunds.refund(order.id, amount=None, reason="Order cancelled", by="system",
                                                  key="cancel", notify=False)
                refund_note = "The full amount paid was refunded to your card."
            except AppError as exc:  # left pending (retried by the reconciliation job) or flagged for staff
                log.warning("refund of cancelled order %s not done: %s", order.id, exc.detail)
                refund_note = "Your refund is being processed."
        elif order.payment_method == PaymentMethod.pay_on_pickup and order.payment_status in SETTLED:
            await self.flag(order.id, "refund-at-counter", "A settled pay-on-pickup order was cancelled.")
        last = order.status_history[-1] if order.status_history else None
        reason = f" Reason: {last.note}" if last and last.note else ""
        await self.notify.send(order, "order_cancelled", reason=reason, refund_note=refund_note)

    # --- reservation: release exactly once (the sale is claimed by the write that makes the order paid) -----
    async def release(self, order: Order) -> bool:
        """Give back stock, slot and promo use. The slot and promo services are idempotent per order and
        run first (a failure leaves the order to be released again); stock is returned once, after the
        ``released_at`` marker is claimed."""
        await self._release_holds(order)
        current = await order_repository.claim_release(order.id)
        if current is None:
            return False
        for hold in current.reservation.stock:
            await return_stock(self.stock, hold.product_id, hold.size, hold.quantity, ref=order.id)
        if current.reservation.sold:
            await record_sale([(h.product_id, h.size, h.quantity) for h in current.reservation.stock], sign=-1)
        return True

    async def _release_holds(self, order: Order) -> None:
        if order.reservation.slot_held and self.delivery is not None:
            await self.delivery.release_slot(order.id)
        if order.reservation.promo_code and self.promo is not None:
            await self.promo.give_back(order.id)

    async def _give_back(self, order: Order) -> None:
        """Undo a placement that never produced an order (nothing was recorded, so no marker is needed)."""
        await self._release_holds(order)
        for hold in order.reservation.stock:
            await return_stock(self.stock, hold.product_id, hold.size, hold.quantity, ref=order.id)

    async def settle_at_counter(self, order_id: str, *, by: str, note: str | None) -> Order:
        def mutate(doc: Order) -> dict[str, Any]:
            if doc.payment_method != PaymentMethod.pay_on_pickup:
                raise NotSettleable("Only pay-on-pickup orders are settled by staff.")
            if doc.payment_status in SETTLED:
                raise Conflict("This order's payment is already settled.", code="already-settled")
            if doc.status in CLOSED:
                raise NotSettleable(f"An order that is {doc.status.value} cannot be settled.")
            text = "Payment settled at the counter." + (f" {note}" if note else "")
            notes = [*doc.notes, OrderNote(by=by, text=text)]
            return {"payment_status": PaymentStatus.paid, "amount_paid": doc.amounts.total, "paid_at": NOW,
                    "notes": dump_all(notes[-MAX_NOTES:]), "updated_at": NOW}

        return await update_versioned(Order, order_id, mutate, rollups=self.rollups)

    async def add_note(self, order_id: str, *, by: str, text: str) -> Order:
        def mutate(doc: Order) -> dict[str, Any]:
            return {"notes": dump_all([*doc.notes, OrderNote(by=by, text=text)][-MAX_NOTES:]), "updated_at": NOW}

        return await update_versioned(Order, order_id, mutate, rollups=self.rollups)

    async def flag(self, order_id: str, code: str, detail: str) -> None:
        def mutate(doc: Order) -> dict[str, Any]:
            if any(f.code == code for f in doc.flags):
                return {}
            return {"flags": dump_all([*doc.flags, OrderFlag(code=code, detail=detail)]), "updated_at": NOW}

        await update_versioned(Order, order_id, mutate, rollups=self.rollups)
        log.warning("order %s flagged %s: %s", order_id, code, detail)
