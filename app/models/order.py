"""Orders (storage): line and amount snapshots, delivery and contact data, the status machine's history.

Arrays of sub-documents (history, notes, flags, refunds) are written whole under the integer
``version`` guard (``app.core.versioned``). Exactly-once side effects are keyed by order-level markers
set with a conditional update: ``reservation.released_at`` (stock, slot and promo use returned) and
``reservation.sold_at`` (reservation turned into a sale). ``rollup`` records what the order adds to the
daily sales rollups and the changes of it not yet confirmed applied (``app.services.sales_rollups``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from beanie import Document
from pydantic import BaseModel, Field
from pymongo import ASCENDING, DESCENDING, IndexModel

from app.models.base import id_field, now_field

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class OrderStatus(StrEnum):
    pending_payment = "pending_payment"
    paid = "paid"
    confirmed = "confirmed"  # pay-on-pickup: accepted without online payment, settled by staff at the counter
    preparing = "preparing"
    out_for_delivery = "out_for_delivery"
    delivered = "delivered"
    ready_for_pickup = "ready_for_pickup"
    picked_up = "picked_up"
    cancelled = "cancelled"
    payment_failed = "payment_failed"
    expired = "expired"


class PaymentStatus(StrEnum):
    unpaid = "unpaid"
    paid = "paid"
    partially_refunded = "partially_refunded"
    refunded = "refunded"
    failed = "failed"


# Payment states of an order whose money was received (refunded or not): what sales reports count.
SETTLED = (PaymentStatus.paid, PaymentStatus.partially_refunded, PaymentStatus.refunded)


class PaymentMethod(StrEnum):
    card = "card"
    pay_on_pickup = "pay_on_pickup"
    free = "free"  # a total of 0: nothing to charge, settled as paid at checkout (never chosen by the client)


class DeliveryMethod(StrEnum):
    delivery = "delivery"
    pickup = "pickup"


class OrderAddOn(BaseModel):
    code: str
    name: str
    price: int


class OrderLine(BaseModel):
    product_id: str
    product_name: str
    product_slug: str
    size: str
    size_name: str
    add_ons: list[OrderAddOn] = Field(default_factory=list)
    unit_price: int  # size price + add-ons, cents
    quantity: int
    line_total: int
    gift_message: str | None = None
    category_id: str | None = None  # the product's category when ordered (sales by category); None before 2026-12


class OrderAmounts(BaseModel):
    subtotal: int
    discount: int = 0
    delivery_fee: int = 0
    tax: int = 0
    total: int
    currency: str = "USD"


class OrderAddress(BaseModel):
    line1: str
    line2: str | None = None
    city: str
    state: str
    zip: str


class OrderDelivery(BaseModel):
    method: DeliveryMethod
    zone_id: str | None = None
    recipient_name: str
    recipient_phone: str
    address: OrderAddress | None = None  # None for pickup
    date: str  # ISO YYYY-MM-DD in the shop's zone (BSON has no date type; ISO strings sort and range)
    slot: str
    window_start: datetime
    window_end: datetime
    card_message: str | None = None
    instructions: str | None = None


class OrderContact(BaseModel):
    user_id: str | None = None  # None: guest order, read with the access token
    email: str
    phone: str | None = None
    name: str | None = None


class StatusChange(BaseModel):
    at: datetime = now_field()
    by: str  # a user id, or "system" / "stripe" / "customer"
    from_status: OrderStatus | None
    to_status: OrderStatus
    note: str | None = None


class OrderNote(BaseModel):
    id: str = id_field("note")
    at: datetime = now_field()
    by: str
    text: str


class OrderFlag(BaseModel):
    code: str  # e.g. "amount-mismatch", "paid-after-close", "refund-failed"
    detail: str
    at: datetime = now_field()


class StockHold(BaseModel):
    product_id: str
    size: str
    quantity: int


class Reservation(BaseModel):
    stock: list[StockHold] = Field(default_factory=list)  # summed per product+size
    slot_held: bool = False
    promo_code: str | None = None
    # Markers claimed by conditional updates. Booleans, because the embedded server answers null-equality
    # filters inconsistently once they are combined with other conditions.
    sold: bool = False  # the reservation became a sale (units_sold counted)
    sold_at: datetime | None = None
    released: bool = False  # stock, slot and promo use given back (exactly once)
    released_at: datetime | None = None


class RefundStatus(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"


class RefundRecord(BaseModel):
    id: str = id_field("rfd")  # also the Stripe idempotency key
    amount: int
    reason: str
    status: RefundStatus = RefundStatus.pending
    stripe_refund_id: str | None = None
    error: str | None = None
    by: str
    at: datetime = now_field()


class ItemFigures(BaseModel):
    """Sales of one product or category: units, revenue (line totals, cents) and orders containing it."""

    units: int = 0
    revenue: int = 0
    orders: int = 0


class RollupFigures(BaseModel):
    """An amount of sales on one rollup document (``day_id``): one order's share of it, or a change of that
    share (then figures may be negative). Money in cents of the day document's currency."""

    day_id: str  # SalesDay id, "<shop day>:<currency>"
    gross: int = 0
    refunded: int = 0
    orders: int = 0
    units: int = 0
    discount: int = 0
    products: dict[str, ItemFigures] = Field(default_factory=dict)
    categories: dict[str, ItemFigures] = Field(default_factory=dict)
    names: dict[str, str] = Field(default_factory=dict)  # product id -> "<placed at, ISO UTC>|<name on the line>"


class RollupDelta(BaseModel):
    token: str  # unique; recorded on the day document in the same update that applies the figures
    figures: RollupFigures


class OrderRollup(BaseModel):
    """The order's part in the daily sales rollups. ``counted`` is what the rollups hold for the order once
    every ``pending`` change is applied; each change is applied once (its token is recorded on the day
    document by the same update) and then removed from ``pending``. ``pending_any`` (a boolean, for the
    background job's filter) and ``since`` (when the last change was queued) find orders left pending."""

    counted: RollupFigures | None = None
    pending: list[RollupDelta] = Field(default_factory=list)
    pending_any: bool = False
    seq: int = 0  # bumped whenever ``pending`` gains a change (guards its removal)
    since: datetime = EPOCH


class Order(Document):
    id: str = id_field("ord")  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    number: str  # AF-10001, from an atomic counter
    status: OrderStatus
    lines: list[OrderLine]
    amounts: OrderAmounts
    promo_code: str | None = None
    delivery: OrderDelivery
    contact: OrderContact
    access_token_hash: str | None = None  # guests: SHA-256 of the order access token

    payment_method: PaymentMethod
    payment_status: PaymentStatus = PaymentStatus.unpaid
    payment_intent_id: str | None = None
    amount_paid: int = 0
    amount_refunded: int = 0
    paid_at: datetime | None = None
    payment_attempts: int = 0  # failed card attempts seen
    last_payment_error: str | None = None
    refunds: list[RefundRecord] = Field(default_factory=list)
    refunds_pending: int = 0  # refunds recorded but not yet confirmed by Stripe (retried by the reconciliation job)

    status_history: list[StatusChange] = Field(default_factory=list)
    notes: list[OrderNote] = Field(default_factory=list)  # internal, staff only
    flags: list[OrderFlag] = Field(default_factory=list)  # for staff attention

    expires_at: datetime | None = None  # pending_payment orders only
    reservation: Reservation = Field(default_factory=Reservation)

    idempotency_key: str | None = None
    request_hash: str | None = None
    cart_id: str | None = None
    cart_version: int | None = None

    # Leased claims of the order jobs: claimable while `leased_at` is older than the lease. Stamped with
    # $currentDate and never null: the embedded server mishandles null-equality combined with $in (the
    # order jobs' due filters use $in), which app.core.jobs.claim's `{"lease": None}` branch relies on.
    lease_owner: str | None = None
    leased_at: datetime = EPOCH
    reconciled_at: datetime = EPOCH

    rollup: OrderRollup = Field(default_factory=OrderRollup)

    version: int = 0
    created_at: datetime = now_field()
    updated_at: datetime = now_field()

    class Settings:
        name = "orders"
        indexes = [
            IndexModel([("number", ASCENDING)], unique=True, name="number_unique"),
            # One cart version yields at most one order (orders placed without a cart have no cart_id).
            IndexModel([("cart_id", ASCENDING), ("cart_version", ASCENDING)], unique=True, name="cart_version_unique",
                       partialFilterExpression={"cart_id": {"$type": "string"}}),
            IndexModel([("contact.user_id", ASCENDING), ("created_at", DESCENDING)], name="user_newest"),
            IndexModel([("contact.email", ASCENDING), ("created_at", DESCENDING)], name="email_newest"),
            IndexModel([("status", ASCENDING), ("created_at", DESCENDING)], name="status_newest"),
            IndexModel([("created_at", DESCENDING)], name="created_desc"),
            IndexModel([("delivery.date", ASCENDING), ("delivery.slot", ASCENDING)], name="delivery_date_slot"),
            IndexModel([("delivery.zone_id", ASCENDING), ("delivery.date", ASCENDING)], name="zone_date"),
            IndexModel([("status", ASCENDING), ("expires_at", ASCENDING)], name="status_expires"),
            IndexModel([("status", ASCENDING), ("payment_method", ASCENDING), ("created_at", ASCENDING)],
                       name="status_method_created"),
            IndexModel([("payment_intent_id", ASCENDING)], name="payment_intent",
                       partialFilterExpression={"payment_intent_id": {"$type": "string"}}),
            IndexModel([("lines.product_id", ASCENDING), ("status", ASCENDING)], name="product_status"),
            IndexModel([("refunds_pending", ASCENDING)], name="refunds_pending"),
            # Sales reports: paid orders placed in a time range.
            IndexModel([("payment_status", ASCENDING), ("created_at", ASCENDING)], name="payment_created"),
            # Rollup changes left pending (a crash between an order's write and its rollup update).
            IndexModel([("rollup.pending_any", ASCENDING), ("rollup.since", ASCENDING)], name="rollup_pending"),
        ]


class IdempotencyStatus(StrEnum):
    in_progress = "in_progress"
    done = "done"


class IdempotencyRecord(Document):
    """One `Idempotency-Key` per scope (a user, or a guest's cart token): which request it was and its result.

    Written once, when the key is claimed, naming the order the checkout will place (``order_id``): the key is
    replayed once that order's checkout completed (app/services/checkout.py ``_completed``). Records written
    before 2026-12 were marked ``done`` afterwards instead; they are still honoured."""

    id: str = id_field("idk")  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    scope_key: str  # SHA-256 of "<scope>:<key>", unique
    request_hash: str
    status: IdempotencyStatus = IdempotencyStatus.in_progress
    locked_until: datetime  # an in_progress record past this is a crashed request: it may be taken over
    order_id: str | None = None
    response_status: int | None = None
    created_at: datetime = now_field()

    class Settings:
        name = "idempotency_keys"
        indexes = [
            IndexModel([("scope_key", ASCENDING)], unique=True, name="scope_key_unique"),
            IndexModel([("created_at", ASCENDING)], expireAfterSeconds=24 * 3600, name="created_ttl"),
        ]
