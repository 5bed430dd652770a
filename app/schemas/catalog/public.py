"""Public catalog views (category tree and detail, product summaries and detail, lists, facets, suggestions)
and the mappers that build them from stored catalog rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.core.types import UtcDateTime
from app.models.catalog import OCCASION_LABELS, AddOnKind, Color, FlowerType, Occasion
from app.models.catalog_facets import PRICE_BUCKETS
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


# --- mappers (stored catalog rows -> views; pure) -------------------------------------------------
# The catalog reads raw projected rows (``dict``s straight from the driver, cached as JSON) for speed; these
# functions are the one place their shape becomes a view. ``stock`` is a product's units by size code. The
# rows are the catalog's own stored documents, so list views are built with ``model_construct`` (no
# re-validation: a page builds dozens of them per uncached request); enum values are converted explicitly.
Row = Mapping[str, Any]


def _image(img: Row) -> ImageOut:
    return ImageOut.model_construct(id=img["id"], url=img["url"], alt=img.get("alt", ""), width=img["width"],
                                    height=img["height"], variants=img.get("variants", {}))


def _sizes(row: Row, stock: Mapping[str, int]) -> list[SizeOut]:
    return [SizeOut.model_construct(code=s["code"], name=s["name"], price=s["price"],
                                    description=s.get("description"), available=max(0, stock.get(s["code"], 0)),
                                    in_stock=stock.get(s["code"], 0) > 0)
            for s in row.get("sizes", [])]


def _summary_fields(row: Row, currency: str, stock: Mapping[str, int]) -> dict[str, Any]:
    images = row.get("images") or []
    sizes = _sizes(row, stock)
    return {
        "id": row["_id"], "slug": row["slug"], "name": row["name"], "canonical_path": f"/products/{row['slug']}",
        "category_id": row["category_id"], "price_min": row.get("price_min", 0), "currency": currency,
        "sizes": sizes, "in_stock": any(s.in_stock for s in sizes),
        "image": _image(images[0]) if images else None,
        "rating": Rating.model_construct(average=round(row.get("rating_avg", 0.0), 2),
                                         count=row.get("rating_count", 0)),
        "featured": row.get("featured", False), "occasions": [Occasion(o) for o in row.get("occasions", [])],
        "flower_types": [FlowerType(t) for t in row.get("flower_types", [])],
        "colors": [Color(c) for c in row.get("colors", [])],
    }


def product_summary(row: Row, currency: str, stock: Mapping[str, int]) -> ProductSummary:
    """A product card from a stored product row (``_id`` and the summary fields; prices in cents of
    ``currency``) with the current ``stock``."""
    return ProductSummary.model_construct(**_summary_fields(row, currency, stock))


def product_detail(row: Row, currency: str, stock: Mapping[str, int], breadcrumbs: list[CategoryRef]) -> ProductDetail:
    """A product page from a stored product row (summary and detail fields) with the current ``stock`` and
    the category ``breadcrumbs`` (root first). SEO fields fall back to the name and the description."""
    return ProductDetail(
        **_summary_fields(row, currency, stock), description=row.get("description", ""),
        care_instructions=row.get("care_instructions"),
        add_ons=[AddOnOut(code=a["code"], name=a["name"], kind=a["kind"], price=a["price"])
                 for a in row.get("add_ons", [])],
        images=[_image(i) for i in row.get("images", [])], tags=row.get("tags", []), breadcrumbs=breadcrumbs,
        seo=Seo(title=row.get("seo_title") or f"{row['name']} | Amour Florals",
                description=row.get("seo_description") or (row.get("description") or "")[:160] or None,
                canonical_path=f"/products/{row['slug']}"),
        updated_at=row["updated_at"])


def category_ref(entry: Row) -> CategoryRef:
    """A link to a category from a category index entry (``id``, ``name``, ``slug``)."""
    return CategoryRef(id=entry["id"], name=entry["name"], slug=entry["slug"],
                       canonical_path=f"/categories/{entry['slug']}")


def category_tree(entries: Iterable[Row]) -> CategoryTree:
    """The tree of the visible categories; ``entries`` come parents first (sorted by depth)."""
    nodes: dict[str, CategoryNode] = {}
    roots: list[CategoryNode] = []
    for c in entries:
        if not c["visible"]:
            continue
        node = CategoryNode(**category_ref(c).model_dump(), description=c["description"], image_url=c["image_url"],
                            sort_order=c["sort_order"], product_count=c["product_count"], children=[])
        nodes[c["id"]] = node
        parent = nodes.get(c["parent_id"]) if c["parent_id"] else None
        (parent.children if parent else roots).append(node)
    return CategoryTree(items=roots)


def category_detail(entry: Row, index: Mapping[str, Row]) -> CategoryDetail:
    """One category page from its index entry and the whole index (id -> entry): breadcrumbs from the root,
    visible children, SEO fields falling back to the name and the description."""
    ref = category_ref(entry)
    return CategoryDetail(
        **ref.model_dump(), description=entry["description"], image_url=entry["image_url"],
        parent_id=entry["parent_id"], depth=entry["depth"], product_count=entry["product_count"],
        breadcrumbs=[*[category_ref(index[a]) for a in entry["ancestors"] if a in index], ref],
        children=[CategoryChild(**category_ref(c).model_dump(), product_count=c["product_count"])
                  for c in index.values() if c["parent_id"] == entry["id"] and c["visible"]],
        seo=Seo(title=entry["seo_title"] or f"{entry['name']} | Amour Florals",
                description=entry["seo_description"] or entry["description"], canonical_path=ref.canonical_path))


def facets_out(total: int, counts: Mapping[str, Mapping[str, int]], categories: Iterable[tuple[Row, int]],
               price_counts: Mapping[int | str, int]) -> Facets:
    """Facets from the aggregated counts: ``counts`` per facet name (``occasions``, ``flower_types``,
    ``colors``) by value (every value is listed, zeros included), ``categories`` as (index entry, count), and
    ``price_counts`` by bucket lower bound in cents (``"over"`` for the open last bucket; see PRICE_BUCKETS)."""
    return Facets(
        total=total,
        occasions=[FacetCount(value=o.value, label=OCCASION_LABELS[o], count=counts["occasions"].get(o, 0))
                   for o in Occasion],
        flower_types=[FacetCount(value=t.value, label=t.value.replace("_", " ").title(),
                                 count=counts["flower_types"].get(t, 0)) for t in FlowerType],
        colors=[FacetCount(value=c.value, label=c.value.title(), count=counts["colors"].get(c, 0)) for c in Color],
        categories=[CategoryFacet(id=c["id"], slug=c["slug"], name=c["name"], count=n) for c, n in categories],
        price=[PriceBucket(min_price=lo, max_price=hi - 1 if hi else None,
                           count=price_counts.get(lo if hi else "over", 0)) for lo, hi in PRICE_BUCKETS])


def category_suggestion(entry: Row) -> Suggestion:
    return Suggestion(kind="category", label=entry["name"], value=entry["slug"], path=f"/categories/{entry['slug']}")


def occasion_suggestion(occasion: Occasion) -> Suggestion:
    return Suggestion(kind="occasion", label=OCCASION_LABELS[occasion], value=occasion.value,
                      path=f"/products?occasion={occasion.value}")


def product_suggestion(row: Row) -> Suggestion:
    return Suggestion(kind="product", label=row["name"], value=row["slug"], path=f"/products/{row['slug']}")
