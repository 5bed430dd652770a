"""Public product filters as MongoDB queries: match clauses, sort orders and the facets pipeline.

Clauses are combined with ``all_of`` into flat filter documents (no ``$and`` unless two clauses constrain the
same key, e.g. two search words). Search (``q``) matches the folded ``search_words`` stored with
each product: every query word, folded the same way (accents and case), must be the start of one of them
-- an anchored regex inside ``$elemMatch``, a form real MongoDB and the embedded server answer alike (see
tests/test_db_contract_catalog.py). Search results are ranked by ``relevance`` and paged in Python (bounded
by CATALOG_SEARCH_MAX_RESULTS).
"""

from __future__ import annotations

import re
from typing import Any

from app.core.filters import all_of
from app.core.text import normalize
from app.models.catalog import ProductStatus
from app.models.catalog_facets import PRICE_BUCKETS
from app.schemas.catalog.params import ProductFilters, ProductSort

ACTIVE = {"status": ProductStatus.active.value}

# Whitelisted sort orders; the last key is the unique _id (ids are time-ordered, so newest = _id desc).
SORTS: dict[ProductSort, list[tuple[str, int]]] = {
    ProductSort.relevance: [("score", -1), ("_id", 1)],
    ProductSort.price_asc: [("price_min", 1), ("_id", 1)],
    ProductSort.price_desc: [("price_min", -1), ("_id", 1)],
    ProductSort.newest: [("_id", -1)],
    ProductSort.popular: [("units_sold", -1), ("_id", 1)],
    ProductSort.rating: [("rating_avg", -1), ("rating_count", -1), ("_id", 1)],
}


def effective_sort(sort: ProductSort | None, q: str | None) -> ProductSort:
    if sort is None or (sort is ProductSort.relevance and not q):
        return ProductSort.relevance if q else ProductSort.newest
    return sort


MAX_QUERY_WORDS = 8


def text_clause(q: str) -> dict[str, Any]:
    """Every folded word of ``q`` starts a word of the product's ``search_words`` (nothing matches a query
    without words, e.g. only punctuation)."""
    terms = list(dict.fromkeys(normalize(q).split()))[:MAX_QUERY_WORDS] or [""]
    return all_of(*({"search_words": {"$elemMatch": {"$regex": "^" + re.escape(t) + ("" if t else "$")}}}
                    for t in terms))


def common_clauses(f: ProductFilters) -> list[dict[str, Any]]:
    """Clauses that are not facet dimensions: status, text, stock, rating, featured."""
    clauses: list[dict[str, Any]] = [text_clause(f.q)] if f.q else []
    clauses.append(ACTIVE)
    if f.in_stock is not None:
        clauses.append({"stock_total": {"$gt": 0}} if f.in_stock else {"stock_total": {"$lte": 0}})
    if f.min_rating is not None:
        clauses.append({"rating_avg": {"$gte": f.min_rating}})
    if f.featured is not None:
        clauses.append({"featured": f.featured})
    return clauses


def dimension_clauses(f: ProductFilters, category_id: str | None) -> dict[str, dict[str, Any]]:
    """The facet dimensions that are filtered on, each as one clause (any-of within a dimension)."""
    dims: dict[str, dict[str, Any]] = {}
    if category_id:
        dims["category"] = {"category_path": {"$in": [category_id]}}  # $in: see tests/test_db_contract_catalog
    if f.occasion:
        dims["occasion"] = {"occasions": {"$in": [o.value for o in f.occasion]}}
    if f.flower_type:
        dims["flower_type"] = {"flower_types": {"$in": [t.value for t in f.flower_type]}}
    if f.color:
        dims["color"] = {"colors": {"$in": [c.value for c in f.color]}}
    if f.min_price is not None or f.max_price is not None:
        rng: dict[str, int] = {}
        if f.min_price is not None:
            rng["$gte"] = f.min_price
        if f.max_price is not None:
            rng["$lte"] = f.max_price
        dims["price"] = {"price_min": rng}
    return dims


def product_query(f: ProductFilters, category_id: str | None) -> dict[str, Any]:
    """The flat filter of a product list: e.g. ``{"status": "active", "category_path": {"$in": [id]},
    "price_min": {"$gte": 4000, "$lte": 30000}}`` (served by the ``status_category_price`` index)."""
    return all_of(*common_clauses(f), *dimension_clauses(f, category_id).values())


def _match(clauses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"$match": all_of(*clauses)}] if clauses else []


def facets_pipeline(f: ProductFilters, category_id: str | None) -> list[dict[str, Any]]:
    """One aggregation: the common filters first, then per dimension the other dimensions' filters
    (disjunctive facets: the count next to a checkbox is what ticking it would add) and a count."""
    dims = dimension_clauses(f, category_id)

    def others(exclude: str | None) -> list[dict[str, Any]]:
        return _match([c for k, c in dims.items() if k != exclude])

    def group(exclude: str, field: str) -> list[dict[str, Any]]:
        return [*others(exclude), {"$unwind": f"${field}"}, {"$group": {"_id": f"${field}", "n": {"$sum": 1}}}]

    boundaries = [lo for lo, _ in PRICE_BUCKETS]
    return [
        {"$match": all_of(*common_clauses(f))},
        {"$facet": {
            "total": [*others(None), {"$count": "n"}],
            "occasions": group("occasion", "occasions"),
            "flower_types": group("flower_type", "flower_types"),
            "colors": group("color", "colors"),
            "categories": group("category", "category_path"),
            "price": [*others("price"), {"$bucket": {"groupBy": "$price_min", "boundaries": boundaries,
                                                     "default": "over"}}],
        }},
    ]


def order_rows(rows: list[dict[str, Any]], sort: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """Sort rows in Python exactly like MongoDB would by ``sort`` (stable multi-pass)."""
    out = list(rows)
    for field, direction in reversed(sort):
        out.sort(key=lambda r: _sort_value(r, field), reverse=direction == -1)  # noqa: B023 (sorted at once)
    return out


def _sort_value(row: dict[str, Any], field: str) -> Any:
    """``row``'s value of a sort key: a missing or null field sorts as 0 (the sort keys are numbers or _id)."""
    return row.get(field) or 0 if field != "_id" else row["_id"]


def is_after(row: dict[str, Any], values: list[Any], sort: list[tuple[str, int]]) -> bool:
    """True when ``row`` comes strictly after the cursor ``values`` in ``sort`` order."""
    for (field, direction), value in zip(sort, values, strict=True):
        mine = _sort_value(row, field)
        if mine == value:
            continue
        try:
            return bool(mine > value if direction == 1 else mine < value)
        except TypeError:
            return False
    return False
