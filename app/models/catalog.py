"""Catalog storage: categories (a tree with stored ancestors) and products (bouquets).

Shared vocabularies (occasions, flower types, colors) live here so filters, schemas and the seed agree.
Stock is an embedded object keyed by size code (``stock: {"standard": 5, "deluxe": 3}``), changed only
by conditional atomic ``$inc`` (never read-modify-write). Units held by unpaid orders are already
taken out of ``stock``, so public availability excludes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from beanie import Document
from pydantic import BaseModel, Field, model_validator
from pymongo import ASCENDING, DESCENDING, IndexModel

from app.core.text import search_words
from app.models.base import id_field, now_field


class Occasion(StrEnum):
    birthday = "birthday"
    anniversary = "anniversary"
    love_romance = "love_romance"
    wedding = "wedding"
    sympathy = "sympathy"
    get_well = "get_well"
    congratulations = "congratulations"
    thank_you = "thank_you"
    new_baby = "new_baby"
    just_because = "just_because"
    mothers_day = "mothers_day"
    valentines_day = "valentines_day"


# What shoppers read for each occasion (facets, suggestions) and what search matches it by.
OCCASION_LABELS: dict[Occasion, str] = {
    Occasion.birthday: "Birthday", Occasion.anniversary: "Anniversary", Occasion.love_romance: "Love & Romance",
    Occasion.wedding: "Wedding", Occasion.sympathy: "Sympathy", Occasion.get_well: "Get Well",
    Occasion.congratulations: "Congratulations", Occasion.thank_you: "Thank You", Occasion.new_baby: "New Baby",
    Occasion.just_because: "Just Because", Occasion.mothers_day: "Mother's Day",
    Occasion.valentines_day: "Valentine's Day",
}


class FlowerType(StrEnum):
    roses = "roses"
    lilies = "lilies"
    tulips = "tulips"
    orchids = "orchids"
    sunflowers = "sunflowers"
    peonies = "peonies"
    hydrangeas = "hydrangeas"
    carnations = "carnations"
    daisies = "daisies"
    ranunculus = "ranunculus"
    gerberas = "gerberas"
    mixed = "mixed"


class Color(StrEnum):
    red = "red"
    pink = "pink"
    white = "white"
    yellow = "yellow"
    purple = "purple"
    orange = "orange"
    blue = "blue"
    mixed = "mixed"


class ProductStatus(StrEnum):
    draft = "draft"
    active = "active"
    archived = "archived"


class AddOnKind(StrEnum):
    vase = "vase"
    extra = "extra"


class Category(Document):
    id: str = id_field("cat")  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    name: str
    slug: str
    description: str | None = None
    image_url: str | None = None
    seo_title: str | None = None
    seo_description: str | None = None
    parent_id: str | None = None
    # Root first, parent last: a subtree query is one indexed match on `ancestors`.
    ancestors: list[str] = Field(default_factory=list)
    depth: int = 0  # 0 = root; at most 3 (4 levels)
    sort_order: int = 0
    is_active: bool = True
    search_keys: list[str] = Field(default_factory=list)  # text.word_keys(name), for prefix suggest
    created_at: datetime = now_field()
    updated_at: datetime = now_field()

    class Settings:
        name = "categories"
        indexes = [
            IndexModel([("slug", ASCENDING)], unique=True, name="slug_unique"),
            IndexModel([("ancestors", ASCENDING)], name="ancestors"),
            IndexModel([("parent_id", ASCENDING), ("sort_order", ASCENDING)], name="parent_order"),
            IndexModel([("search_keys", ASCENDING)], name="search_keys"),
        ]


class Size(BaseModel):
    code: str  # e.g. "standard", "deluxe", "premium"; the key into Product.stock
    name: str
    price: int  # cents
    description: str | None = None


class AddOn(BaseModel):
    code: str  # e.g. "glass-vase", "chocolates"
    name: str
    kind: AddOnKind
    price: int  # cents


class ProductImage(BaseModel):
    id: str = id_field("img")
    storage_key: str  # local path or Cloudinary public_id
    backend: str = "local"  # the storage backend holding the asset: "local" | "cloudinary"
    url: str
    alt: str = ""
    width: int
    height: int
    # width -> URL, for responsive images (srcset)
    variants: dict[str, str] = Field(default_factory=dict)


class Product(Document):
    id: str = id_field("prd")  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    name: str
    slug: str
    description: str = ""
    care_instructions: str | None = None
    category_id: str
    # The product's category followed by its ancestors: "in category X or below" is {"category_path": X}.
    category_path: list[str] = Field(default_factory=list)
    occasions: list[Occasion] = Field(default_factory=list)
    flower_types: list[FlowerType] = Field(default_factory=list)
    colors: list[Color] = Field(default_factory=list)
    sizes: list[Size] = Field(default_factory=list)
    stock: dict[str, int] = Field(default_factory=dict)  # size code -> units available
    # Sum of `stock`, changed in the same atomic $inc (app/services/inventory.py): `in_stock` filters on it.
    stock_total: int = 0
    # Incremented with every stock change and status/sizes change: orders the live stock events.
    stock_seq: int = 0
    add_ons: list[AddOn] = Field(default_factory=list)
    images: list[ProductImage] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    seo_title: str | None = None
    seo_description: str | None = None
    status: ProductStatus = ProductStatus.draft
    featured: bool = False
    low_stock_threshold: int = 3
    price_min: int = 0  # cheapest size price (cents), kept in step with `sizes` for filters and sorting
    rating_sum: int = 0  # exact aggregates, changed with $inc
    rating_count: int = 0
    rating_avg: float = 0.0
    units_sold: int = 0
    # The folded words of name, tags, flower types, occasions (their labels), colors and description
    # (text.search_words): `q` matches each
    # query word as a prefix of one of them. Derived here when a product is built without it; changes of
    # its sources recompute it (services/product_admin.py).
    search_words: list[str] = Field(default_factory=list)
    name_keys: list[str] = Field(default_factory=list)  # text.word_keys(name): accent-free prefix suggest
    ever_ordered: bool = False  # set by checkout; such a product can be archived but not deleted
    version: int = 0
    created_at: datetime = now_field()
    updated_at: datetime = now_field()

    class Settings:
        name = "products"
        indexes = [
            IndexModel([("slug", ASCENDING)], unique=True, name="slug_unique"),
            IndexModel([("status", ASCENDING), ("category_path", ASCENDING), ("price_min", ASCENDING)],
                       name="status_category_price"),
            IndexModel([("status", ASCENDING), ("occasions", ASCENDING), ("price_min", ASCENDING)],
                       name="status_occasion_price"),
            IndexModel([("status", ASCENDING), ("flower_types", ASCENDING)], name="status_flower"),
            IndexModel([("status", ASCENDING), ("colors", ASCENDING)], name="status_color"),
            IndexModel([("status", ASCENDING), ("price_min", ASCENDING)], name="status_price"),
            IndexModel([("status", ASCENDING), ("units_sold", DESCENDING)], name="status_popular"),
            IndexModel([("status", ASCENDING), ("rating_avg", DESCENDING)], name="status_rating"),
            IndexModel([("status", ASCENDING), ("featured", ASCENDING)], name="status_featured"),
            IndexModel([("status", ASCENDING), ("category_path", ASCENDING), ("units_sold", DESCENDING)],
                       name="status_category_popular"),
            IndexModel([("status", ASCENDING), ("stock_total", ASCENDING)], name="status_stock"),
            IndexModel([("category_id", ASCENDING)], name="category"),
            # Anchored prefix regex ($elemMatch) on the accent-free word keys of the name.
            IndexModel([("name_keys", ASCENDING)], name="name_keys"),
            # Anchored prefix regex ($elemMatch) per query word on the folded search words.
            IndexModel([("search_words", ASCENDING)], name="search_words"),
        ]

    @model_validator(mode="after")
    def _derive_search_words(self) -> Product:
        if not self.search_words:
            self.search_words = product_search_words(self.name, self.tags, self.flower_types, self.description,
                                                     self.occasions, self.colors)
        return self


def product_search_words(
    name: str, tags: list[str], flower_types: Sequence[str], description: str | None,
    occasions: Sequence[str] = (), colors: Sequence[str] = (),
) -> list[str]:
    """What ``q`` searches in: the folded words of the name, tags, flower types, occasions (by their labels:
    "Mother's Day" is found by ``mothers day`` and ``mother's``), colors and description, in that order (the
    description's words are the ones left out past ``MAX_SEARCH_WORDS``)."""
    labels = [OCCASION_LABELS[Occasion(o)] for o in occasions]
    return search_words(name, tags, [str(t) for t in flower_types], labels, [str(c) for c in colors], description)
