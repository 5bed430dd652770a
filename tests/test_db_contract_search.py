"""Database contract of product search (``catalog_query.text_clause``): one anchored ``$regex`` inside
``$elemMatch`` per query word on the indexed ``search_words`` array, in ``find`` and inside an aggregation
``$match`` (the facets), each read back. Runs on the embedded server and on MONGODB_URL alike."""

from __future__ import annotations

import pytest

from app.core.text import search_words
from app.schemas.catalog.params import ProductFilters
from app.services.catalog_query import facets_pipeline, product_query


def doc(_id: str, name: str, description: str = "", status: str = "active") -> dict:
    return {"_id": _id, "name": name, "status": status, "price_min": 5000, "occasions": ["birthday"],
            "flower_types": ["roses"], "colors": ["pink"], "category_path": ["c1"], "stock_total": 1,
            "search_words": search_words(name, description)}


@pytest.fixture
async def coll(app, settings):
    c = app.state.runtime.mongo[settings.mongodb_db]["contract_search"]
    await c.create_index([("search_words", 1)], name="search_words")
    await c.insert_many([
        doc("p1", "Rosé Garden", "Blush roses and spray roses."),
        doc("p2", "ROSEMARY & Thyme", "Herbal bouquet"),
        doc("p3", "Pink Peonies", "With a single garden rose"),
        doc("p4", "Rosé Garden draft", status="draft"),
        doc("p5", "Sunny Tulips"),
    ])
    return c


async def _find(coll, q: str) -> list[str]:
    return sorted([d["_id"] async for d in coll.find(product_query(ProductFilters(q=q), None), {"_id": 1})])


@pytest.mark.parametrize(("q", "expected"), [
    ("rose", ["p1", "p2", "p3"]),        # prefix of "rose", "rosemary", "roses"; accents folded
    ("ROSÉ", ["p1", "p2", "p3"]),
    ("rosé garden", ["p1", "p3"]),       # every word must match
    ("garden rose", ["p1", "p3"]),
    ("thyme rosemary", ["p2"]),
    ("tulip", ["p5"]),
    ("lily", []),
    ("!!!", []),                         # no words: nothing
    ("ros*", ["p1", "p2", "p3"]),        # punctuation folds away: no regex reaches the query
])
async def test_every_query_word_prefixes_a_stored_word(coll, q, expected):
    assert await _find(coll, q) == expected


async def test_the_same_clause_inside_an_aggregation_match(coll):
    res = (await (await coll.aggregate(facets_pipeline(ProductFilters(q="rose garden"), None))).to_list(None))[0]
    assert res["total"] == [{"n": 2}]
    assert {r["_id"]: r["n"] for r in res["colors"]} == {"pink": 2}
