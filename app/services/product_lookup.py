"""The one "load a product or 404" helper for services (cart, reviews, favorites, images, admin).

The public catalog reads go through the catalog cache instead (app/services/catalog_read.py)."""

from __future__ import annotations

from app.core.errors import NotFound
from app.models.catalog import Product, ProductStatus


async def load_product(product_id: str, *, active_only: bool = True) -> Product:
    """The product with this id; drafts and archived products count as missing when ``active_only``."""
    query: dict[str, str] = {"_id": product_id}
    if active_only:
        query["status"] = ProductStatus.active.value
    product = await Product.find_one(query)
    if product is None:
        raise NotFound("No such product.", code="product-not-found")
    return product
