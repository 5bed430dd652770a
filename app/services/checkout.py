"""Checkout: one cart version → at most one order, behind an Idempotency-Key.

The same key with the same body returns the same order and payment; with another body it is a 422;
while the first request is still running it is a 409. Amounts come only from ``CartService.price``; the
slot, the promo use and the stock are all held (or all given back) before the order exists.

Payment: a total of 0 is a free order (no PaymentIntent; paid at once, payment method ``free``). A card
total above 0 but below Stripe's minimum charge (``STRIPE_MIN_AMOUNTS``) is a 422 ``amount-below-minimum``
before anything is held. If starting the payment fails after the holds were taken (Stripe refusing: 502,
unreachable: 503, anything unexpected: 500), the order becomes ``payment_failed`` — every hold goes back
exactly once and the cart version is freed — and the Idempotency-Key is forgotten, so a retry with the
same key runs the checkout again instead of replaying the failure.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo.errors import DuplicateKeyError

from app.core.clock import utcnow
from app.core.errors import AppError, Conflict, Unprocessable
from app.core.ids import new_id
from app.core.money import money
from app.core.security import hash_token
from app.models.cart import Cart
from app.models.cart_pricing import PricedCart
from app.models.order import (
    DeliveryMethod,
    IdempotencyRecord,
    IdempotencyStatus,
    Order,
    OrderAddOn,
    OrderAddress,
    OrderAmounts,
    OrderContact,
    OrderDelivery,
    OrderLine,
    OrderStatus,
    PaymentMethod,
)
from app.models.user import User
from app.schemas.checkout import CheckoutIn, CheckoutPaymentMethod
from app.services.cart import CartService
from app.services.delivery import DeliveryQuote, DeliveryService
from app.services.order_access import order_access_token
from app.services.order_errors import CartAlreadyOrdered, CartEmpty, CheckoutInProgress, OutOfStock
from app.services.orders import OrderService
from app.services.promo import PromoService
from app.services.stripe_integration.gateway import PaymentIntent, PaymentsUnavailable

log = logging.getLogger("app.checkout")

LOCK = timedelta(minutes=2)  # an in_progress key older than this belongs to a crashed request


def idempotency_scope(user: User | None, cart_token: str | None, key: str) -> str:
    """SHA-256 of the key within its scope (the customer, or the guest's cart token): keys never collide
    across customers."""
    scope = f"user:{user.id}" if user else f"guest:{hash_token(cart_token or '')}"
    return hashlib.sha256(f"{scope}:{key}".encode()).hexdigest()


def request_fingerprint(body: CheckoutIn) -> str:
    """SHA-256 of the canonical JSON of the body: the same key with another body is refused."""
    return hashlib.sha256(json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class CheckoutResult:
    """What a checkout produced: the order; the client secret of its PaymentIntent while a card payment is
    awaited (for Stripe.js; else None); the guest's order access token (None for a customer's order); and
    whether this answer replays an earlier checkout with the same Idempotency-Key."""

    order: Order
    client_secret: str | None
    access_token: str | None
    replayed: bool


def _completed(order: Order) -> bool:
    """Whether the checkout that placed ``order`` finished: its card payment was started, or the order is past
    waiting for one (free orders settle at once, pay-on-pickup orders start confirmed). A payment that could
    not be started makes the order ``payment_failed`` and the key is forgotten (never replayed)."""
    return order.payment_intent_id is not None or order.status not in (OrderStatus.pending_payment,
                                                                      OrderStatus.payment_failed)


class CheckoutService:
    def __init__(self, orders: OrderService, cart: CartService, delivery: DeliveryService, promo: PromoService,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.orders, self.cart, self.delivery, self.promo = orders, cart, delivery, promo
        self.settings = orders.settings
        self.clock = clock

    # --- idempotency -----------------------------------------------------------------------------------
    async def checkout(self, *, user: User | None, cart_token: str | None, key: str,
                       body: CheckoutIn) -> CheckoutResult:
        if user is None and not cart_token:
            raise CartEmpty("There is no cart to check out (send X-Cart-Token).")
        scope_key, request_hash = idempotency_scope(user, cart_token, key), request_fingerprint(body)
        order_id = new_id("ord")  # named in the key's record from the start: no second write of the record
        record, done = await self._claim_key(scope_key, request_hash, order_id)
        if done is not None:
            return await self.result(done, replayed=True)
        try:
            order, intent = await self._place(user=user, cart_token=cart_token, key=key, request_hash=request_hash,
                                              body=body, order_id=order_id)
        except BaseException:
            # Nothing is kept (the order, if any, is closed), so the key is forgotten: a retry runs again.
            await IdempotencyRecord.get_pymongo_collection().delete_one({"_id": record.id})
            raise
        return await self.result(order, intent, replayed=False)

    async def _claim_key(self, scope_key: str, request_hash: str,
                         order_id: str) -> tuple[IdempotencyRecord, Order | None]:
        """Claim the key for a new checkout placing ``order_id``: (our record, None); or (the key's record, its
        order) when that checkout completed (a replay). 422 ``idempotency-key-reused`` (another body), 409
        ``checkout-in-progress`` (still running; a crashed one's key is taken over once its lock expired)."""
        coll = IdempotencyRecord.get_pymongo_collection()
        for _ in range(3):
            record = IdempotencyRecord(scope_key=scope_key, request_hash=request_hash, locked_until=self.clock() + LOCK,
                                       order_id=order_id)
            try:
                await record.insert()
                return record, None
            except DuplicateKeyError:
                pass
            existing = await IdempotencyRecord.find_one(IdempotencyRecord.scope_key == scope_key)
            if existing is None:
                continue  # removed meanwhile (a failed attempt): try again
            if existing.request_hash != request_hash:
                raise Unprocessable("This Idempotency-Key was already used with a different request body.",
                                    code="idempotency-key-reused")
            placed = await Order.get(existing.order_id) if existing.order_id else None
            if placed is not None and (existing.status == IdempotencyStatus.done or _completed(placed)):
                return existing, placed
            if existing.locked_until > self.clock():
                raise CheckoutInProgress()
            # A crashed request left the key locked: take it over (one taker wins the delete).
            await coll.delete_one({"_id": existing.id, "status": IdempotencyStatus.in_progress.value,
                                   "locked_until": {"$lte": self.clock()}})
        raise CheckoutInProgress()

    # --- placing ------------------------------------------------------------------------------------
    async def _place(self, *, user: User | None, cart_token: str | None, key: str, request_hash: str,
                     body: CheckoutIn, order_id: str) -> tuple[Order, PaymentIntent | None]:
        """The order (and its PaymentIntent for a card order), or an error with nothing held."""
        cart = await self.cart.load(user=user, cart_token=cart_token)
        if cart is None or not cart.lines:
            raise CartEmpty("Your cart is empty.")
        if await Order.find_one({"cart_id": cart.id, "cart_version": cart.version}) is not None:
            raise CartAlreadyOrdered()
        contact = self._contact(user, body)
        d = body.delivery
        # The slot's capacity is checked by taking a place (hold_slot): a full slot is refused there (409
        # slot-full, the stock taken just before given back), so the quote does not read the slot's usage.
        quote = await self.delivery.quote(method=d.method, zip=d.address.zip if d.address else None, date=d.date,
                                          slot=d.slot, check_capacity=False)
        priced = await self.cart.price(cart, delivery_fee=quote.fee, user_id=user.id if user else None,
                                       email=contact.email)
        self._ready(priced)
        method = self._payment_method(body, priced)
        order = self._order(user, contact, body, quote, priced, cart, key, request_hash, method, order_id)
        order.number = await self.orders.next_number()

        order = await self.orders.place(order, slot=quote, promo=True)
        try:
            if method == PaymentMethod.free:
                return await self.orders.settle_free(order), None
            if method == PaymentMethod.card:
                return order, await self.orders.start_card_payment(order)
        except BaseException as exc:
            await self._abandon(order, exc)
            raise
        return order, None

    def _payment_method(self, body: CheckoutIn, priced: PricedCart) -> PaymentMethod:
        """How the order is paid, refusing (before anything is held) what cannot be charged."""
        if priced.total == 0:
            return PaymentMethod.free
        if body.payment_method == CheckoutPaymentMethod.pay_on_pickup:
            return PaymentMethod.pay_on_pickup
        if not self.orders.gateway.enabled:
            raise PaymentsUnavailable("Card payments are not available right now (the shop has no payment "
                                      "provider configured). Choose pay on pickup or try again later.")
        minimum = self.settings.min_charge(priced.currency)
        if priced.total < minimum:
            raise Unprocessable(f"Card payments start at {money(minimum, priced.currency)}; this order's total is "
                                f"{money(priced.total, priced.currency)}. Add something to your cart or choose "
                                "another way to pay.", code="amount-below-minimum", minimum=minimum,
                                total=priced.total, currency=priced.currency)
        return PaymentMethod.card

    async def _abandon(self, order: Order, exc: BaseException) -> None:
        """Starting the payment failed after the holds were taken: close the order (``payment_failed``), which
        gives every hold back exactly once and frees the cart version. If even that fails, the expiry sweeper
        closes the order when it expires."""
        reason = exc.detail if isinstance(exc, AppError) else "an unexpected error"
        log.warning("payment of order %s could not be started: %r", order.id, exc)
        try:
            await self.orders.try_move(order.id, OrderStatus.payment_failed, by="system",
                                       note=f"The payment could not be started: {reason}")
        except Exception:
            log.exception("order %s could not be closed after its payment failed to start", order.id)

    @staticmethod
    def _contact(user: User | None, body: CheckoutIn) -> OrderContact:
        c = body.contact
        if user is not None:
            return OrderContact(user_id=user.id, email=user.email, phone=c.phone if c else user.phone,
                                name=(c.name if c and c.name else user.full_name))
        if c is None:
            raise Unprocessable("Guests give an email address and a phone number.", code="contact-required")
        return OrderContact(email=c.email, phone=c.phone, name=c.name)

    @staticmethod
    def _ready(priced: PricedCart) -> None:
        if priced.promo_error is not None:
            raise Conflict(f"The promo code on your cart cannot be used: {priced.promo_error.detail}",
                           code=priced.promo_error.code)
        for index, line in enumerate(priced.lines):
            f = line.flags
            if f.unavailable:
                raise Conflict(f"{line.product_name} ({line.size_name}) is no longer available; remove it from "
                               "your cart.", code="line-unavailable", line=index, item_id=line.id)
            if f.insufficient_stock:
                raise OutOfStock(f"Only {f.available} of {line.product_name} ({line.size_name}) left.",
                                 line=index, item_id=line.id, available=f.available)

    def _order(self, user: User | None, contact: OrderContact, body: CheckoutIn, quote: DeliveryQuote,
               priced: PricedCart, cart: Cart, key: str, request_hash: str, method: PaymentMethod,
               order_id: str) -> Order:
        d = body.delivery
        lines = [OrderLine(product_id=x.product_id, product_name=x.product_name, product_slug=x.product_slug or "",
                           size=x.size, size_name=x.size_name,
                           add_ons=[OrderAddOn(code=a.code, name=a.name, price=a.price) for a in x.add_ons],
                           unit_price=x.unit_price, quantity=x.quantity, line_total=x.line_total,
                           gift_message=x.gift_message, category_id=x.category_path[0] if x.category_path else None)
                 for x in priced.lines]
        online = method != PaymentMethod.pay_on_pickup  # card, or free (settled right after placing)
        order = Order(
            id=order_id, number="", lines=lines,
            status=OrderStatus.pending_payment if online else OrderStatus.confirmed,
            amounts=OrderAmounts(subtotal=priced.subtotal, discount=priced.discount,
                                 delivery_fee=priced.delivery_fee or 0, tax=priced.tax, total=priced.total,
                                 currency=priced.currency),
            promo_code=priced.promo.code if priced.promo else None,
            delivery=OrderDelivery(
                method=DeliveryMethod(quote.method), zone_id=quote.zone_id, recipient_name=d.recipient_name,
                recipient_phone=d.recipient_phone,
                address=OrderAddress(**d.address.model_dump()) if d.address else None,
                date=quote.date.isoformat(), slot=quote.slot, window_start=quote.window_start,
                window_end=quote.window_end, card_message=d.card_message, instructions=d.instructions),
            contact=contact, payment_method=method,
            expires_at=self.clock() + timedelta(minutes=self.settings.order_payment_minutes) if online else None,
            idempotency_key=key, request_hash=request_hash, cart_id=cart.id, cart_version=cart.version)
        if user is None:
            order.access_token_hash = hash_token(order_access_token(self.settings, order.id))
        return order

    # --- response -------------------------------------------------------------------------------------
    async def result(self, order: Order, intent: PaymentIntent | None = None, *,
                     replayed: bool) -> CheckoutResult:
        """The checkout's outcome; the client secret of a card order awaiting payment comes from ``intent``
        (just created) or is read from Stripe again (a replay)."""
        secret = None
        if order.payment_intent_id and order.status == OrderStatus.pending_payment:
            if intent is None:
                intent = await self.orders.gateway.retrieve_intent(order.payment_intent_id)
            secret = intent.client_secret
        token = (order_access_token(self.settings, order.id, order.access_token_hash)
                 if order.contact.user_id is None else None)
        return CheckoutResult(order, client_secret=secret, access_token=token, replayed=replayed)

