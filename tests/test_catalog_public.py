"""Public catalog over HTTP: filters with pagination, facets, detail, related, suggestions, ETags, sitemap."""

from __future__ import annotations

import pytest

from app.schemas.catalog.public import CategoryDetail, CategoryTree, Facets, ProductList, Suggestions
from tests.catalog_helpers import API, detail, make_category, make_product, seed, walk

FILTER_SETS = [
    {"sort": "price_asc"},
    {"sort": "price_desc", "occasion": ["birthday", "anniversary"]},
    {"sort": "popular", "flower_type": ["roses"], "color": ["red", "pink"]},
    {"sort": "newest", "min_price": 5000, "max_price": 9999, "in_stock": "true"},
    {"sort": "price_asc", "category": "bouquets", "occasion": ["mothers_day"], "min_price": 4000},
    {"sort": "rating", "featured": "true"},
    {"sort": "popular", "in_stock": "false"},
    {"q": "roses"},
    {"q": "peonies", "sort": "price_asc", "color": ["pink"]},
]


def _params(f: dict) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for k, v in f.items():
        out.extend((k, x) for x in v) if isinstance(v, list) else out.append((k, v))
    return out


def _matches(item: dict, f: dict, subtree: set[str]) -> bool:
    ok = True
    if f.get("occasion"):
        ok &= bool(set(item["occasions"]) & set(f["occasion"]))
    if f.get("flower_type"):
        ok &= bool(set(item["flower_types"]) & set(f["flower_type"]))
    if f.get("color"):
        ok &= bool(set(item["colors"]) & set(f["color"]))
    if "min_price" in f:
        ok &= item["price_min"] >= f["min_price"]
    if "max_price" in f:
        ok &= item["price_min"] <= f["max_price"]
    if f.get("in_stock") == "true":
        ok &= item["in_stock"] and any(s["available"] > 0 for s in item["sizes"])
    if f.get("in_stock") == "false":
        ok &= not item["in_stock"]
    if f.get("featured") == "true":
        ok &= item["featured"]
    if "category" in f:
        ok &= item["category_id"] in subtree
    return ok


SORT_KEYS = {
    "price_asc": lambda i: (i["price_min"], i["id"]),
    "price_desc": lambda i: (-i["price_min"], i["id"]),
    "popular": None, "rating": lambda i: (-i["rating"]["average"], -i["rating"]["count"], i["id"]),
    "newest": None,
}


@pytest.fixture
async def seeded(app, client):
    await seed(app)
    tree = CategoryTree.model_validate((await client.get(f"{API}/categories")).json())
    subtree = {n.id for n in tree.items if n.slug == "bouquets"}
    subtree |= {c.id for n in tree.items if n.slug == "bouquets" for c in n.children}
    return subtree


@pytest.mark.parametrize("filters", FILTER_SETS, ids=lambda f: ",".join(f))
async def test_filters_with_pagination_match_no_dupes_stable(client, seeded, filters):
    params = _params(filters)
    items = await walk(client, params, limit=7)
    ids = [i["id"] for i in items]
    assert ids, "every filter set of this test matches some demo products"
    assert len(ids) == len(set(ids)), "no product appears twice across pages"
    assert all(_matches(i, filters, seeded) for i in items)
    first = (await client.get(f"{API}/products", params=[*params, ("limit", 100)])).json()
    assert first["total"] == len(ids)
    assert [i["id"] for i in first["items"]] == ids, "paging returns the same order as one big page"
    key = SORT_KEYS.get(filters.get("sort", ""))
    if key:
        assert ids == [i["id"] for i in sorted(items, key=key)]
    if filters.get("sort") == "newest":
        assert ids == sorted(ids, reverse=True)


async def test_every_filter_is_respected_against_an_unfiltered_walk(client, seeded):
    everything = await walk(client, {}, limit=50)
    assert len(everything) == 64
    for f in FILTER_SETS[:7]:
        expected = {i["id"] for i in everything if _matches(i, f, seeded)}
        got = {i["id"] for i in await walk(client, _params(f), limit=25)}
        assert got == expected, f


async def test_search_matches_text_fields_and_ranks_name_matches_first(client, seeded):
    for term in ("roses", "tulip", "hatbox"):
        items = (await client.get(f"{API}/products", params={"q": term, "limit": 100})).json()["items"]
        assert items, term
        in_name = [term in i["name"].lower() for i in items]
        assert in_name[0] and in_name == sorted(in_name, reverse=True), "name matches rank first"
        for item in items:
            d = detail(await client.get(f"{API}/products/{item['id']}"))
            text = " ".join([d["name"], d["description"], *d["tags"], *d["flower_types"]]).lower()
            assert term in text, (term, d["name"])
    assert (await client.get(f"{API}/products", params={"q": "cactus"})).json() == {
        "items": [], "next_cursor": None, "total": 0, "total_capped": False}


async def test_facets_equal_the_counts_of_the_filtered_lists(client, seeded):
    base = {"in_stock": "true", "occasion": ["birthday"], "min_price": 4000}
    r = await client.get(f"{API}/products/facets", params=_params(base))
    assert r.status_code == 200, r.text
    facets = Facets.model_validate(r.json())
    assert facets.total == len(await walk(client, _params(base), limit=100))

    async def total(f: dict) -> int:
        return (await client.get(f"{API}/products", params=[*_params(f), ("limit", 1)])).json()["total"]

    # Disjunctive facets: a dimension's counts apply every other filter and that one value.
    for fc in facets.occasions:
        assert fc.count == await total({**base, "occasion": [fc.value]}), fc
    for fc in facets.colors:
        assert fc.count == await total({**base, "color": [fc.value]}), fc
    for fc in facets.flower_types[:6]:
        assert fc.count == await total({**base, "flower_type": [fc.value]}), fc
    for cf in facets.categories:
        assert cf.count == await total({**base, "category": cf.slug}), cf
    for b in facets.price:
        f = {k: v for k, v in base.items() if k != "min_price"}
        f["min_price"] = b.min_price
        if b.max_price is not None:
            f["max_price"] = b.max_price
        assert b.count == await total(f), b
    assert sum(b.count for b in facets.price) == await total({k: v for k, v in base.items() if k != "min_price"})


async def test_category_tree_and_detail(client, seeded):
    r = await client.get(f"{API}/categories")
    tree = CategoryTree.model_validate(r.json())
    assert len(tree.items) >= 5 and sum(len(n.children) for n in tree.items) >= 8
    bouquets = next(n for n in tree.items if n.slug == "bouquets")
    assert bouquets.product_count == sum(c.product_count for c in bouquets.children) > 0
    child = bouquets.children[0]
    r = await client.get(f"{API}/categories/{child.slug}")
    d = CategoryDetail.model_validate(r.json())
    assert [b.slug for b in d.breadcrumbs] == ["bouquets", child.slug]
    assert d.seo.canonical_path == f"/categories/{child.slug}" and d.product_count == child.product_count
    assert (await client.get(f"{API}/categories/{child.id}")).json()["slug"] == child.slug
    root = CategoryDetail.model_validate((await client.get(f"{API}/categories/bouquets")).json())
    assert {c.slug for c in root.children} == {c.slug for c in bouquets.children}
    assert (await client.get(f"{API}/categories/no-such-thing")).status_code == 404


async def test_product_detail_by_slug_and_id_drafts_hidden(client, seeded, staff):
    _, headers = staff
    d = detail(await client.get(f"{API}/products/peche-peonies"))
    assert d["name"] == "Pêche Peonies" and d["canonical_path"] == "/products/peche-peonies"
    assert d["currency"] == "USD" and all(isinstance(s["price"], int) for s in d["sizes"])
    assert d["seo"]["canonical_path"] == "/products/peche-peonies" and d["breadcrumbs"]
    assert {a["kind"] for a in d["add_ons"]} == {"vase", "extra"} and d["images"] == []
    assert detail(await client.get(f"{API}/products/{d['id']}"))["slug"] == "peche-peonies"
    cat = await make_category(client, headers, "Hidden")
    draft = await make_product(client, headers, cat["id"], "Secret Draft", status="draft")
    assert (await client.get(f"{API}/products/{draft['id']}")).status_code == 404
    assert (await client.get(f"{API}/products/secret-draft")).status_code == 404
    assert (await client.get(f"{API}/products/not-a-product")).status_code == 404
    listed = await walk(client, {"category": cat["slug"]})
    assert listed == []


async def test_related_featured_popular(client, seeded):
    d = detail(await client.get(f"{API}/products/classic-dozen-red-roses"))
    r = await client.get(f"{API}/products/{d['id']}/related")
    related = ProductList.model_validate(r.json()).items
    assert related and d["id"] not in {p.id for p in related}
    assert all(p.in_stock for p in related)
    assert all(p.category_id == d["category_id"] or set(p.occasions) & set(d["occasions"]) for p in related)
    featured = ProductList.model_validate((await client.get(f"{API}/products/featured")).json()).items
    assert featured and all(p.featured for p in featured)
    popular = (await client.get(f"{API}/products/popular", params={"limit": 10})).json()["items"]
    assert len(popular) == 10
    sold = {}
    for p in await walk(client, {"sort": "popular"}, limit=100):
        sold[p["id"]] = p
    top = list(sold)[:10]
    assert [p["id"] for p in popular] == top


@pytest.mark.parametrize("q", ["pech", "PÊCHE", "pêche pe", "Peche-Peo"])
async def test_suggest_accent_and_case_insensitive(client, seeded, q):
    r = await client.get(f"{API}/search/suggest", params={"q": q})
    s = Suggestions.model_validate(r.json())
    assert "Pêche Peonies" in [i.label for i in s.items if i.kind == "product"]


async def test_suggest_words_categories_occasions_and_bounds(client, seeded):
    s = (await client.get(f"{API}/search/suggest", params={"q": "péo"})).json()["items"]
    labels = [i["label"] for i in s]
    assert "Pêche Peonies" in labels and "Blushing Peony Cloud" in labels  # any word of the name
    s = (await client.get(f"{API}/search/suggest", params={"q": "bou"})).json()["items"]
    assert {"kind": "category", "label": "Bouquets", "value": "bouquets", "path": "/categories/bouquets"} in s
    s = (await client.get(f"{API}/search/suggest", params={"q": "valent"})).json()["items"]
    assert any(i["kind"] == "occasion" and i["value"] == "valentines_day" for i in s)
    s = (await client.get(f"{API}/search/suggest", params={"q": "r"})).json()["items"]
    assert s == []
    s = (await client.get(f"{API}/search/suggest", params={"q": "ro"})).json()["items"]
    assert 0 < len(s) <= 10
    assert (await client.get(f"{API}/search/suggest", params={"q": "x" * 101})).status_code == 422


async def test_etag_304_and_cache_control(client, seeded):
    for url in (f"{API}/products?occasion=birthday", f"{API}/products/peche-peonies", f"{API}/categories",
                f"{API}/products/facets", f"{API}/search/suggest?q=rose", f"{API}/sitemap.xml"):
        r = await client.get(url)
        assert r.status_code == 200 and r.headers["etag"] and "public" in r.headers["cache-control"]
        again = await client.get(url, headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == r.headers["etag"]
        other = await client.get(url, headers={"If-None-Match": '"stale"'})
        assert other.status_code == 200


async def test_bad_queries_are_422(client, seeded):
    for params in ({"occasion": "$ne"}, {"min_price": -1}, {"limit": 101}, {"sort": "name"},
                   {"min_price": 500, "max_price": 100}, {"cursor": "garbage!"}, {"unknown": "x"},
                   {"min_rating": 6}):
        r = await client.get(f"{API}/products", params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert (await client.get(f"{API}/products", params={"category": "nope"})).status_code == 404


async def test_sitemap_lists_active_categories_and_products(client, seeded, make_settings):
    r = await client.get(f"{API}/sitemap.xml")
    assert r.headers["content-type"].startswith("application/xml")
    assert "<loc>http://localhost:5173/products/peche-peonies</loc>" in r.text
    assert "<loc>http://localhost:5173/categories/bouquets</loc>" in r.text
    assert r.text.count("<url>") == 64 + 15 and r.text.count("<lastmod>") == 79
