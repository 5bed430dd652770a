"""Search folds accents and case everywhere: ``GET /products?q=rose`` finds "Rosé" (as suggest does), by the
folded ``search_words`` stored with each product -- written by the admin API, the seeder and the migration."""

from __future__ import annotations

import unicodedata

from app.models.catalog import Product
from tests.factories import make_product
from tests.support import API
from tests.test_cli import MIGRATIONS, cli_db  # noqa: F401  (fixture)


async def _names(client, **params) -> list[str]:
    r = await client.get(f"{API}/products", params=params)
    assert r.status_code == 200, r.text
    return sorted(i["name"] for i in r.json()["items"])


async def test_a_query_without_accents_finds_accented_names(client):
    await make_product(name="Rosé Garden")
    await make_product(name="Pêche Peonies", tags=["summer"])
    await make_product(name="Sunny Tulips")
    assert await _names(client, q="rose") == ["Rosé Garden"]
    assert await _names(client, q="ROSÉ garden") == ["Rosé Garden"]
    assert await _names(client, q="peche") == ["Pêche Peonies"]
    assert await _names(client, q="Pêche summer") == ["Pêche Peonies"]
    assert await _names(client, q="rose tulips") == []
    facets = (await client.get(f"{API}/products/facets", params={"q": "rose"})).json()
    assert facets["total"] == 1


async def test_admin_changes_keep_the_search_words_current(client, staff):
    product = await make_product(name="Blush Garden")
    headers = staff[1]
    r = await client.patch(f"{API}/admin/products/{product.id}", headers=headers,
                           json={"name": "Crème Brûlée Roses", "description": "Café-au-lait tones"})
    assert r.status_code == 200, r.text
    assert await _names(client, q="creme brulee") == ["Crème Brûlée Roses"]
    assert await _names(client, q="cafe") == ["Crème Brûlée Roses"]
    assert await _names(client, q="blush") == []


async def test_occasions_and_colors_are_searched_by_their_labels(client, staff):
    await make_product(name="Golden Hour", occasions=["mothers_day", "birthday"], colors=["yellow"])
    await make_product(name="Quiet Lilies", occasions=["sympathy"], colors=["white"])
    assert await _names(client, q="birthday") == ["Golden Hour"]
    assert await _names(client, q="mother's day") == ["Golden Hour"]
    assert await _names(client, q="mothers yellow") == ["Golden Hour"]
    assert await _names(client, q="white sympathy") == ["Quiet Lilies"]
    assert await _names(client, q="wedding") == []

    lilies = (await client.get(f"{API}/products", params={"q": "lilies"})).json()["items"][0]
    r = await client.patch(f"{API}/admin/products/{lilies['id']}", headers=staff[1],
                           json={"occasions": ["get_well"], "colors": ["pink"]})
    assert r.status_code == 200, r.text
    assert await _names(client, q="get well pink") == ["Quiet Lilies"]
    assert await _names(client, q="sympathy") == []


async def test_the_demo_seed_is_searchable_without_accents(client, app):
    from tests.catalog_helpers import seed

    await seed(app)
    accented = [p for p in await Product.find_all().to_list() if not p.name.isascii()]
    assert accented, "the demo catalog has accented names"
    for p in accented:
        first = unicodedata.normalize("NFKD", p.name.split()[0])
        folded = "".join(ch for ch in first if not unicodedata.combining(ch)).lower()
        assert folded.isascii() and p.name in await _names(client, q=folded, limit=100)


def test_the_migration_stores_search_words_and_goes_back(cli_db):  # noqa: F811
    invoke, db = cli_db
    db.products.insert_many([
        {"_id": "prd_old1", "name": "Rosé Garden", "tags": ["blush"], "flower_types": ["roses"],
         "description": "Soft café tones", "search_text": "rose garden blush roses"},
        {"_id": "prd_old2", "name": "Sunny Tulips", "tags": [], "flower_types": ["tulips"]},
        {"_id": "prd_old3", "name": "Golden Hour", "occasions": ["mothers_day"], "colors": ["yellow"],
         "description": "Warm"},
    ])
    r = invoke("migrate", "--path", str(MIGRATIONS))
    assert r.exit_code == 0, r.output
    old1 = db.products.find_one({"_id": "prd_old1"})
    assert old1["search_words"] == ["rose", "garden", "blush", "roses", "soft", "cafe", "tones"]
    assert "search_text" not in old1
    assert db.products.find_one({"_id": "prd_old2"})["search_words"] == ["sunny", "tulips"]
    # 20261213: occasions (by label) and colours, before the description
    assert db.products.find_one({"_id": "prd_old3"})["search_words"] == ["golden", "hour", "mothers", "day",
                                                                         "yellow", "warm"]

    r = invoke("migrate", "--path", str(MIGRATIONS), "--backward")
    assert r.exit_code == 0, r.output
    old1 = db.products.find_one({"_id": "prd_old1"})
    assert "search_words" not in old1 and old1["search_text"] == "rose garden blush roses"
