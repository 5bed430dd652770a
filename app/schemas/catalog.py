"""Catalog API schemas: public category/product views, query parameters and admin bodies."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from app.core.pagination import PageParams
from app.core.text import free_text
from app.core.types import Int, UtcDateTime
from app.models.catalog import AddOnKind, Category, Color, FlowerType, Occasion, Product, ProductStatus
from app.models.inventory import StockMovement, StockReason
from app.schemas.common import StrictModel
from app.schemas.images import ImageOut

OCCASION_LABELS: dict[Occasion, str] = {
    Occasion.birthday: "Birthday", Occasion.anniversary: "Anniversary", Occasion.love_romance: "Love & Romance",
    Occasion.wedding: "Wedding", Occasion.sympathy: "Sympathy", Occasion.get_well: "Get Well",
    Occasion.congratulations: "Congratulations", Occasion.thank_you: "Thank You", Occasion.new_baby: "New Baby",
    Occasion.just_because: "Just Because", Occasion.mothers_day: "Mother's Day",
    Occasion.valentines_day: "Valentine's Day",
}

# Price buckets of the facets, on the cheapest size (cents): [lower, upper) with None = open.
PRICE_BUCKETS: list[tuple[int, int | None]] = [(0, 5000), (5000, 7500), (7500, 10000), (10000, 15000), (15000, None)]

Text = free_text(5000, multiline=True)
Name = free_text(120, min_length=2)
Slug = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=2, max_length=80,
                                        pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
Code = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=30,
                                        pattern=r"^[a-z0-9][a-z0-9_-]*$")]
SeoTitle = free_text(70)
SeoDescription = free_text(170)
Tag = Annotated[free_text(40, min_length=1), StringConstraints(to_lower=True)]
Url = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500, pattern=r"^(https?://|/)\S+$")]
Cents = Annotated[Int, Field(ge=1, le=10_000_000)]
CategoryRefId = Annotated[str, StringConstraints(max_length=40, pattern=r"^cat_[0-9A-Z]{26}$")]
IdOrSlug = Annotated[str, StringConstraints(min_length=2, max_length=80, pattern=r"^[A-Za-z0-9_-]+$")]


# --- public views -------------------------------------------------------------------------------
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


# --- public query parameters ---------------------------------------------------------------------
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
    q: str | None = Field(None, min_length=1, max_length=100, description="Full-text search")

    @field_validator("occasion", "flower_type", "color")
    @classmethod
    def _dedupe(cls, v: list) -> list:
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


# --- admin bodies --------------------------------------------------------------------------------
class CategoryCreate(StrictModel):
    name: Name
    slug: Slug | None = Field(None, description="Generated from the name when omitted")
    description: Text | None = None
    image_url: Url | None = None
    seo_title: SeoTitle | None = None
    seo_description: SeoDescription | None = None
    parent_id: CategoryRefId | None = None
    sort_order: Int = Field(0, ge=-10_000, le=10_000)
    is_active: bool = True


class CategoryUpdate(StrictModel):
    name: Name | None = None
    slug: Slug | None = None
    description: Text | None = None
    image_url: Url | None = None
    seo_title: SeoTitle | None = None
    seo_description: SeoDescription | None = None
    sort_order: Int | None = Field(None, ge=-10_000, le=10_000)
    is_active: bool | None = None


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
    name: free_text(40, min_length=1)
    price: Cents
    description: free_text(300) | None = None


class SizeCreate(SizeIn):
    stock: Int = Field(0, ge=0, le=100_000, description="Initial units (recorded as a stock movement)")


class AddOnIn(StrictModel):
    code: Code
    name: free_text(60, min_length=1)
    kind: AddOnKind
    price: Cents


def _unique_codes(items: list, what: str) -> list:
    codes = [i.code for i in items]
    if len(codes) != len(set(codes)):
        raise ValueError(f"{what} codes must be unique")
    return items


class _ProductFields(StrictModel):
    @field_validator("sizes", check_fields=False)
    @classmethod
    def _sizes(cls, v):
        return v if v is None else _unique_codes(v, "size")

    @field_validator("add_ons", check_fields=False)
    @classmethod
    def _add_ons(cls, v):
        return v if v is None else _unique_codes(v, "add-on")

    @field_validator("occasions", "flower_types", "colors", "tags", check_fields=False)
    @classmethod
    def _dedupe(cls, v):
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
    sizes: list[SizeCreate] = Field(..., min_length=1, max_length=6)
    add_ons: list[AddOnIn] = Field(default_factory=list, max_length=20)
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    seo_title: SeoTitle | None = None
    seo_description: SeoDescription | None = None
    status: ProductStatus = ProductStatus.draft
    featured: bool = False
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
    sizes: list[SizeIn] | None = Field(None, min_length=1, max_length=6,
                                       description="The whole list; a removed size must have no stock left")
    add_ons: list[AddOnIn] | None = Field(None, max_length=20)
    tags: list[Tag] | None = Field(None, max_length=20)
    seo_title: SeoTitle | None = None
    seo_description: SeoDescription | None = None
    status: ProductStatus | None = None
    featured: bool | None = None
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
    note: free_text(300, multiline=True) | None = None

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
