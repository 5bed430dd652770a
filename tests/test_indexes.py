"""The catalog's indexes: each expected name is declared on its document and exists in the database.

The embedded server renames indexes (``idx_<collection>_<fields>``) and reports every direction as 1, so
when the name is absent the fields are compared. (There is no text index: search matches the folded
``search_words``.)
"""

from __future__ import annotations

from app.models.catalog import Category, Product
from app.models.inventory import StockMovement

EXPECTED = {
    Product: {
        "slug_unique", "status_category_price", "status_occasion_price", "status_flower", "status_color",
        "status_price", "status_popular", "status_rating", "status_featured", "status_category_popular",
        "status_stock", "category", "name_keys", "search_words",
    },
    Category: {"slug_unique", "ancestors", "parent_order", "search_keys"},
    StockMovement: {"product"},
}


def _declared(model) -> dict[str, list[tuple[str, object]]]:
    return {ix.document["name"]: list(ix.document["key"].items()) for ix in model.Settings.indexes}


async def test_expected_indexes_declared_and_present(app):
    for model, names in EXPECTED.items():
        declared = _declared(model)
        assert set(declared) == names, model.__name__
        present = await model.get_pymongo_collection().index_information()
        present_fields = [[k for k, _ in v["key"]] for v in present.values()]
        for name, key in declared.items():
            if name in present:  # real MongoDB keeps names and directions
                assert list(present[name]["key"]) == key, (model.__name__, name)
            else:
                assert [k for k, _ in key] in present_fields, (model.__name__, name)


async def test_no_compound_index_contains_id():
    for model in EXPECTED:
        for ix in model.Settings.indexes:
            keys = list(ix.document["key"])
            assert len(keys) == 1 or "_id" not in keys, (model.__name__, ix.document["name"])


async def test_unique_slug_enforced(app):
    from pymongo.errors import DuplicateKeyError

    await Category(name="One", slug="same").insert()
    try:
        await Category(name="Two", slug="same").insert()
    except DuplicateKeyError:
        return
    raise AssertionError("a second category with the same slug was stored")


async def test_app_restarts_on_a_seeded_database(app, settings):
    """Index creation at start-up must tolerate existing indexes on non-empty collections."""
    from asgi_lifespan import LifespanManager

    from app.main import create_app
    from tests.catalog_helpers import seed

    await seed(app)
    await seed(app)  # the demo seeder is idempotent
    assert await Product.find({}).count() == 64 and await Category.find({}).count() == 15
    again = create_app(settings)
    async with LifespanManager(again, startup_timeout=30):
        # Every seeded product with roses has the search word "roses" (derived when the seeder built it).
        found = await Product.find({"search_words": {"$elemMatch": {"$regex": "^roses"}}}).count()
        assert found >= await Product.find({"flower_types": {"$in": ["roses"]}}).count() > 0
