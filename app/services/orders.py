"""The order lifecycle: placing (stock reservation), the status machine and its side effects, payment
settlement from Stripe's PaymentIntent state (or at once for a free order), cancellation, staff notes and
flags. Refunds live in ``app.services.refunds`` (``OrderService.refunds``).

Every status change is one version-guarded write (``move``); its side effects run after it, each
exactly once: the sale and the release are claimed by conditional updates of order-level markers,
emails are deduplicated by the outbox, Stripe writes carry idempotency keys derived from our ids.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.config import Settings
from app.core.clock import utcnow
from app.core.errors import AppError, Conflict
from app.core.versioned import NOW
from app.models.cart import Cart
from app.models.counter import Counter
from app.models.order import (
    SETTLED,
    Order,
    OrderFlag,
    OrderLine,
    OrderNote,
    OrderStatus,
    PaymentMethod,
    PaymentStatus,
    StatusChange,
    StockHold,
)
from app.models.order_states import CLOSED, CUSTOMER_CANCELLABLE, FULFILLED, can_move
from app.models.user import User
from app.services.email import EmailService
from app.services.inventory import available, record_sale, return_stock, take_stock
from app.services.order_access import load_for_customer, load_order
from app.services.order_errors import CartAlreadyOrdered, IllegalTransition, NotSettleable, OutOfStock
from app.services.order_events import publish_order, update_versioned  # this one publishes each status change
from app.services.order_notify import OrderNotifier, money
from app.services.refunds import OrderRefunds
from app.services.sales_rollups import SalesRollups
from app.services.stock_host import StockHost
from app.services.stripe_integration.gateway import StripeGateway

log = logging.getLogger("app.orders")

S = OrderStatus
MAX_NOTES = 200
ORDER_NUMBER_BASE = 10000


class SlotReleaser(Protocol):
    async def release_slot(self, order_id: str) -> None: ...


class PromoReleaser(Protocol):
    async def give_back(self, order_id: str) -> None: ...


class CartClearer(Protocol):
    async def clear(self, cart_id: str) -> None: ...


def _dump(items: list[Any]) -> list[dict[str, Any]]:
    return [i.model_dump() for i in items]


class OrderService:
    def __init__(self, settings: Settings, email: EmailService, gateway: StripeGateway, *, stock: StockHost,
                 delivery: SlotReleaser | None = None, promo: PromoReleaser | None = None,
                 cart: CartClearer | None = None, notify_customers: bool = True) -> None:
        """``stock``: what taking and returning stock needs (``app.composition.Runtime``); ``delivery``,
        ``promo``, ``cart``: the services whose holds are released and whose cart is cleared (None: nothing
        to do there); ``notify_customers=False``: a service that queues no order emails (the demo seeder)."""
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

    # --- placing ------------------------------------------------------------------------------------
    async def next_number(self) -> str:
        raw = await Counter.get_pymongo_collection().find_one_and_update(
            {"_id": "order_number"}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER)
        return f"AF-{ORDER_NUMBER_BASE + raw['value']}"

    async def reserve_stock(self, lines: list[OrderLine], order_id: str) -> list[StockHold]:
        """Take every line's units (summed per product+size) or nothing: 409 naming the first short line."""
        wanted: dict[tuple[str, str], int] = {}
        for line in lines:
            wanted[(line.product_id, line.size)] = wanted.get((line.product_id, line.size), 0) + line.quantity
        taken: list[StockHold] = []
        for (product_id, size), qty in wanted.items():
            if await take_stock(self.stock, product_id, size, qty, ref=order_id):
                taken.append(StockHold(product_id=product_id, size=size, quantity=qty))
                continue
            for hold in taken:
                await return_stock(self.stock, hold.product_id, hold.size, hold.quantity, ref=order_id)
            left = await available(product_id, size)
            index = next(i for i, ln in enumerate(lines) if (ln.product_id, ln.size) == (product_id, size))
            line = lines[index]
            raise OutOfStock(f"Only {left} of {line.product_name} ({line.size_name}) left; your order needs {qty}.",
                             line=index, product_id=product_id, size=size, available=left,
                           requested=qty)
        return taken

    async def place(self, order: Order, *, hold: Callable[[Order], Awaitable[None]] | None = None) -> Order:
        """Reserve stock, let ``hold`` take the slot and promo use (recording each in ``order.reservation``),
        insert. Anything taken is given back if a later step fails. An order placed ``confirmed`` (pay on
        pickup) is a sale at once: it is stored with ``reservation.sold`` set, so no second write claims it."""
        if not order.status_history:
            order.status_history = [StatusChange(by=order.contact.user_id or "guest", from_status=None,
                                                 to_status=order.status)]
        order.reservation.stock = await self.reserve_stock(order.lines, order.id)
        try:
            if hold is not None:
                await hold(order)
            if order.status == S.confirmed:
                order.reservation.sold, order.reservation.sold_at = True, utcnow()
            await order.insert()
        except BaseException as exc:
            await self._give_back(order)
            if isinstance(exc, DuplicateKeyError):
                raise CartAlreadyOrdered() from exc
            raise
        publish_order(order)
        if order.status == S.confirmed:
            await self._on_enter(order, S.confirmed, sold=True)
        return order

    async def start_card_payment(self, order: Order) -> Any:
        """Create the order's PaymentIntent (the key derived from the order id makes a repeat return the same
        intent) and remember its id. Returns the intent (its ``client_secret`` goes to Stripe.js)."""
        a = order.amounts
        intent = await self.gateway.create_intent(order_id=order.id, number=order.number, amount=a.total,
                                                  currency=a.currency, email=order.contact.email)
        await Order.get_pymongo_collection().update_one({"_id": order.id}, {"$set": {"payment_intent_id": intent.id}})
        order.payment_intent_id = intent.id
        return intent

    async def settle_free(self, order: Order) -> Order:
        """A placed order with nothing to pay (total 0): paid at once (payment method ``free``, no
        PaymentIntent), so the sale, the cart, the receipt and the rest of the lifecycle go as usual."""
        payment = {"payment_status": PaymentStatus.paid, "amount_paid": 0, "paid_at": NOW}
        return await self.move(order.id, S.paid, by="system", note="Nothing to pay.", extra=lambda _doc: payment,
                               current=order)

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
            changes: dict[str, Any] = {"status": to, "status_history": _dump(history), "updated_at": NOW,
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
                await Cart.get_pymongo_collection().update_one(
                    {"_id": order.cart_id, "version": order.cart_version}, {"$inc": {"version": 1}})
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
        before = await Order.get_pymongo_collection().find_one_and_update(
            {"_id": order.id, "reservation.released": False},
            {"$set": {"reservation.released": True}, "$currentDate": {"reservation.released_at": True}},
            return_document=ReturnDocument.BEFORE)
        if before is None:
            return False
        current = Order.model_validate(before)
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

    # --- payments ---------------------------------------------------------------------------------------
    async def apply_intent(self, order: Order, intent: Any, *, failure_key: str | None = None) -> Order:
        """Settle ``order`` from the PaymentIntent's current state (never from an event's place in time)."""
        if intent.status == "succeeded":
            return await self._paid(order, intent)
        if intent.status == "canceled":
            return await self.try_move(order.id, S.payment_failed, by="stripe",
                                       note="The payment was canceled.") or order
        if intent.status == "requires_payment_method" and intent.last_payment_error and failure_key:
            return await self._failed_attempt(order, intent)
        return order

    async def _paid(self, order: Order, intent: Any) -> Order:
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
            return {**payment, "flags": _dump(flags), "updated_at": NOW}

        return await update_versioned(Order, order.id, record_late, rollups=self.rollups)

    async def _failed_attempt(self, order: Order, intent: Any) -> Order:
        message = str(getattr(intent.last_payment_error, "message", None) or "The payment failed.")[:300]

        def mutate(doc: Order) -> dict[str, Any]:
            if doc.status != S.pending_payment or doc.payment_status in SETTLED:
                return {}
            return {"payment_status": PaymentStatus.failed, "payment_attempts": doc.payment_attempts + 1,
                    "last_payment_error": message, "updated_at": NOW}

        return await update_versioned(Order, order.id, mutate, rollups=self.rollups, current=order)

    # --- customer and staff actions ------------------------------------------------------------------
    async def cancel(self, order: Order, *, by: str, note: str | None = None, staff: bool = False) -> Order:
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
        if to == S.cancelled:
            return await self.cancel(order, by=by, note=note, staff=True)

        def check(doc: Order) -> None:
            if (to == S.picked_up and doc.payment_method == PaymentMethod.pay_on_pickup
                    and doc.payment_status not in SETTLED):
                raise Conflict("Settle the payment before handing the order over.", code="payment-not-settled")

        return await self.move(order.id, to, by=by, note=note, check=check)

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
                    "notes": _dump(notes[-MAX_NOTES:]), "updated_at": NOW}

        return await update_versioned(Order, order_id, mutate, rollups=self.rollups)

    async def add_note(self, order_id: str, *, by: str, text: str) -> Order:
        def mutate(doc: Order) -> dict[str, Any]:
            return {"notes": _dump([*doc.notes, OrderNote(by=by, text=text)][-MAX_NOTES:]), "updated_at": NOW}

        return await update_versioned(Order, order_id, mutate, rollups=self.rollups)

    async def flag(self, order_id: str, code: str, detail: str) -> None:
        def mutate(doc: Order) -> dict[str, Any]:
            if any(f.code == code for f in doc.flags):
                return {}
            return {"flags": _dump([*doc.flags, OrderFlag(code=code, detail=detail)]), "updated_at": NOW}

        await update_versioned(Order, order_id, mutate, rollups=self.rollups)
        log.warning("order %s flagged %s: %s", order_id, code, detail)


async def has_delivered_purchase(user_id: str, product_id: str) -> bool:
    """True when ``user_id`` received ``product_id`` (a delivered or picked-up order): verified purchase."""
    found = await Order.find({"contact.user_id": user_id, "lines.product_id": product_id,
                              "status": {"$in": [s.value for s in FULFILLED]}}).limit(1).to_list()
    return bool(found)
