"""Search finds products by occasion and colour: ``search_words`` now also holds the folded words of each
product's occasion labels ("Mother's Day" → ``mothers``, ``day``) and colours, before the description's.

Forward: recompute ``search_words`` of every product with ``product_search_words`` (name, tags, flower types,
occasions, colours, description). Backward: recompute them from name, tags, flower types and description, as
the previous release wrote them. Both only set a derived field: running either again gives the same result.
"""

from beanie import Document, free_fall_migration

from app.core.text import search_words
from app.models.catalog import product_search_words


class Product(Document):
    id: str
    name: str = ""

    class Settings:
        name = "products"


FIELDS = {"name": 1, "tags": 1, "flower_types": 1, "description": 1, "occasions": 1, "colors": 1}


async def _recompute(session, words_of):
    coll = Product.get_pymongo_collection()
    async for d in coll.find({}, FIELDS, session=session):
        await coll.update_one({"_id": d["_id"]}, {"$set": {"search_words": words_of(d)}}, session=session)


class Forward:
    @free_fall_migration(document_models=[Product])
    async def add_occasions_and_colors(self, session):
        await _recompute(session, lambda d: product_search_words(
            d.get("name") or "", d.get("tags") or [], d.get("flower_types") or [], d.get("description"),
            d.get("occasions") or [], d.get("colors") or []))


class Backward:
    @free_fall_migration(document_models=[Product])
    async def remove_occasions_and_colors(self, session):
        await _recompute(session, lambda d: search_words(
            d.get("name"), d.get("tags") or [], d.get("flower_types") or [], d.get("description")))
