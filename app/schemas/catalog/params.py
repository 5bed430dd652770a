"""Query parameters of the public product list and facets: filters, sort and page."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.models.catalog import Color, FlowerType, Occasion
from app.schemas.catalog.fields import IdOrSlug


class ProductSort(StrEnum):
    relevance = "relevance"
    price_asc = "price_asc"
    price_desc = "price_desc"
    newest = "newest"
    popular = "popular"
    rating = "rating"


class ProductFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: IdOrSlug | None = Field(None, description="Category id or slug; includes its subcategories")
    occasion: list[Occasion] = Field(default_factory=list, max_length=12, description="Any of")
    flower_type: list[FlowerType] = Field(default_factory=list, max_length=12, description="Any of")
    color: list[Color] = Field(default_factory=list, max_length=8, description="Any of")
    min_price: int | None = Field(None, ge=0, le=10_000_000, description="Cents, on the cheapest size")
    max_price: int | None = Field(None, ge=0, le=10_000_000, description="Cents, inclusive")
    in_stock: bool | None = Field(None, description="true: only products with a size available")
    min_rating: float | None = Field(None, ge=0, le=5)
    featured: bool | None = None
    q: str | None = Field(None, min_length=1, max_length=100,
                          description="Search: every word must start a word of a product's name, tags, flower types, "
                                      "occasions (\"mother's day\"), colours or description; accents and case ignored")

    @field_validator("occasion", "flower_type", "color")
    @classmethod
    def _dedupe(cls, v: list[StrEnum]) -> list[StrEnum]:
        return sorted(set(v))

    @field_validator("q")
    @classmethod
    def _trim(cls, v: str | None) -> str | None:
        v = " ".join(v.split()) if v else None
        return v or None

    @model_validator(mode="after")
    def _range(self) -> ProductFilters:
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError("min_price must not exceed max_price")
        return self


class ProductListParams(ProductFilters):
    sort: ProductSort | None = Field(None, description="Default: relevance with q, otherwise newest")
    limit: int = Field(24, ge=1, le=100)
    cursor: str | None = Field(None, max_length=512)
