"""Carts: one per customer or per guest token; lines rewritten whole under the version guard; every amount
priced by the server from the current catalog.

Stock is checked per product and size across lines (lines that differ only in add-ons or gift message draw
on the same units), as checkout will reserve it. Every change answers the cart priced now, a
``PricedCart`` value (``app.models.cart_pricing``); the router maps it to the response.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from app.config import Settings
from app.core.clock import ensure_utc, utcnow
from app.core.errors import AppError, Conflict, NotFound, Unprocessable
from app.core.security import hash_token, new_token
from app.core.versioned import update_versioned
from app.models.cart import Cart, CartLine
from app.models.cart_pricing import AppliedPromo, PricedCart, PromoError
from app.models.catalog import Product, ProductStatus
from app.models.user import User
from app.schemas.cart import MAX_LINE_QUANTITY, MAX_LINES, CartItemIn, CartItemPatch, MoveToCartIn
from app.services.cart_lines import price_line, promo_lines
from app.services.delivery import DeliveryService
from app.services.promo import PromoService, percent_of

log = logging.getLogger("app.cart")
Clock = Callable[[], datetime]


class _Choice:
    """A validated product + size + add-ons, with its current unit price."""

    def __init__(self, product: Product, size_code: str, add_on_codes: list[str]) -> None:
        size = next((s for s in product.sizes if s.code == size_code), None)
        if size is None:
            raise Unprocessable(f"{product.name} has no size {size_code!r}.", code="unknown-size",
                                sizes=[s.code for s in product.sizes])
        offered = {a.code: a for a in product.add_ons}
        unknown = [c for c in add_on_codes if c not in offered]
        if unknown:
            raise Unprocessable(f"{product.name} has no add-on {', '.join(unknown)}.", code="unknown-add-on",
                                add_ons=sorted(offered))
        self.product, self.size = product, size
        self.add_ons = sorted(add_on_codes)
        self.unit_price = size.price + sum(offered[c].price for c in self.add_ons)

    @property
    def stock(self) -> int:
        return self.product.stock.get(self.size.code, 0)


def _check_stock(choice: _Choice, wanted: int) -> None:
    if wanted > choice.stock:
        raise Conflict(f"Only {choice.stock} of {choice.product.name} ({choice.size.name}) in stock.",
                       code="insufficient-stock", available=choice.stock, requested=wanted)


def _units(lines: list[CartLine], product_id: str, size: str, *, skip: str | None = None) -> int:
    return sum(x.quantity for x in lines if x.product_id == product_id and x.size == size and x.id != skip)


def _dump(lines: list[CartLine]) -> list[dict[str, Any]]:
    return [x.model_dump() for x in lines]


async def _write(cart_id: str, mutate: Callable[[Cart], dict[str, Any]], current: dict[str, Any] | None = None
                 ) -> Cart:
    # Every cart writer bumps `version`, so the whole document may be replaced under the guard (which also
    # keeps `expires_at`/`updated_at` real dates on the embedded server; see app/core/versioned.py).
    # ``current``: the stored cart as just read, so the first attempt does not read it again.
    written: Cart = await update_versioned(Cart, cart_id, mutate, replace=True, current=current)
    return written


def _line_products(raw: dict[str, Any] | None) -> set[str]:
    return {line["product_id"] for line in (raw or {}).get("lines") or []}


class CartService:
    def __init__(self, settings: Settings, promos: PromoService, delivery: DeliveryService,
                 clock: Clock = utcnow) -> None:
        self.settings = settings
        self.promos = promos
        self.delivery = delivery
        self.clock = clock

    # --- loading --------------------------------------------------------------------------------
    async def _load_raw(self, user: User | None, cart_token: str | None) -> dict[str, Any] | None:
        """The stored cart (as a dict) of the customer, else of the guest token; None if none or expired."""
        coll = Cart.get_pymongo_collection()
        if user is not None:
            mine: dict[str, Any] | None = await coll.find_one({"user_id": user.id})
            return mine
        if not cart_token:
            return None
        raw: dict[str, Any] | None = await coll.find_one({"token_hash": hash_token(cart_token)})
        if raw is None or (raw.get("expires_at") is not None and ensure_utc(raw["expires_at"]) <= self.clock()):
            return None  # the TTL monitor may not have removed it yet
        return raw

    async def load(self, *, user: User | None, cart_token: str | None) -> Cart | None:
        """The customer's cart when signed in, else the guest cart of ``cart_token`` (None if none/expired)."""
        raw = await self._load_raw(user, cart_token)
        return Cart.model_validate(raw) if raw is not None else None

    async def _customer_cart(self, user: User) -> Cart:
        cart = await Cart.find_one(Cart.user_id == user.id)
        if cart is not None:
            return cart
        try:
            cart = Cart(user_id=user.id)
            await cart.insert()
            return cart
        except DuplicateKeyError:  # created by a concurrent request
            return await Cart.find_one(Cart.user_id == user.id)  # type: ignore[return-value]

    def _new_cart(self, user: User | None) -> tuple[Cart, str | None]:
        """A cart not yet stored: the customer's, or a guest's with its new token (returned once)."""
        if user is not None:
            return Cart(user_id=user.id), None
        token = new_token()
        return Cart(token_hash=hash_token(token), expires_at=self._guest_expiry()), token

    async def _load_existing(self, user: User | None, cart_token: str | None) -> dict[str, Any]:
        raw = await self._load_raw(user, cart_token)
        if raw is None:
            raise NotFound("There is no cart yet.", code="cart-not-found")
        return raw

    def _guest_expiry(self) -> datetime:
        return self.clock() + timedelta(days=self.settings.guest_cart_days)

    def _touch(self, cart: Cart) -> dict[str, Any]:
        fields: dict[str, Any] = {"updated_at": self.clock()}
        if cart.user_id is None:
            fields["expires_at"] = self._guest_expiry()  # a guest cart lives N days after its last change
        return fields

    # --- line changes ---------------------------------------------------------------------------
    async def add_item(self, *, user: User | None, cart_token: str | None, data: CartItemIn) -> PricedCart:
        """Add units of one product, size and add-ons (merged into an identical line). The cart is created
        on the first item (a guest's token is returned once, in ``cart_token``). Round trips: the cart, the
        products of the cart and the new item (one query), one write."""
        raw = await self._load_raw(user, cart_token)
        products = await self._products({data.product_id, *_line_products(raw)})
        product = products.get(data.product_id)
        if product is None or product.status != ProductStatus.active:
            raise NotFound("No such product.", code="product-not-found")
        choice = _Choice(product, data.size, data.add_ons)
        _check_stock(choice, data.quantity)
        message = data.gift_message or None

        def mutate(doc: Cart) -> dict[str, Any]:
            lines = list(doc.lines)
            same = next((x for x in lines if x.same_item(choice.product.id, choice.size.code, choice.add_ons,
                                                          message)), None)
            quantity = data.quantity + (same.quantity if same else 0)
            if quantity > MAX_LINE_QUANTITY:
                raise Conflict(f"A line holds at most {MAX_LINE_QUANTITY} units.", code="line-quantity-limit",
                               max_quantity=MAX_LINE_QUANTITY, in_cart=same.quantity if same else 0)
            if same is None and len(lines) >= MAX_LINES:
                raise Conflict(f"A cart holds at most {MAX_LINES} lines.", code="cart-full")
            _check_stock(choice, quantity + _units(lines, choice.product.id, choice.size.code,
                                                   skip=same.id if same else None))
            fresh = self._line(choice, quantity, message, line_id=same.id if same else None)
            lines = [fresh if same and x.id == same.id else x for x in lines] if same else [*lines, fresh]
            return {"lines": _dump(lines), **self._touch(doc)}

        token = None
        if raw is None:
            cart, token = self._new_cart(user)
            # Stored with its first line in one write, at version 1 as if created empty and then changed.
            written = Cart.model_validate({**cart.model_dump(by_alias=True), **mutate(cart), "version": 1})
            try:
                await written.insert()
            except DuplicateKeyError:  # the customer's cart was created by a concurrent request
                if user is None:
                    raise
                written = await self._write_customer(user, mutate)
        else:
            written = await _write(raw["_id"], mutate, current=raw)
        priced = await self.price(written, user_id=user.id if user else None, email=user.email if user else None,
                                  known=products)
        priced.cart_token = token
        return priced

    @staticmethod
    async def _write_customer(user: User, mutate: Any) -> Cart:
        raw = await Cart.get_pymongo_collection().find_one({"user_id": user.id})
        if raw is None:  # removed meanwhile
            raise Conflict("Your cart changed meanwhile; try again.", code="concurrent-update")
        return await _write(raw["_id"], mutate, current=raw)

    @staticmethod
    def _line(choice: _Choice, quantity: int, message: str | None, *, line_id: str | None = None) -> CartLine:
        fields: dict[str, Any] = {"id": line_id} if line_id else {}
        return CartLine(product_id=choice.product.id, size=choice.size.code, add_ons=choice.add_ons,
                        quantity=quantity, gift_message=message, unit_price_at_add=choice.unit_price,
                        product_name=choice.product.name, size_name=choice.size.name, **fields)

    async def update_item(self, *, user: User | None, cart_token: str | None, item_id: str,
                          patch: CartItemPatch) -> PricedCart:
        raw = await self._load_existing(user, cart_token)
        cart = Cart.model_validate(raw)
        fields = patch.model_dump(exclude_unset=True)
        current = self._find_line(cart, item_id)
        products = await self._products({x.product_id for x in cart.lines})
        product = products.get(current.product_id)
        if product is None or product.status != ProductStatus.active:
            raise Conflict("This bouquet is no longer available; remove it from your cart.",
                           code="product-unavailable")

        def mutate(doc: Cart) -> dict[str, Any]:
            line = self._find_line(doc, item_id)
            size = fields.get("size") or line.size
            add_ons = fields["add_ons"] if fields.get("add_ons") is not None else line.add_ons
            message = (fields["gift_message"] or None) if "gift_message" in fields else line.gift_message
            quantity = fields.get("quantity") or line.quantity
            choice = _Choice(product, size, add_ons)
            others = [x for x in doc.lines if x.id != item_id]
            twin = next((x for x in others if x.same_item(product.id, size, choice.add_ons, message)), None)
            if twin is not None:  # the change makes this line identical to another: merge them
                quantity += twin.quantity
                if quantity > MAX_LINE_QUANTITY:
                    raise Conflict(f"A line holds at most {MAX_LINE_QUANTITY} units.", code="line-quantity-limit",
                                   max_quantity=MAX_LINE_QUANTITY)
            _check_stock(choice, quantity + _units(others, product.id, size, skip=twin.id if twin else None))
            repriced = size != line.size or choice.add_ons != line.add_ons or twin is not None
            updated = line.model_copy(update={
                "size": size, "size_name": choice.size.name, "add_ons": choice.add_ons, "gift_message": message,
                "quantity": quantity, "product_name": product.name,
                "unit_price_at_add": choice.unit_price if repriced else line.unit_price_at_add,
            })
            lines = [updated if x.id == item_id else x for x in doc.lines if twin is None or x.id != twin.id]
            return {"lines": _dump(lines), **self._touch(doc)}

        written = await _write(cart.id, mutate, current=raw)
        return await self.price(written, user_id=user.id if user else None, email=user.email if user else None,
                                known=products)

    async def remove_item(self, *, user: User | None, cart_token: str | None, item_id: str) -> PricedCart:
        raw = await self._load_existing(user, cart_token)

        def mutate(doc: Cart) -> dict[str, Any]:
            self._find_line(doc, item_id)
            return {"lines": _dump([x for x in doc.lines if x.id != item_id]), **self._touch(doc)}

        written = await _write(raw["_id"], mutate, current=raw)
        return await self.price(written, user_id=user.id if user else None, email=user.email if user else None)

    async def empty(self, *, user: User | None, cart_token: str | None) -> None:
        cart = await self.load(user=user, cart_token=cart_token)
        if cart is not None:
            await self.clear(cart.id)

    async def clear(self, cart_id: str) -> None:
        """Remove every line and the promo code (after a paid order, or on request)."""
        await Cart.get_pymongo_collection().update_one(
            {"_id": cart_id}, {"$set": {"lines": [], "promo_code": None}, "$currentDate": {"updated_at": True},
                               "$inc": {"version": 1}})

    @staticmethod
    def _find_line(cart: Cart, item_id: str) -> CartLine:
        for line in cart.lines:
            if line.id == item_id:
                return line
        raise NotFound("No such line in your cart.", code="cart-line-not-found")

    # --- promo ----------------------------------------------------------------------------------
    async def apply_promo(self, *, user: User | None, cart_token: str | None, code: str) -> PricedCart:
        raw = await self._load_existing(user, cart_token)
        cart = Cart.model_validate(raw)
        products = await self._products({x.product_id for x in cart.lines})
        priced = await self.price(cart.model_copy(update={"promo_code": None}), known=products)
        if not priced.lines:
            raise Unprocessable("Add something to your cart before entering a code.", code="cart-empty")
        result = await self.promos.evaluate(code, subtotal=priced.subtotal, lines=promo_lines(priced),
                                            user_id=user.id if user else None, email=user.email if user else None)
        written = await _write(cart.id, lambda doc: {"promo_code": result.code, **self._touch(doc)}, current=raw)
        return await self.price(written, user_id=user.id if user else None, email=user.email if user else None,
                                known=products)

    async def remove_promo(self, *, user: User | None, cart_token: str | None) -> PricedCart:
        raw = await self._load_existing(user, cart_token)
        written = await _write(raw["_id"], lambda doc: {"promo_code": None, **self._touch(doc)}, current=raw)
        return await self.price(written, user_id=user.id if user else None, email=user.email if user else None)

    # --- guest merge and favorites --------------------------------------------------------------------
    async def merge_guest(self, cart_token: str | None, user: User) -> int:
        """Move the guest cart of ``cart_token`` into ``user``'s cart (same item: quantities add, capped by
        stock and the line limit) and delete it. Returns the units moved; never fails a sign-in."""
        if not cart_token:
            return 0
        try:
            return await self._merge(cart_token, user)
        except AppError:
            log.warning("guest cart merge failed for user %s", user.id, exc_info=True)
            return 0

    async def _merge(self, cart_token: str, user: User) -> int:
        # Claiming by delete makes the merge happen once, even for two concurrent sign-ins with one token.
        raw = await Cart.get_pymongo_collection().find_one_and_delete(
            {"token_hash": hash_token(cart_token), "user_id": None})
        if raw is None:
            return 0
        guest = Cart.model_validate(raw)
        if (guest.expires_at is not None and guest.expires_at <= self.clock()) or not guest.lines:
            return 0
        products = await self._products({x.product_id for x in guest.lines})
        target = await self._customer_cart(user)
        moved = 0

        def mutate(doc: Cart) -> dict[str, Any]:
            nonlocal moved
            moved = 0
            lines = list(doc.lines)
            for g in guest.lines:
                product = products.get(g.product_id)
                if product is None or product.status != ProductStatus.active:
                    continue
                try:
                    choice = _Choice(product, g.size, g.add_ons)
                except Unprocessable:
                    continue
                room = choice.stock - _units(lines, product.id, g.size)
                same = next((x for x in lines if x.same_item(product.id, g.size, g.add_ons, g.gift_message)), None)
                take = min(g.quantity, room, MAX_LINE_QUANTITY - (same.quantity if same else 0))
                if take <= 0 or (same is None and len(lines) >= MAX_LINES):
                    continue
                if same is not None:
                    lines = [x.model_copy(update={"quantity": x.quantity + take}) if x.id == same.id else x
                             for x in lines]
                else:
                    lines.append(g.model_copy(update={"quantity": take}))
                moved += take
            changes: dict[str, Any] = {"lines": _dump(lines), "updated_at": self.clock()}
            if doc.promo_code is None and guest.promo_code:
                changes["promo_code"] = guest.promo_code
            return changes

        await _write(target.id, mutate)
        return moved

    async def move_favorite(self, *, user: User, product_id: str, data: MoveToCartIn) -> PricedCart:
        if product_id not in user.favorites:
            raise NotFound("This product is not in your favorites.", code="favorite-not-found")
        priced = await self.add_item(user=user, cart_token=None, data=CartItemIn(
            product_id=product_id, size=data.size, add_ons=data.add_ons, quantity=data.quantity,
            gift_message=data.gift_message))
        if data.remove_from_favorites:
            await User.find_one(User.id == user.id).update({"$pull": {"favorites": product_id}})
        return priced

    # --- pricing --------------------------------------------------------------------------------
    @staticmethod
    async def _products(ids: set[str], known: dict[str, Product] | None = None) -> dict[str, Product]:
        """The products with these ids (any status), one query for those not already in ``known``."""
        found = {i: known[i] for i in ids if known and i in known}
        missing = sorted(ids - found.keys())
        if missing:
            found.update({p.id: p for p in await Product.find({"_id": {"$in": missing}}).to_list()})
        return found

    async def view(self, *, user: User | None, cart_token: str | None, zip_code: str | None = None) -> PricedCart:
        """The cart priced now; with ``zip_code`` the delivery fee is estimated from its zone (null if unserved)."""
        cart = await self.load(user=user, cart_token=cart_token)
        if cart is None:
            return self.empty_priced()
        fee = None
        if zip_code:
            zone = await self.delivery.zone_for_zip(zip_code)
            fee = zone.fee if zone else None
        return await self.price(cart, delivery_fee=fee, user_id=user.id if user else None,
                                email=user.email if user else None)

    def empty_priced(self) -> PricedCart:
        return PricedCart(id=None, currency=self.settings.currency, tax_rate_bps=self.settings.tax_rate_bps)

    async def price(self, cart: Cart, *, delivery_fee: int | None = None, free_delivery: bool = False,
                    user_id: str | None = None, email: str | None = None,
                    known: dict[str, Product] | None = None) -> PricedCart:
        """Every amount of ``cart`` from the current catalog: lines with flags, subtotal (available lines),
        promo discount, delivery fee (0 with free delivery), tax half-up on (subtotal - discount + fee), total.
        ``known``: products the caller read during this request (only the others are read)."""
        products = await self._products({x.product_id for x in cart.lines}, known)
        wanted = Counter[tuple[str, str]]()
        for x in cart.lines:
            wanted[(x.product_id, x.size)] += x.quantity
        lines = [price_line(x, products.get(x.product_id), wanted[(x.product_id, x.size)]) for x in cart.lines]
        subtotal = sum(x.line_total for x in lines if not x.flags.unavailable)
        out = self.empty_priced()
        out.id, out.lines, out.subtotal, out.cart_version = cart.id, lines, subtotal, cart.version
        out.item_count = sum(x.quantity for x in lines)
        out.promo_code = cart.promo_code
        promo: AppliedPromo | None = None
        if cart.promo_code:
            try:
                promo = await self.promos.evaluate(cart.promo_code, subtotal=subtotal,
                                                   lines=promo_lines(out), user_id=user_id, email=email)
            except Unprocessable as exc:
                out.promo_error = PromoError(code=exc.code, detail=exc.detail)
        if promo is not None and promo.free_delivery and delivery_fee == 0:
            # Nothing to waive (store pickup, or a zone without a fee): refused, so no use of the code is spent.
            out.promo_error = PromoError(code="promo-no-delivery-fee", detail=(
                f"{promo.code} gives free delivery, and this order has no delivery fee (store pickup); "
                "remove the code to continue."))
            promo = None
        out.promo = promo
        out.discount = promo.discount if promo else 0
        if delivery_fee is not None and (free_delivery or (promo is not None and promo.free_delivery)):
            delivery_fee = 0
        out.delivery_fee = delivery_fee
        taxable = max(0, subtotal - out.discount + (delivery_fee or 0))
        out.tax = percent_of(taxable, self.settings.tax_rate_bps)
        out.total = taxable + out.tax
        out.can_checkout = bool(lines) and out.promo_error is None and not any(
            x.flags.unavailable or x.flags.insufficient_stock for x in lines)
        return out
