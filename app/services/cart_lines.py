"""Cart line rules, pure (no I/O): the price and flags of one stored line, and the lines a promo code is
evaluated on; applied by ``CartService.price``."""

from __future__ import annotations

from app.models.cart import CartLine
from app.models.cart_pricing import LineAddOn, LineFlags, PricedCart, PricedLine, PromoLine
from app.models.catalog import Product, ProductStatus, Size


def price_line(line: CartLine, product: Product | None, wanted: int) -> PricedLine:
    """``line`` priced from its product now (None: deleted): unit price = size + add-ons in cents, and the
    flags that stop checkout (unavailable with its reason, or more ``wanted`` units of the product and size
    across the cart than in stock); the name and size name stored on the line stand in for a deleted product."""
    flags = LineFlags()
    size: Size | None = None
    add_ons: list[LineAddOn] = []
    unit_price = line.unit_price_at_add
    if product is None:
        flags.unavailable, flags.unavailable_reason = True, "product-deleted"
    else:
        size = next((s for s in product.sizes if s.code == line.size), None)
        offered = {a.code: a for a in product.add_ons}
        add_ons = [LineAddOn(code=c, name=offered[c].name, price=offered[c].price) for c in line.add_ons
                   if c in offered]
        if product.status != ProductStatus.active:
            flags.unavailable, flags.unavailable_reason = True, f"product-{product.status.value}"
        elif size is None:
            flags.unavailable, flags.unavailable_reason = True, "size-removed"
        elif len(add_ons) != len(line.add_ons):
            flags.unavailable, flags.unavailable_reason = True, "add-on-removed"
        if size is not None:
            unit_price = size.price + sum(a.price for a in add_ons)
            flags.available = product.stock.get(line.size, 0)
            flags.insufficient_stock = not flags.unavailable and wanted > flags.available
    flags.price_changed = not flags.unavailable and unit_price != line.unit_price_at_add
    return PricedLine(
        id=line.id, product_id=line.product_id, product_name=product.name if product else line.product_name,
        product_slug=product.slug if product else None,
        image_url=product.images[0].url if product and product.images else None,
        category_path=product.category_path if product else [], size=line.size,
        size_name=size.name if size else line.size_name, add_ons=add_ons, unit_price=unit_price,
        unit_price_at_add=line.unit_price_at_add, quantity=line.quantity, line_total=unit_price * line.quantity,
        gift_message=line.gift_message, flags=flags,
    )


def promo_lines(priced: PricedCart) -> list[PromoLine]:
    """The lines a promo code is evaluated on: every available line of ``priced``."""
    return [PromoLine(product_id=x.product_id, category_path=x.category_path, line_total=x.line_total)
            for x in priced.lines if not x.flags.unavailable]
