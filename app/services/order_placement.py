"""Placing an order: its number, the stock it reserves (all lines or nothing), the delivery slot and promo
use it holds, and its insertion. Anything taken is given back when a later step fails."""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from app.core.clock import utcnow
from app.models.order import Order, OrderLine, OrderStatus, StatusChange, StockHold
from app.services import order_repository
from app.services.delivery import DeliveryQuote
from app.services.inventory import available, return_stock, take_stock
from app.services.order_errors import CartAlreadyOrdered, OutOfStock
from app.services.order_events import publish_order
from app.services.order_lifecycle import OrderLifecycle

S = OrderStatus


class OrderPlacement(OrderLifecycle):
    """Placement on top of the lifecycle (an order placed ``confirmed`` enters that status at once)."""

    async def next_number(self) -> str:
        """The next human order number (``AF-10001``, …)."""
        return await order_repository.next_order_number()

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

    async def place(self, order: Order, *, slot: DeliveryQuote | None = None, promo: bool = False) -> Order:
        """Reserve stock, hold the quoted delivery ``slot`` (when given) and a use of the order's promo code (when
        ``promo``), recording each in ``order.reservation``, and insert. Anything taken is given back if a later
        step fails (409 ``out-of-stock``, ``slot-full``, a promo refusal, ``cart-already-ordered``). An order
        placed ``confirmed`` (pay on pickup) is a sale at once: it is stored with ``reservation.sold`` set, so no
        second write claims it."""
        if not order.status_history:
            order.status_history = [StatusChange(by=order.contact.user_id or "guest", from_status=None,
                                                 to_status=order.status)]
        order.reservation.stock = await self.reserve_stock(order.lines, order.id)
        try:
            await self._hold(order, slot, promo)
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

    async def _hold(self, order: Order, slot: DeliveryQuote | None, promo: bool) -> None:
        if slot is not None and self.delivery is not None:
            await self.delivery.hold_slot(slot, order.id)
            order.reservation.slot_held = True
        if promo and order.promo_code and self.promo is not None:
            order.reservation.promo_code = order.promo_code  # give_back is a no-op if the take below fails
            await self.promo.take_use(order.promo_code, order_id=order.id, user_id=order.contact.user_id,
                                      email=order.contact.email)
