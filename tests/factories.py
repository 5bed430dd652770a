"""Test data written straight to the database (the catalog's admin API lives on another branch), and orders
built the way checkout builds them (placed through the order service by tests/stripe_fixtures.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from app.core.clock import utcnow
from app.core.ids import new_id
from app.models.catalog import AddOn, AddOnKind, Category, Product, ProductStatus, Size
from app.models.order import (
    DeliveryMethod,
    Order,
    OrderAddress,
    OrderAmounts,
    OrderContact,
    OrderDelivery,
    OrderLine,
    OrderStatus,
    PaymentMethod,
    StockHold,
)


async def make_category(name: str = "Roses", parent: Category | None = None) -> Category:
    category = Category(name=name, slug=f"{name.lower()}-{uuid.uuid4().hex[:6]}",
                        parent_id=parent.id if parent else None,
                        ancestors=[*parent.ancestors, parent.id] if parent else [],
                        depth=parent.depth + 1 if parent else 0)
    await category.insert()
    return category


async def make_product(*, name: str = "Blush Garden", stock: dict[str, int] | None = None,
                       prices: dict[str, int] | None = None, category: Category | None = None,
                       status: ProductStatus = ProductStatus.active, **fields: Any) -> Product:
    """An active bouquet with sizes standard/deluxe (4500/6500 cents unless `prices`), add-ons
    `glass-vase` (1500) and `chocolates` (1200), and stock (5 each unless `stock`)."""
    prices = prices or {"standard": 4500, "deluxe": 6500}
    stock = stock if stock is not None else {code: 5 for code in prices}
    category_path = [category.id, *reversed(category.ancestors)] if category else []
    product = Product(
        name=name, slug=f"{name.lower().replace(' ', '-')}-{uuid.uuid4().hex[:6]}",
        category_id=category.id if category else "cat_none", category_path=category_path,
        sizes=[Size(code=code, name=code.title(), price=price) for code, price in prices.items()],
        stock=stock, status=status, price_min=min(prices.values()),
        add_ons=[AddOn(code="glass-vase", name="Glass vase", kind=AddOnKind.vase, price=1500),
                 AddOn(code="chocolates", name="Chocolates", kind=AddOnKind.extra, price=1200)],
        **fields,
    )
    await product.insert()
    return product


def line_for(product: Product, size: str = "standard", quantity: int = 1, gift_message: str | None = None,
             ) -> OrderLine:
    price = next(s.price for s in product.sizes if s.code == size)
    return OrderLine(product_id=product.id, product_name=product.name, product_slug=product.slug, size=size,
                     size_name=size.title(), unit_price=price, quantity=quantity, line_total=price * quantity,
                     gift_message=gift_message)


def delivery(method: DeliveryMethod = DeliveryMethod.delivery, date: str = "2026-02-14") -> OrderDelivery:
    start = datetime.fromisoformat(date).replace(hour=14, tzinfo=UTC)
    return OrderDelivery(
        method=method, zone_id="zone_manhattan" if method == DeliveryMethod.delivery else None,
        recipient_name="Mia Rose", recipient_phone="+12125550199",
        address=OrderAddress(line1="1 Bleecker St", city="New York", state="NY", zip="10012")
        if method == DeliveryMethod.delivery else None,
        date=date, slot="afternoon", window_start=start, window_end=start + timedelta(hours=4),
        card_message="Happy Valentine's Day")


def build_order(lines: list[OrderLine], *, number: str, user_id: str | None = None, email: str = "buyer@example.com",
                method: DeliveryMethod = DeliveryMethod.delivery, payment: PaymentMethod = PaymentMethod.card,
                delivery_fee: int = 1200, minutes: int = 30, **fields: Any) -> Order:
    subtotal = sum(ln.line_total for ln in lines)
    fee = delivery_fee if method == DeliveryMethod.delivery else 0
    tax = subtotal * 8875 // 100000
    status = OrderStatus.pending_payment if payment == PaymentMethod.card else OrderStatus.confirmed
    return Order(
        number=number, status=status, lines=lines,
        amounts=OrderAmounts(subtotal=subtotal, delivery_fee=fee, tax=tax, total=subtotal + fee + tax),
        delivery=delivery(method), contact=OrderContact(user_id=user_id, email=email, phone="+12125550100",
                                                        name="Olivia Bloom"),
        payment_method=payment,
        expires_at=utcnow() + timedelta(minutes=minutes) if status == OrderStatus.pending_payment else None,
        **fields)


def make_order_doc(*, number: str | None = None, status: str = "pending_payment", user_id: str | None = None,
                   cart_id: str | None = None, cart_version: int | None = None, delivery_date: str = "2026-02-14",
                   expires_at: datetime | None = None, payment_intent_id: str | None = None) -> Order:
    """A bare order document for storage-contract tests (no stock taken)."""
    line = OrderLine(product_id=new_id("prd"), product_name="Rose", product_slug="rose", size="standard",
                     size_name="Standard", unit_price=4500, quantity=1, line_total=4500)
    order = build_order([line], number=number or f"AF-{uuid.uuid4().hex[:8]}", user_id=user_id,
                        cart_id=cart_id, cart_version=cart_version, payment_intent_id=payment_intent_id)
    order.status = OrderStatus(status)
    order.delivery = delivery(date=delivery_date)
    order.expires_at = expires_at
    order.reservation.stock = [StockHold(product_id=line.product_id, size="standard", quantity=1)]
    return order
