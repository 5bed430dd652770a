"""Admin catalog schemas: category and product bodies, admin views, list parameters, stock adjustments and
movements, and the mappers from the stored documents to the admin views."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from app.core.pagination import PageParams
from app.core.text import FreeText
from app.core.types import Bool, Int, UtcDateTime
from app.models.catalog import AddOnKind, Category, Color, FlowerType, Occasion, Product, ProductStatus
from app.models.inventory import StockMovement, StockReason
from app.schemas.catalog.fields import (
    CategoryRefId,
    Cents,
    Code,
    IdOrSlug,
    Name,
    SeoDescription,
    SeoTitle,
    Slug,
    Tag,
    Text,
)
from app.schemas.catalog.public import AddOnOut, Rating
from app.schemas.common import LinkUrl, StrictModel, unique_items
from app.schemas.images import ImageOut


class CategoryCreate(StrictModel):
    name: Name
    slug: Slug | None = Field(None, description="Generated from the name when omitted")
    description: Text | None = None
    image_url: LinkUrl | None = None
    seo_title: SeoTitle | None = None
    seo_description: SeoDescription | None = None
    parent_id: CategoryRefId | None = None
    sort_order: Int = Field(0, ge=-10_000, le=10_000)
    is_active: Bool = True


class CategoryUpdate(StrictModel):
    name: Name | None = None
    slug: Slug | None = None
    description: Text | None = None
    image_url: LinkUrl | None = None
    seo_title: SeoTitle | None = None
    seo_description: SeoDescription | None = None
    sort_order: Int | None = Field(None, ge=-10_000, le=10_000)
    is_active: Bool | None = None


class CategoryMove(StrictModel):
    parent_id: CategoryRefId | None = Field(..., description="New parent; null makes it a root")


class AdminCategory(BaseModel):
    id: str
    name: str
    slug: str
    canonical_path: str
    description: str | None
    image_url: str | None
    seo_title: str | None
    seo_description: str | None
    parent_id: str | None
    ancestors: list[str]
    depth: int
    sort_order: int
    is_active: bool
    created_at: UtcDateTime
    updated_at: UtcDateTime


class SizeIn(StrictModel):
    code: Code
    name: Annotated[str, FreeText(40, min_length=1)]
    price: Cents
    description: Annotated[str, FreeText(300)] | None = None


class SizeCreate(SizeIn):
    stock: Int = Field(0, ge=0, le=100_000, description="Initial units (recorded as a stock movement)")


class AddOnIn(StrictModel):
    code: Code
    name: Annotated[str, FreeText(60, min_length=1)]
    kind: AddOnKind
    price: Cents


def _code(item: SizeIn | AddOnIn) -> str:
    return item.code


UniqueSizes = unique_items("size codes", key=_code)
UniqueAddOns = unique_items("add-on codes", key=_code)


class _ProductFields(StrictModel):
    @field_validator("occasions", "flower_types", "colors", "tags", check_fields=False)
    @classmethod
    def _dedupe(cls, v: list[str] | None) -> list[str] | None:
        """Repeated occasions, flower types, colours or tags are dropped (first kept), not refused."""
        return v if v is None else list(dict.fromkeys(v))


class ProductCreate(_ProductFields):
    name: Name
    slug: Slug | None = Field(None, description="Generated from the name when omitted")
    description: Text = ""
    care_instructions: Text | None = None
    category_id: CategoryRefId
    occasions: list[Occasion] = Field(default_factory=list, max_length=12)
    flower_types: list[FlowerType] = Field(default_factory=list, max_length=12)
    colors: list[Color] = Field(default_factory=list, max_length=8)
    sizes: Annotated[list[SizeCreate], UniqueSizes] = Field(..., min_length=1, max_length=6)
    add_ons: Annotated[list[AddOnIn], UniqueAddOns] = Field(default_factory=list, max_length=20)
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    seo_title: SeoTitle | None = None
    seo_description: SeoDescription | None = None
    status: ProductStatus = ProductStatus.draft
    featured: Bool = False
    low_stock_threshold: Int = Field(3, ge=0, le=10_000)


class ProductUpdate(_ProductFields):
    """Partial update: only the fields sent change. Stock changes go through the stock endpoint."""

    name: Name | None = None
    slug: Slug | None = None
    description: Text | None = None
    care_instructions: Text | None = None
    category_id: CategoryRefId | None = None
    occasions: list[Occasion] | None = Field(None, max_length=12)
    flower_types: list[FlowerType] | None = Field(None, max_length=12)
    colors: list[Color] | None = Field(None, max_length=8)
    sizes: Annotated[list[SizeIn], UniqueSizes] | None = Field(None, min_length=1, max_length=6,
                                       description="The whole list; a removed size must have no stock left")
    add_ons: Annotated[list[AddOnIn], UniqueAddOns] | None = Field(None, max_length=20)
    tags: list[Tag] | None = Field(None, max_length=20)
    seo_title: SeoTitle | None = None
    seo_description: SeoDescription | None = None
    status: ProductStatus | None = None
    featured: Bool | None = None
    low_stock_threshold: Int | None = Field(None, ge=0, le=10_000)

    @model_validator(mode="after")
    def _no_nulls(self) -> ProductUpdate:
        nullable = {"care_instructions", "seo_title", "seo_description"}
        for name in self.model_fields_set - nullable:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class AdminSize(BaseModel):
    code: str
    name: str
    price: int
    description: str | None = None
    stock: int


class AdminProduct(BaseModel):
    id: str
    name: str
    slug: str
    canonical_path: str
    description: str
    care_instructions: str | None
    category_id: str
    category_path: list[str]
    occasions: list[Occasion]
    flower_types: list[FlowerType]
    colors: list[Color]
    sizes: list[AdminSize]
    add_ons: list[AddOnOut]
    images: list[ImageOut]
    tags: list[str]
    seo_title: str | None
    seo_description: str | None
    status: ProductStatus
    featured: bool
    low_stock_threshold: int
    price_min: int
    currency: str
    stock_total: int
    rating: Rating
    units_sold: int
    ever_ordered: bool
    created_at: UtcDateTime
    updated_at: UtcDateTime


class AdminProductParams(PageParams):
    status: ProductStatus | None = None
    category: IdOrSlug | None = None
    featured: bool | None = None
    in_stock: bool | None = None
    q: str | None = Field(None, min_length=1, max_length=100, description="Prefix of any word of the name")
    page: int | None = Field(None, ge=1, le=10_000, description="Page number instead of a cursor")


class StockAdjust(StrictModel):
    size: Code
    delta: Int = Field(..., ge=-100_000, le=100_000, description="Units to add (positive) or remove (negative)")
    reason: Literal["restock", "damaged", "correction", "returned", "other"]
    note: Annotated[str, FreeText(300, multiline=True)] | None = None

    @field_validator("delta")
    @classmethod
    def _nonzero(cls, v: int) -> int:
        if v == 0:
            raise ValueError("delta must not be 0")
        return v


class StockMovementOut(BaseModel):
    id: str
    product_id: str
    size: str
    delta: int
    before: int
    after: int
    reason: StockReason
    note: str | None
    actor_id: str | None
    ref: str | None
    created_at: UtcDateTime


class LowStockItem(BaseModel):
    product_id: str
    name: str
    slug: str
    status: ProductStatus
    size: str
    available: int
    threshold: int


class LowStockList(BaseModel):
    items: list[LowStockItem]


# --- converters (storage -> API) -----------------------------------------------------------------
def admin_category_out(c: Category) -> AdminCategory:
    return AdminCategory(**c.model_dump(exclude={"search_keys"}), canonical_path=f"/categories/{c.slug}")


def admin_product_out(p: Product, currency: str) -> AdminProduct:
    data = p.model_dump(include={
        "id", "name", "slug", "description", "care_instructions", "category_id", "category_path", "occasions",
        "flower_types", "colors", "add_ons", "images", "tags", "seo_title", "seo_description", "status",
        "featured", "low_stock_threshold", "price_min", "stock_total", "units_sold", "ever_ordered",
        "created_at", "updated_at"})
    sizes = [AdminSize(**s.model_dump(), stock=p.stock.get(s.code, 0)) for s in p.sizes]
    return AdminProduct(**data, sizes=sizes, canonical_path=f"/products/{p.slug}", currency=currency,
                        rating=Rating(average=round(p.rating_avg, 2), count=p.rating_count))


def movement_out(m: StockMovement) -> StockMovementOut:
    return StockMovementOut(**m.model_dump())
