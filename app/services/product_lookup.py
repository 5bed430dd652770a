"""Load a product or 404 (reviews, favorites, images). The catalog service offers the same; unify at merge."""

from __future__ import annotations

from app.core.errors import NotFound
from app.models.catalog import Product, ProductStatus


async def load_product(product_id: str, *, active_only: bool = True) -> Product:
    """The product with this id; drafts and archived products count as missing when ``active_only``."""
    query: dict = {"_id": product_id}
    if active_only:
        query["status"] = ProductStatus.active.value
    product = await Product.find_one(query)
    if product is None:
        raise NotFound("No such product.")
    return product
