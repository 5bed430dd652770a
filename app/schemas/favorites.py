"""Favorites API schemas: a compact product summary per favorite."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.models.catalog import Product


class ImageRef(BaseModel):
    url: str
    alt: str


class FavoriteOut(BaseModel):
    product_id: str
    name: str
    slug: str
    price_min: int = Field(description="Cheapest size, in cents.")
    currency: str
    image: ImageRef | None
    rating_avg: float
    rating_count: int
    in_stock: bool = Field(description="Some size has stock.")
    available: bool = Field(description="False when the product was archived or withdrawn: shown, not orderable.")


class FavoriteList(BaseModel):
    items: list[FavoriteOut]
    count: int
    max: int = Field(description="How many favorites an account can keep.")


def favorite_out(product: Product, currency: str, available: bool) -> FavoriteOut:
    first = product.images[0] if product.images else None
    return FavoriteOut(
        product_id=product.id, name=product.name, slug=product.slug, price_min=product.price_min, currency=currency,
        image=ImageRef(url=first.url, alt=first.alt or product.name) if first else None,
        rating_avg=product.rating_avg, rating_count=product.rating_count,
        in_stock=any(n > 0 for n in product.stock.values()), available=available,
    )
