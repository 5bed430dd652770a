"""A cart priced now (computed, never stored): what ``CartService.price`` answers and checkout places. Every
amount is integer cents of ``currency``, computed by the server from the current catalog. The API view is
built by ``app.schemas.cart.priced_cart_out``."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.models.promo import PromoKind


@dataclass(slots=True)
class LineAddOn:
    code: str
    name: str
    price: int


@dataclass(slots=True)
class LineFlags:
    """What stops a line from being ordered: ``unavailable`` (with a reason code such as ``size-removed``),
    ``insufficient_stock`` (the cart wants more than ``available`` units of the product and size); and
    ``price_changed`` since the line was added."""

    unavailable: bool = False
    unavailable_reason: str | None = None
    price_changed: bool = False
    insufficient_stock: bool = False
    available: int | None = None


@dataclass(slots=True)
class PricedLine:
    id: str
    product_id: str
    product_name: str
    product_slug: str | None
    image_url: str | None
    category_path: list[str]
    size: str
    size_name: str
    add_ons: list[LineAddOn]
    unit_price: int
    unit_price_at_add: int
    quantity: int
    line_total: int
    gift_message: str | None
    flags: LineFlags


@dataclass(frozen=True, slots=True)
class PromoLine:
    """A cart line as promo evaluation sees it: its product, category ancestry and total in cents."""

    product_id: str
    category_path: list[str]
    line_total: int


@dataclass(frozen=True, slots=True)
class AppliedPromo:
    """What the cart's promo code gives now (``PromoService.evaluate``): ``discount`` in cents, capped by the
    eligible subtotal and the code's ``max_discount``, and free delivery or not."""

    code: str
    discount: int
    free_delivery: bool
    kind: PromoKind | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class PromoError:
    """Why the cart's promo code gives nothing now (a problem ``code`` and a sentence)."""

    code: str
    detail: str


@dataclass(slots=True)
class PricedCart:
    """``id`` None while there is no cart. ``subtotal`` leaves out unavailable lines; ``tax`` is on
    subtotal - discount + delivery fee, rounded half up; ``delivery_fee`` None until a delivery choice is
    priced. ``cart_token`` only when this request created a guest cart."""

    id: str | None
    currency: str
    tax_rate_bps: int
    lines: list[PricedLine] = field(default_factory=list)
    item_count: int = 0
    subtotal: int = 0
    discount: int = 0
    promo_code: str | None = None
    promo: AppliedPromo | None = None
    promo_error: PromoError | None = None
    delivery_fee: int | None = None
    tax: int = 0
    total: int = 0
    cart_version: int = 0
    can_checkout: bool = False
    cart_token: str | None = None
