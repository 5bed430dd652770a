"""Order API schemas: what customers, guests and staff see, and the bodies they send."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field

from app.core.pagination import PageParams
from app.core.text import FreeText
from app.core.types import Int, RequestDate, RequestInstant, UtcDateTime
from app.models.order import (
    DeliveryMethod,
    Order,
    OrderStatus,
    PaymentMethod,
    PaymentStatus,
    RefundStatus,
)
from app.models.order_states import CUSTOMER_CANCELLABLE, STAFF_TARGETS, next_statuses
from app.schemas.common import StrictModel


class OrderAddOnOut(BaseModel):
    code: str
    name: str
    price: int


class OrderLineOut(BaseModel):
    product_id: str
    product_name: str
    product_slug: str
    size: str
    size_name: str
    add_ons: list[OrderAddOnOut]
    unit_price: int = Field(description="Cents: size price plus add-ons.")
    quantity: int
    line_total: int
    gift_message: str | None


class AmountsOut(BaseModel):
    subtotal: int
    discount: int
    delivery_fee: int
    tax: int
    total: int
    currency: str


class OrderAddressOut(BaseModel):
    line1: str
    line2: str | None
    city: str
    state: str
    zip: str


class DeliveryOut(BaseModel):
    method: DeliveryMethod
    zone_id: str | None
    recipient_name: str
    recipient_phone: str
    address: OrderAddressOut | None
    date: date
    slot: str
    window_start: UtcDateTime
    window_end: UtcDateTime
    card_message: str | None
    instructions: str | None


class ContactOut(BaseModel):
    user_id: str | None
    email: str
    phone: str | None
    name: str | None


class OrderOut(BaseModel):
    id: str
    number: str
    status: OrderStatus
    payment_status: PaymentStatus
    payment_method: PaymentMethod
    lines: list[OrderLineOut]
    amounts: AmountsOut
    promo_code: str | None
    delivery: DeliveryOut
    contact: ContactOut
    amount_paid: int
    amount_refunded: int
    paid_at: UtcDateTime | None
    expires_at: UtcDateTime | None = Field(description="Unpaid orders are released after this instant.")
    can_cancel: bool
    created_at: UtcDateTime
    updated_at: UtcDateTime


class OrderSummaryOut(BaseModel):
    id: str
    number: str
    status: OrderStatus
    payment_status: PaymentStatus
    total: int
    currency: str
    item_count: int
    delivery_method: DeliveryMethod
    delivery_date: date
    created_at: UtcDateTime


class TrackingStep(BaseModel):
    status: OrderStatus
    at: UtcDateTime
    note: str | None


class TrackingOut(BaseModel):
    id: str
    number: str
    status: OrderStatus
    delivery_method: DeliveryMethod
    delivery_date: date
    slot: str
    window_start: UtcDateTime
    window_end: UtcDateTime
    history: list[TrackingStep]


class StatusChangeOut(BaseModel):
    at: UtcDateTime
    by: str
    from_status: OrderStatus | None
    to_status: OrderStatus
    note: str | None


class NoteOut(BaseModel):
    id: str
    at: UtcDateTime
    by: str
    text: str


class FlagOut(BaseModel):
    code: str
    detail: str
    at: UtcDateTime


class RefundOut(BaseModel):
    id: str
    amount: int
    reason: str
    status: RefundStatus
    stripe_refund_id: str | None
    error: str | None
    by: str
    at: UtcDateTime


class ReservationOut(BaseModel):
    sold_at: UtcDateTime | None
    released_at: UtcDateTime | None
    slot_held: bool
    promo_code: str | None


class AdminOrderOut(OrderOut):
    payment_intent_id: str | None
    payment_attempts: int
    last_payment_error: str | None
    refunds: list[RefundOut]
    status_history: list[StatusChangeOut]
    notes: list[NoteOut]
    flags: list[FlagOut]
    reservation: ReservationOut
    next_statuses: list[OrderStatus]


# The statuses staff set by hand (POST /admin/orders/{id}/status), drawn from the state machine in OrderStatus order.
StaffStatus = StrEnum(  # type: ignore[misc]  # members come from the state machine, so they are not literals here
    "StaffStatus", [(s.name, s.value) for s in OrderStatus if s in STAFF_TARGETS])
StaffStatus.__doc__ = "Statuses staff set by hand; payment states come from payments (and `settle`)."


class StatusIn(StrictModel):
    status: StaffStatus
    note: Annotated[str, FreeText(500, multiline=True)] | None = None


class CancelIn(StrictModel):
    reason: Annotated[str, FreeText(500, multiline=True)] | None = None


class RefundIn(StrictModel):
    amount: Int | None = Field(None, ge=1, le=100_000_000, description="Cents; omitted: everything still refundable.")
    reason: Annotated[str, FreeText(500, min_length=1, multiline=True)]


class NoteIn(StrictModel):
    text: Annotated[str, FreeText(2000, min_length=1, multiline=True)]


class SettleIn(StrictModel):
    note: Annotated[str, FreeText(500, multiline=True)] | None = None


class AdminOrderFilters(PageParams):
    status: OrderStatus | None = None
    created_from: RequestInstant | None = None
    created_to: RequestInstant | None = None
    delivery_date: RequestDate | None = None
    zone: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    email: str | None = Field(None, min_length=3, max_length=254)
    number: str | None = Field(None, pattern=r"^[Aa][Ff]-\d{1,12}$")
    page: int | None = Field(None, ge=1, le=10_000, description="Page number (instead of `cursor`).")


def order_out(order: Order) -> OrderOut:
    return OrderOut.model_validate({**_base(order), "can_cancel": order.status in CUSTOMER_CANCELLABLE})


def admin_order_out(order: Order) -> AdminOrderOut:
    data = order.model_dump()
    return AdminOrderOut.model_validate({
        **_base(order), "can_cancel": order.status in CUSTOMER_CANCELLABLE,
        **{k: data[k] for k in ("payment_intent_id", "payment_attempts", "last_payment_error", "refunds",
                                "status_history", "notes", "flags", "reservation")},
        "next_statuses": next_statuses(order.status, order.delivery.method),
    })


def _base(order: Order) -> dict[str, Any]:
    data = order.model_dump()
    keys = ("id", "number", "status", "payment_status", "payment_method", "lines", "amounts", "promo_code",
            "delivery", "contact", "amount_paid", "amount_refunded", "paid_at", "expires_at", "created_at",
            "updated_at")
    return {k: data[k] for k in keys}


def summary_out(order: Order) -> OrderSummaryOut:
    return OrderSummaryOut(
        id=order.id, number=order.number, status=order.status, payment_status=order.payment_status,
        total=order.amounts.total, currency=order.amounts.currency, item_count=sum(ln.quantity for ln in order.lines),
        delivery_method=order.delivery.method, delivery_date=date.fromisoformat(order.delivery.date),
        created_at=order.created_at)


def tracking_out(order: Order) -> TrackingOut:
    d = order.delivery
    return TrackingOut(
        id=order.id, number=order.number, status=order.status, delivery_method=d.method,
        delivery_date=date.fromisoformat(d.date), slot=d.slot, window_start=d.window_start, window_end=d.window_end,
        history=[TrackingStep(status=h.to_status, at=h.at, note=h.note) for h in order.status_history])
