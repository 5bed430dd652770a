"""Public catalog views: category tree and detail, product summaries and detail, lists, facets, suggestions."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.core.types import UtcDateTime
from app.models.catalog import AddOnKind, Color, FlowerType, Occasion
from app.schemas.images import ImageOut


class Seo(BaseModel):
    title: str
    description: str | None = None
    canonical_path: str


class CategoryRef(BaseModel):
    id: str
    name: str
    slug: str
    canonical_path: str


class CategoryNode(CategoryRef):
    description: str | None = None
    image_url: str | None = None
    sort_order: int
    product_count: int = Field(description="Active products in this category and all below it")
    children: list[CategoryNode] = Field(default_factory=list)


class CategoryTree(BaseModel):
    items: list[CategoryNode]


class CategoryChild(CategoryRef):
    product_count: int


class CategoryDetail(CategoryRef):
    description: str | None = None
    image_url: str | None = None
    parent_id: str | None = None
    depth: int
    product_count: int
    breadcrumbs: list[CategoryRef] = Field(description="From the root down to this category (included)")
    children: list[CategoryChild]
    seo: Seo


class SizeOut(BaseModel):
    code: str
    name: str
    price: int = Field(description="Cents")
    description: str | None = None
    available: int = Field(description="Units that can be ordered now")
    in_stock: bool


class AddOnOut(BaseModel):
    code: str
    name: str
    kind: AddOnKind
    price: int = Field(description="Cents")


class Rating(BaseModel):
    average: float
    count: int


class ProductSummary(BaseModel):
    id: str
    slug: str
    name: str
    canonical_path: str
    category_id: str
    price_min: int = Field(description="Price of the cheapest size, cents")
    currency: str
    sizes: list[SizeOut]
    in_stock: bool
    image: ImageOut | None = None
    rating: Rating
    featured: bool
    occasions: list[Occasion]
    flower_types: list[FlowerType]
    colors: list[Color]


class ProductDetail(ProductSummary):
    description: str
    care_instructions: str | None = None
    add_ons: list[AddOnOut]
    images: list[ImageOut]
    tags: list[str]
    breadcrumbs: list[CategoryRef]
    seo: Seo
    updated_at: UtcDateTime


class ProductPage(BaseModel):
    items: list[ProductSummary]
    next_cursor: str | None = None
    total: int | None = Field(None, description="Products matching the filters, counted up to "
                                                "`CATALOG_TOTAL_CAP` (1,000 by default; a search ranks at "
                                                "most `CATALOG_SEARCH_MAX_RESULTS`).")
    total_capped: bool = Field(False, description="True when more products match than `total`: the count "
                                                  "stopped at the cap (show e.g. \"1,000+\").")


class ProductList(BaseModel):
    items: list[ProductSummary]


class FacetCount(BaseModel):
    value: str
    label: str
    count: int


class CategoryFacet(BaseModel):
    id: str
    slug: str
    name: str
    count: int


class PriceBucket(BaseModel):
    min_price: int
    max_price: int | None = Field(description="Inclusive upper bound in cents; null = no upper bound")
    count: int


class Facets(BaseModel):
    total: int = Field(description="Products matching every filter.")
    occasions: list[FacetCount]
    flower_types: list[FacetCount]
    colors: list[FacetCount]
    categories: list[CategoryFacet]
    price: list[PriceBucket]


class Suggestion(BaseModel):
    kind: Literal["product", "category", "occasion"]
    label: str
    value: str = Field(description="Product/category slug, or the occasion code")
    path: str


class Suggestions(BaseModel):
    items: list[Suggestion]
