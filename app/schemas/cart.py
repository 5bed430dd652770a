"""Cart API schemas. The client never sends a price: every amount in a response is computed by the server."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from app.core.text import FreeText
from app.core.types import Bool, Int
from app.models import cart_pricing as priced
from app.schemas.common import StrictModel, unique_items
from app.schemas.promo import PromoResult

MAX_LINE_QUANTITY = 20
MAX_LINES = 30
MAX_ADD_ONS = 5

ProductId = Annotated[str, StringConstraints(pattern=r"^prd_[0-9A-HJKMNP-TV-Z]{26}$")]
OptionCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40,
                                              pattern=r"^[A-Za-z0-9_-]+$")]
Quantity = Annotated[Int, Field(ge=1, le=MAX_LINE_QUANTITY)]


AddOnCodes = Annotated[list[OptionCode], Field(max_length=MAX_ADD_ONS), unique_items("add-ons", sort=True)]
GiftMessage = Annotated[str, FreeText(250, multiline=True)]


class CartItemIn(StrictModel):
    product_id: ProductId
    size: OptionCode
    add_ons: AddOnCodes = Field(default_factory=list)
    quantity: Quantity = 1
    gift_message: GiftMessage | None = None


class CartItemPatch(StrictModel):
    quantity: Quantity | None = None
    size: OptionCode | None = None
    add_ons: AddOnCodes | None = None
    gift_message: GiftMessage | None = Field(None, description="null or empty clears the message.")


class PromoCodeIn(StrictModel):
    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32,
                                           pattern=r"^[A-Za-z0-9_-]+$")]


class MoveToCartIn(StrictModel):
    size: OptionCode
    quantity: Quantity = 1
    add_ons: AddOnCodes = Field(default_factory=list)
    gift_message: GiftMessage | None = None
    remove_from_favorites: Bool = False


class LineAddOnOut(BaseModel):
    code: str
    name: str
    price: int


class LineFlags(BaseModel):
    unavailable: bool = Field(False, description="Archived, draft or deleted product, or a size/add-on removed.")
    unavailable_reason: str | None = None
    price_changed: bool = Field(False, description="The unit price differs from the price when added.")
    insufficient_stock: bool = Field(False, description="The cart wants more of this product and size than "
                                                        "is in stock (see `available`).")
    available: int | None = Field(None, description="Units in stock of this product and size.")


class PricedLine(BaseModel):
    id: str
    product_id: str
    product_name: str
    product_slug: str | None
    image_url: str | None = None
    category_path: list[str]
    size: str
    size_name: str
    add_ons: list[LineAddOnOut]
    unit_price: int
    unit_price_at_add: int
    quantity: int
    line_total: int
    gift_message: str | None
    flags: LineFlags


class PromoError(BaseModel):
    code: str
    detail: str


class PricedCart(BaseModel):
    id: str | None = Field(description="Null while there is no cart yet.")
    lines: list[PricedLine]
    item_count: int
    subtotal: int = Field(description="Cents; lines flagged unavailable are left out.")
    discount: int
    promo_code: str | None = Field(None, description="The code applied to the cart, valid or not.")
    promo: PromoResult | None = Field(None, description="What the code gives now; null when none or invalid.")
    promo_error: PromoError | None = Field(None, description="Why the applied code gives nothing now.")
    delivery_fee: int | None = Field(description="Null until a delivery choice is priced.")
    tax_rate_bps: int
    tax: int = Field(description="On subtotal - discount + delivery fee, rounded half up.")
    total: int
    currency: str
    cart_version: int
    can_checkout: bool = Field(description="Lines exist and none is unavailable, short of stock or "
                                           "blocked by an invalid promo code.")
    cart_token: str | None = Field(None, description="Only when this request created a guest cart: send it "
                                                     "back in the X-Cart-Token header.")


def priced_cart_out(cart: priced.PricedCart) -> PricedCart:
    """The API view of a priced cart (amounts in cents, computed by the server)."""
    promo = cart.promo
    return PricedCart(
        id=cart.id, item_count=cart.item_count, subtotal=cart.subtotal, discount=cart.discount,
        promo_code=cart.promo_code, delivery_fee=cart.delivery_fee, tax_rate_bps=cart.tax_rate_bps, tax=cart.tax,
        total=cart.total, currency=cart.currency, cart_version=cart.cart_version, can_checkout=cart.can_checkout,
        cart_token=cart.cart_token,
        promo=PromoResult(code=promo.code, discount=promo.discount, free_delivery=promo.free_delivery,
                          kind=promo.kind, description=promo.description) if promo else None,
        promo_error=PromoError(code=cart.promo_error.code, detail=cart.promo_error.detail)
        if cart.promo_error else None,
        lines=[PricedLine(
            id=x.id, product_id=x.product_id, product_name=x.product_name, product_slug=x.product_slug,
            image_url=x.image_url, category_path=x.category_path, size=x.size, size_name=x.size_name,
            add_ons=[LineAddOnOut(code=a.code, name=a.name, price=a.price) for a in x.add_ons],
            unit_price=x.unit_price, unit_price_at_add=x.unit_price_at_add, quantity=x.quantity,
            line_total=x.line_total, gift_message=x.gift_message,
            flags=LineFlags(unavailable=x.flags.unavailable, unavailable_reason=x.flags.unavailable_reason,
                            price_changed=x.flags.price_changed, insufficient_stock=x.flags.insufficient_stock,
                            available=x.flags.available)) for x in cart.lines])
