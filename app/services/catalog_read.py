"""Public catalog reads: category tree, product lists, facets, detail, suggestions, sitemap.

What is cached (``catalog_cache``) is the *static* part of each answer (the projected product rows of a
page, facet counts, totals, the category index), keyed by the catalog version, and separately the stock
of the products shown (``{id: stock}``, one ``_id $in`` query), keyed by the stock version that every stock
change bumps. Each response is built from both by the mappers of ``app.schemas.catalog.public`` (so the
response models are the one definition of each shape): a sale costs one stock query per page on its next
request, never a recomputation of lists or facets. A product selling out or coming back changes list
membership for ``in_stock`` filters; ``inventory.adjust_stock`` bumps the catalog version for that (rare)
case, and lists filtered on stock also drop any item the current stock contradicts.
"""

from __future__ import annotations

import re
from typing import Any, Protocol
from xml.sax.saxutils import escape

from pymongo.asynchronous.collection import AsyncCollection

from app.config import Settings
from app.core.errors import NotFound
from app.core.filters import all_of, capped_count
from app.core.ids import looks_like_id
from app.core.pagination import cursor_kinds, decode_cursor, encode_cursor, keyset_filter, list_scope
from app.core.text import normalize
from app.models.catalog import OCCASION_LABELS, Category, Occasion, Product
from app.schemas.catalog.params import ProductFilters, ProductListParams, ProductSort
from app.schemas.catalog.public import (
    CategoryDetail,
    CategoryRef,
    CategoryTree,
    Facets,
    ProductDetail,
    ProductList,
    ProductPage,
    ProductSummary,
    Suggestions,
    category_detail,
    category_ref,
    category_suggestion,
    category_tree,
    facets_out,
    occasion_suggestion,
    product_detail,
    product_suggestion,
    product_summary,
)
from app.services.catalog_cache import CatalogCache
from app.services.catalog_query import (
    ACTIVE,
    SORTS,
    effective_sort,
    facets_pipeline,
    is_after,
    order_rows,
    product_query,
)

SUMMARY_FIELDS = ["name", "slug", "category_id", "price_min", "sizes", "images", "rating_avg", "rating_count",
                  "featured", "occasions", "flower_types", "colors", "units_sold"]
SUMMARY_PROJECTION = dict.fromkeys(SUMMARY_FIELDS, 1)
PAGE_PROJECTION = {**SUMMARY_PROJECTION, "stock": 1}  # a page load reads the stock it is served with
DETAIL_PROJECTION = {**SUMMARY_PROJECTION, **dict.fromkeys(
    ["description", "care_instructions", "add_ons", "tags", "seo_title", "seo_description", "updated_at"], 1)}
RANK_PROJECTION = dict.fromkeys(["price_min", "units_sold", "rating_avg", "rating_count", "name", "tags",
                                 "flower_types", "description"], 1)
MAX_SUGGESTIONS = 10


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


async def _ready(value: Any) -> Any:
    """``value`` as a cache loader's result (already read)."""
    return value


def _row(doc: dict[str, Any]) -> dict[str, Any]:
    """A product row as cached: the projected document without its stock (the overlay reads stock fresh)."""
    return {k: v for k, v in doc.items() if k != "stock"}


class CatalogReader:
    """The public catalog reads (categories, product lists and pages, facets, suggestions), answered through
    ``cache`` (the app's one ``CatalogCache``) and built into response models by the mappers of
    ``app.schemas.catalog.public``."""

    def __init__(self, settings: Settings, cache: CatalogCache) -> None:
        self.settings = settings
        self.currency = settings.currency
        self.cache = cache

    @property
    def products(self) -> AsyncCollection[dict[str, Any]]:
        """The raw ``products`` collection (projected, unvalidated reads)."""
        return Product.get_pymongo_collection()

    # --- categories -------------------------------------------------------------------------------
    async def category_index(self) -> dict[str, Any]:
        """Every category (small), with visibility and subtree product counts; cached."""

        async def load() -> dict[str, Any]:
            raw = await Category.get_pymongo_collection().find({}).to_list(None)
            counts_raw = await (await self.products.aggregate([
                {"$match": ACTIVE}, {"$unwind": "$category_path"},
                {"$group": {"_id": "$category_path", "n": {"$sum": 1}}},
            ])).to_list(None)
            counts = {r["_id"]: r["n"] for r in counts_raw}
            by_id = {c["_id"]: c for c in raw}
            cats: dict[str, dict[str, Any]] = {}
            for c in sorted(raw, key=lambda c: (c.get("depth", 0), c.get("sort_order", 0), c["name"])):
                visible = c.get("is_active", True) and all(
                    by_id.get(a, {}).get("is_active", False) for a in c.get("ancestors", []))
                cats[c["_id"]] = {
                    "id": c["_id"], "name": c["name"], "slug": c["slug"], "description": c.get("description"),
                    "image_url": c.get("image_url"), "seo_title": c.get("seo_title"),
                    "seo_description": c.get("seo_description"), "parent_id": c.get("parent_id"),
                    "ancestors": c.get("ancestors", []), "depth": c.get("depth", 0),
                    "sort_order": c.get("sort_order", 0), "visible": visible,
                    "search_keys": c.get("search_keys", []), "updated_at": _iso(c.get("updated_at")),
                    "product_count": counts.get(c["_id"], 0),
                }
            return {"categories": cats, "slugs": {c["slug"]: cid for cid, c in cats.items()}}

        return await self.cache.get_or_load("categories", None, load)

    async def resolve_category(self, ref: str) -> dict[str, Any]:
        index = await self.category_index()
        cid = ref if ref in index["categories"] else index["slugs"].get(ref.lower())
        cat: dict[str, Any] | None = index["categories"].get(cid) if cid else None
        if cat is None or not cat["visible"]:
            raise NotFound("No such category.")
        return cat

    async def category_tree(self) -> CategoryTree:
        return category_tree((await self.category_index())["categories"].values())

    async def category_detail(self, ref: str) -> CategoryDetail:
        cat = await self.resolve_category(ref)
        return category_detail(cat, (await self.category_index())["categories"])

    # --- product lists ----------------------------------------------------------------------------
    async def _category_id(self, f: ProductFilters) -> str | None:
        return (await self.resolve_category(f.category))["id"] if f.category else None

    @staticmethod
    def _filters_key(f: ProductFilters, category_id: str | None) -> dict[str, Any]:
        key = f.model_dump(mode="json", include=set(ProductFilters.model_fields))
        key["category"] = category_id
        return key

    async def list_products(self, p: ProductListParams) -> ProductPage:
        category_id = await self._category_id(p)
        sort = effective_sort(p.sort, p.q)
        fkey = self._filters_key(p, category_id)
        key = {"f": fkey, "sort": sort.value, "limit": p.limit, "cursor": p.cursor}

        async def load() -> dict[str, Any]:
            fresh: dict[str, dict[str, int]] = {}  # the stock the page's own query read
            if p.q:
                page = await self._search_page(p, category_id, sort, fkey, fresh)
            else:
                page = await self._keyset_page(p, category_id, sort, fresh)
            ids = [r["_id"] for r in page["items"]]
            if ids:  # kept as the stock entry ``with_stock`` reads next: no second query, for every waiter
                stock = {i: fresh[i] for i in ids if i in fresh}
                await self.cache.get_or_load("stock", ids, lambda: _ready(stock), stock=True)
            return page

        page = await self.cache.get_or_load("list", key, load)
        items = await self.with_stock(page["items"], p.in_stock)
        return ProductPage(items=items, next_cursor=page["next_cursor"], total=page["total"],
                           total_capped=page.get("total_capped", False))

    async def _keyset_page(self, p: ProductListParams, category_id: str | None, sort: ProductSort,
                           stock: dict[str, dict[str, int]]) -> dict[str, Any]:
        """One page in keyset order and the number of matches: one find (which also fills ``stock``, id ->
        stock by size, for the caller's views; the cached page holds no stock) and, unless the first page
        already holds every match, one count on the same flat filter, capped at CATALOG_TOTAL_CAP."""
        spec = SORTS[sort]
        query = product_query(p, category_id)
        full = query
        if p.cursor:
            full = all_of(query, keyset_filter(spec, decode_cursor(p.cursor, cursor_kinds(Product, spec),
                                                                   list_scope("products", spec))))
        docs = await self.products.find(full, PAGE_PROJECTION).sort(spec).limit(p.limit + 1).to_list(None)
        next_cursor = None
        if len(docs) > p.limit:
            docs = docs[: p.limit]
            next_cursor = encode_cursor([docs[-1].get(f) for f, _ in spec], list_scope("products", spec))
        stock.update((d["_id"], d.get("stock") or {}) for d in docs)
        if p.cursor is None and next_cursor is None:
            total, capped = len(docs), False  # the first page is every match
        else:
            total, capped = await capped_count(self.products, query, self.settings.catalog_total_cap)
        return {"items": [_row(d) for d in docs], "next_cursor": next_cursor, "total": total,
                "total_capped": capped}

    async def _search_page(self, p: ProductListParams, category_id: str | None, sort: ProductSort,
                           fkey: dict[str, Any], stock: dict[str, dict[str, int]]) -> dict[str, Any]:
        """Search matches (``search_words``, see catalog_query.text_clause) are ranked in Python (bounded):
        the sort keys and relevance of every match are computed once per filter set (cached), ordered, and
        the page after the cursor is cut from them."""
        spec = SORTS[sort]

        async def rank() -> dict[str, Any]:
            most = self.settings.catalog_search_max_results
            docs = await self.products.find(product_query(p, category_id), RANK_PROJECTION).limit(most + 1) \
                .to_list(None)
            return {"capped": len(docs) > most, "rows": [
                {"_id": d["_id"], "score": relevance(d, p.q or ""), "price_min": d.get("price_min", 0),
                 "units_sold": d.get("units_sold", 0), "rating_avg": d.get("rating_avg", 0.0),
                 "rating_count": d.get("rating_count", 0)} for d in docs[:most]]}

        ranked = await self.cache.get_or_load("rank", fkey, rank)
        rows = order_rows(ranked["rows"], spec)
        if p.cursor:
            after = decode_cursor(p.cursor, cursor_kinds(Product, spec, score=int), list_scope("products-search", spec))
            rows = [r for r in rows if is_after(r, after, spec)]
        chosen = rows[: p.limit]
        next_cursor = (encode_cursor([chosen[-1].get(f) for f, _ in spec], list_scope("products-search", spec))
                       if len(rows) > p.limit else None)
        docs = await self.products.find({"_id": {"$in": [r["_id"] for r in chosen]}, **ACTIVE},
                                        PAGE_PROJECTION).to_list(None)
        stock.update((d["_id"], d.get("stock") or {}) for d in docs)
        by_id = {d["_id"]: d for d in docs}
        items = [_row(by_id[r["_id"]]) for r in chosen if r["_id"] in by_id]
        return {"items": items, "next_cursor": next_cursor, "total": len(ranked["rows"]),
                "total_capped": ranked["capped"]}

    async def with_stock(self, rows: list[dict[str, Any]], in_stock: bool | None = None) -> list[ProductSummary]:
        """Product cards of cached ``rows`` with the current stock (one query); products that are gone (or no
        longer active) and, when ``in_stock`` is set, those contradicting it are left out."""
        if not rows:
            return []
        stock = await self.stock_of([r["_id"] for r in rows])
        out = [product_summary(r, self.currency, stock[r["_id"]]) for r in rows if r["_id"] in stock]
        return out if in_stock is None else [i for i in out if i.in_stock is in_stock]

    async def stock_of(self, ids: list[str]) -> dict[str, dict[str, int]]:
        """Current stock of the active products among ``ids`` (cached under the stock version)."""

        async def load() -> dict[str, dict[str, int]]:
            query = {"_id": {"$in": ids}, **ACTIVE} if len(ids) > 1 else {"_id": ids[0], **ACTIVE}
            return {d["_id"]: d.get("stock") or {} async for d in self.products.find(query, {"stock": 1})}

        return await self.cache.get_or_load("stock", ids, load, stock=True)

    async def facets(self, f: ProductFilters) -> Facets:
        category_id = await self._category_id(f)

        async def load() -> dict[str, Any]:
            rows: list[dict[str, Any]] = await (await self.products.aggregate(facets_pipeline(f, category_id))) \
                .to_list(None)
            return rows[0]

        res = await self.cache.get_or_load("facets", self._filters_key(f, category_id), load)
        cats = (await self.category_index())["categories"]
        cat_counts = {r["_id"]: r["n"] for r in res.get("categories", [])}
        return facets_out(
            total=res["total"][0]["n"] if res.get("total") else 0,
            counts={k: {r["_id"]: r["n"] for r in res.get(k, [])} for k in ("occasions", "flower_types", "colors")},
            categories=[(c, cat_counts[c["id"]]) for c in cats.values() if c["visible"] and cat_counts.get(c["id"])],
            price_counts={r["_id"]: r["count"] for r in res.get("price", [])})

    async def _simple_list(self, name: str, params: Any, query: dict[str, Any], sort: list[tuple[str, int]],
                           limit: int) -> list[dict[str, Any]]:
        async def load() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = await self.products.find(query, SUMMARY_PROJECTION).sort(sort) \
                .limit(limit).to_list(None)
            return rows

        return await self.cache.get_or_load(name, params, load)

    async def featured(self, limit: int) -> ProductList:
        items = await self._simple_list("featured", limit, all_of(ACTIVE, {"featured": True}),
                                        SORTS[ProductSort.popular], limit)
        return ProductList(items=await self.with_stock(items))

    async def popular(self, limit: int) -> ProductList:
        items = await self._simple_list("popular", limit, ACTIVE, SORTS[ProductSort.popular], limit)
        return ProductList(items=await self.with_stock(items))

    async def related(self, ref: str, limit: int) -> ProductList:
        """In-stock products of the same category or sharing an occasion, best sellers first."""
        product = await self._detail_row(ref)
        query = all_of(ACTIVE, {"_id": {"$ne": product["_id"]}}, {"stock_total": {"$gt": 0}},
                       {"$or": [{"category_id": product["category_id"]},
                                {"occasions": {"$in": product["occasions"]}}]})
        items = await self._simple_list("related", [product["_id"], limit], query, SORTS[ProductSort.popular], limit)
        return ProductList(items=await self.with_stock(items, in_stock=True))

    # --- product detail ---------------------------------------------------------------------------
    async def _detail_row(self, ref: str) -> dict[str, Any]:
        """The cached row of the active product ``ref`` (id or slug); NotFound when there is none."""

        async def load() -> dict[str, Any] | None:
            by = {"_id": ref} if looks_like_id(ref, "prd") else {"slug": ref.lower()}
            row: dict[str, Any] | None = await self.products.find_one({**by, **ACTIVE}, DETAIL_PROJECTION)
            return row

        row = await self.cache.get_or_load("product", ref, load)
        if row is None:
            raise NotFound("No such product.")
        return row

    async def _breadcrumbs(self, category_id: str) -> list[CategoryRef]:
        cats = (await self.category_index())["categories"]
        cat = cats.get(category_id)
        if cat is None:
            return []
        return [*[category_ref(cats[a]) for a in cat["ancestors"] if a in cats], category_ref(cat)]

    async def product_detail(self, ref: str) -> ProductDetail:
        row = await self._detail_row(ref)
        stock = await self.stock_of([row["_id"]])
        if row["_id"] not in stock:
            raise NotFound("No such product.")
        return product_detail(row, self.currency, stock[row["_id"]], await self._breadcrumbs(row["category_id"]))

    # --- suggestions and sitemap ------------------------------------------------------------------
    async def suggest(self, q: str) -> Suggestions:
        key = normalize(q)
        if len(key) < 2:
            return Suggestions(items=[])

        async def load() -> list[dict[str, Any]]:
            query = all_of(ACTIVE, {"name_keys": {"$elemMatch": {"$regex": "^" + re.escape(key)}}})
            rows: list[dict[str, Any]] = await self.products.find(query, {"name": 1, "slug": 1}) \
                .sort(SORTS[ProductSort.popular]).limit(MAX_SUGGESTIONS).to_list(None)
            return rows

        cats = (await self.category_index())["categories"].values()
        out = [category_suggestion(c) for c in cats
               if c["visible"] and any(k.startswith(key) for k in c["search_keys"])][:3]
        occasions = [o for o in Occasion if any(w.startswith(key) for w in _word_starts(OCCASION_LABELS[o]))]
        out += [occasion_suggestion(o) for o in occasions[:3]]
        rows = await self.cache.get_or_load("suggest", key, load)
        out += [product_suggestion(r) for r in rows[:MAX_SUGGESTIONS - len(out)]]
        return Suggestions(items=out)

    async def sitemap(self) -> str:
        async def load() -> str:
            base = self.settings.storefront_url.rstrip("/")
            urls = [(f"{base}/categories/{c['slug']}", c["updated_at"])
                    for c in (await self.category_index())["categories"].values() if c["visible"]]
            async for d in self.products.find(ACTIVE, {"slug": 1, "updated_at": 1}).sort([("_id", 1)]):
                urls.append((f"{base}/products/{d['slug']}", _iso(d.get("updated_at"))))
            body = "".join(
                f"<url><loc>{escape(loc)}</loc>" + (f"<lastmod>{escape(mod)}</lastmod>" if mod else "") + "</url>"
                for loc, mod in urls)
            return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                    f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{body}</urlset>\n')

        return await self.cache.get_or_load("sitemap", None, load)


RELEVANCE_WEIGHTS = (("name", 10), ("tags", 5), ("flower_types", 5), ("description", 1))


def relevance(doc: dict[str, Any], q: str) -> int:
    """Weighted count of query words found at the start of a word of each field (accent-free)."""
    terms = normalize(q).split()
    score = 0
    for field, weight in RELEVANCE_WEIGHTS:
        value = doc.get(field) or ""
        words = normalize(" ".join(value) if isinstance(value, list) else value).split()
        score += weight * sum(1 for t in terms for w in words if w.startswith(t))
    return score


def _word_starts(label: str) -> list[str]:
    norm = normalize(label)
    words = norm.split()
    return [norm, *(" ".join(words[i:]) for i in range(1, len(words)))]


class CatalogReaderOwner(Protocol):
    """What holds the app's one catalog reader (``app.composition.Runtime``, which builds it on first use)."""

    @property
    def catalog_reader(self) -> CatalogReader: ...


def get_catalog_reader(owner: CatalogReaderOwner) -> CatalogReader:
    """The app's catalog reader, held by ``owner``."""
    return owner.catalog_reader
