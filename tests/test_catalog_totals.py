"""`total` and `total_capped` of `/products`: exact on every page up to CATALOG_TOTAL_CAP, then the cap with
`total_capped: true` ("40+"); a search says so when more products match than CATALOG_SEARCH_MAX_RESULTS. An
uncached page costs the database one flat `find` (which also brings the stock it is served with) and one
capped `$count` on the same filter -- counted with a PyMongo command listener."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import monitoring

from app.models.catalog import Category, Product
from tests.catalog_helpers import API, seed
from tests.support import new_client, random_ip

CAP = 40


class Commands(monitoring.CommandListener):
    """Commands sent to the ``products`` collection of one database while ``recording()`` is open."""

    def __init__(self) -> None:
        self.db: str | None = None
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name == self.db and event.command.get(event.command_name) == "products":
            self.seen.append((event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    @contextlib.contextmanager
    def recording(self, db: str) -> Iterator[list[tuple[str, dict[str, Any]]]]:
        self.db, self.seen = db, []
        try:
            yield self.seen
        finally:
            self.db = None


_COMMANDS = Commands()
monitoring.register(_COMMANDS)  # applies to the clients created from now on (each app's)


async def _pages(c, params: list[tuple[str, Any]], limit: int) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        page = [("cursor", cursor)] if cursor else []
        r = await c.get(f"{API}/products", params=[*params, ("limit", limit), *page])
        assert r.status_code == 200, r.text
        pages.append(r.json())
        cursor = pages[-1]["next_cursor"]
        if not cursor:
            return pages
    raise AssertionError("pagination did not end")


@pytest.fixture
async def shop_app(make_settings, app_factory):
    settings = make_settings(catalog_total_cap=CAP, catalog_search_max_results=10)
    async with app_factory(settings) as application:
        await seed(application)  # the 64 demo bouquets
        yield application


@pytest.fixture
async def shop(shop_app):
    async with new_client(shop_app, random_ip()) as c:
        yield c


@pytest.mark.parametrize("params", [
    [],
    [("sort", "price_asc"), ("min_price", 5000), ("max_price", 9999)],
    [("category", "bouquets"), ("sort", "price_desc"), ("min_price", 4000)],
    [("occasion", "birthday"), ("occasion", "sympathy"), ("sort", "popular")],
    [("featured", "true")],
], ids=["all", "price-range", "category+price", "occasions", "featured"])
async def test_totals_are_exact_up_to_the_cap_on_every_page(shop, params):
    pages = await _pages(shop, params, limit=7)
    walked = sum(len(p["items"]) for p in pages)
    assert walked > 0
    expected = (CAP, True) if walked > CAP else (walked, False)
    assert {(p["total"], p["total_capped"]) for p in pages} == {expected}
    one = (await shop.get(f"{API}/products", params=[*params, ("limit", 100)])).json()
    assert len(one["items"]) == walked and (one["total"], one["total_capped"]) == (walked, False)


async def test_the_capped_case_happens_and_a_narrow_filter_is_exact(shop):
    everything = (await shop.get(f"{API}/products", params={"limit": 5})).json()
    assert (everything["total"], everything["total_capped"]) == (CAP, True)  # 64 bouquets: "40+"
    narrow = (await shop.get(f"{API}/products", params={"limit": 5, "min_price": 12000})).json()
    assert narrow["total_capped"] is False and 0 < narrow["total"] <= CAP


async def test_search_total_says_when_matches_were_cut_at_the_ranking_cap(shop):
    def matching(term: str) -> int:
        return sum(1 for p in products if any(w.startswith(term) for w in p.search_words))

    products = await Product.find({"status": "active"}).to_list()
    for term in ("rose", "tulip", "orchid"):
        pages = await _pages(shop, [("q", term)], limit=4)
        walked = sum(len(p["items"]) for p in pages)
        n = matching(term)
        assert walked == min(n, 10) > 0, term
        assert {(p["total"], p["total_capped"]) for p in pages} == {(walked, n > 10)}, term
    assert matching("rose") > 10  # the capped case is exercised


async def test_the_contract_documents_the_cap_and_list_totals_as_counts(client):
    schemas = (await client.get(f"{API}/openapi.json")).json()["components"]["schemas"]
    page = schemas["ProductPage"]["properties"]
    assert page["total_capped"]["type"] == "boolean" and "total_capped" in schemas["ProductPage"]["required"]
    for name, schema in schemas.items():
        total = (schema.get("properties") or {}).get("total")
        if total is not None and "currency" not in schema["properties"]:
            assert "cents" not in (total.get("description") or ""), name  # a count, not money


async def test_an_uncached_page_is_one_flat_find_and_one_capped_count(shop_app, shop):
    bouquets = await Category.find_one({"slug": "bouquets"})
    flat = {"status": "active", "category_path": {"$in": [bouquets.id]}, "price_min": {"$gte": 4000, "$lte": 9000}}
    url = f"{API}/products?category=bouquets&min_price=4000&max_price=9000&sort=price_asc"
    assert (await shop.get(f"{API}/categories")).status_code == 200  # the category index is loaded and cached
    with _COMMANDS.recording(shop_app.state.settings.mongodb_db) as seen:
        page = (await shop.get(url + "&limit=5")).json()
    assert [name for name, _ in seen] == ["find", "aggregate"], seen
    find, count = seen[0][1], seen[1][1]
    assert find["filter"] == flat and find["limit"] == 6 and find["projection"]["stock"] == 1
    assert count["pipeline"] == [{"$match": flat}, {"$limit": CAP + 1}, {"$count": "n"}]
    assert all(i["sizes"] and "available" in i["sizes"][0] for i in page["items"])  # stock overlaid

    with _COMMANDS.recording(shop_app.state.settings.mongodb_db) as seen:
        everything = (await shop.get(url + "&limit=100")).json()
    assert [name for name, _ in seen] == ["find"], seen  # the first page holds every match: nothing to count
    assert everything["total"] == len(everything["items"]) == page["total"]

    with _COMMANDS.recording(shop_app.state.settings.mongodb_db) as seen:
        second = (await shop.get(url + f"&limit=5&cursor={page['next_cursor']}")).json()
    assert [name for name, _ in seen] == ["find", "aggregate"], seen
    assert "$and" not in seen[0][1]["filter"] and seen[0][1]["filter"]["status"] == "active"
    assert second["total"] == page["total"]
