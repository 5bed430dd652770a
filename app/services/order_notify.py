"""Order emails through the outbox, deduplicated per order and event.

Receipts (confirmation, cancellation, refund) are transactional and always sent; progress updates
(preparing, out for delivery, delivered, ready for pickup, picked up) respect the customer's
``preferences.email_notifications``. Guests get every email: they have no preferences to set.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from app.config import Settings
from app.core.money import money
from app.models.order import DeliveryMethod, Order, OrderStatus, PaymentMethod
from app.models.user import User
from app.services.email import EmailService
from app.services.order_access import order_access_token

RECEIPTS = frozenset({"order_confirmation", "order_cancelled", "order_refunded"})
PROGRESS = {
    OrderStatus.preparing: "order_preparing",
    OrderStatus.out_for_delivery: "order_out_for_delivery",
    OrderStatus.delivered: "order_delivered",
    OrderStatus.ready_for_pickup: "order_ready_for_pickup",
    OrderStatus.picked_up: "order_picked_up",
}




def summary(order: Order, tz: tzinfo) -> str:
    cur = order.amounts.currency
    rows = [f"Order {order.number}"]
    for line in order.lines:
        extras = ", ".join(a.name for a in line.add_ons)
        rows.append(f"  {line.quantity} × {line.product_name} ({line.size_name}{', ' + extras if extras else ''})"
                    f" — {money(line.line_total, cur)}")
        if line.gift_message:
            rows.append(f"      Gift message: {line.gift_message}")
    a = order.amounts
    rows += [f"Subtotal: {money(a.subtotal, cur)}"]
    if a.discount:
        rows.append(f"Discount{' (' + order.promo_code + ')' if order.promo_code else ''}: -{money(a.discount, cur)}")
    rows += [f"Delivery: {money(a.delivery_fee, cur)}", f"Tax: {money(a.tax, cur)}", f"Total: {money(a.total, cur)}",
             "", when(order, tz)]
    d = order.delivery
    if d.method == DeliveryMethod.delivery and d.address:
        addr = d.address
        rows.append(f"To: {d.recipient_name}, {addr.line1}{', ' + addr.line2 if addr.line2 else ''}, "
                    f"{addr.city}, {addr.state} {addr.zip}")
    if d.card_message:
        rows.append(f"Card message: {d.card_message}")
    if order.payment_method == PaymentMethod.pay_on_pickup:
        rows.append("Payment: at the counter when you pick up your order.")
    return "\n".join(rows)


def when(order: Order, tz: tzinfo) -> str:
    d = order.delivery
    verb = "Delivery" if d.method == DeliveryMethod.delivery else "Pickup"
    start, end = d.window_start.astimezone(tz), d.window_end.astimezone(tz)
    return f"{verb}: {d.date}, {d.slot} ({start:%H:%M}–{end:%H:%M})"


class OrderNotifier:
    """``enabled=False`` queues nothing (orders placed by the demo seeder for example.com customers)."""

    def __init__(self, settings: Settings, email: EmailService, *, enabled: bool = True) -> None:
        self.settings = settings
        self.email = email
        self.enabled = enabled

    def link(self, order: Order) -> str:
        base = f"{self.settings.storefront_url.rstrip('/')}/orders/{order.id}"
        if order.contact.user_id is None:
            return f"{base}?token={order_access_token(self.settings, order.id, order.access_token_hash)}"
        return base

    async def _recipient(self, order: Order, template: str) -> tuple[str, str] | None:
        if order.contact.user_id is None:
            return order.contact.email, order.contact.name or "there"
        user = await User.get(order.contact.user_id)
        if user is None or user.deleted_at is not None:
            return None
        if template not in RECEIPTS and not user.preferences.email_notifications:
            return None
        return user.email, user.first_name

    async def send(self, order: Order, template: str, *, key: str | None = None, **extra: Any) -> bool:
        if not self.enabled:
            return False
        to = await self._recipient(order, template)
        if to is None:
            return False
        tz = self.settings.tz
        context = {"name": to[1], "number": order.number, "link": self.link(order), "when": when(order, tz),
                   "recipient": order.delivery.recipient_name, "summary": summary(order, tz), "payment_note": "",
                   "reason": "", "refund_note": "", **extra}
        return await self.email.enqueue(to=to[0], template=template, context=context,
                                        dedupe_key=f"order:{order.id}:{key or template}",
                                        ordering_key=f"order:{order.id}")

    async def status_changed(self, order: Order, status: OrderStatus) -> None:
        template = PROGRESS.get(status)
        if template is None:
            return
        extra = {}
        if status == OrderStatus.ready_for_pickup and order.payment_status.value == "unpaid":
            due = money(order.amounts.total, order.amounts.currency)
            extra["payment_note"] = f"Please pay {due} at the counter.\n\n"
        await self.send(order, template, **extra)
