"""Test data written straight to the database (the catalog's admin API lives on another branch)."""

from __future__ import annotations

import uuid
from typing import Any

from app.models.catalog import AddOn, AddOnKind, Category, Product, ProductStatus, Size


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
