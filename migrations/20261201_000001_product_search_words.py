"""Store the folded search words of every product (``search_words``), which ``GET /products?q=`` now matches
instead of the text index, so "rose" finds "Rosé" on real MongoDB and on the embedded server alike.

Forward: compute ``search_words`` from name, tags, flower types and description; drop the old ``search_text``
field and the ``text_search`` index. Backward: restore ``search_text`` (name + tags + flower types, folded)
and remove ``search_words``; the previous release recreates its text index at start-up.
"""

from beanie import Document, free_fall_migration
from pymongo.errors import OperationFailure

from app.core.text import normalize, search_words


class Product(Document):
    id: str
    name: str = ""

    class Settings:
        name = "products"


FIELDS = {"name": 1, "tags": 1, "flower_types": 1, "description": 1}


async def _each(session):
    coll = Product.get_pymongo_collection()
    return coll, await coll.find({}, FIELDS, session=session).to_list(None)


class Forward:
    @free_fall_migration(document_models=[Product])
    async def add_search_words(self, session):
        coll, docs = await _each(session)
        for d in docs:
            words = search_words(d.get("name"), d.get("tags") or [], d.get("flower_types") or [], d.get("description"))
            await coll.update_one({"_id": d["_id"]}, {"$set": {"search_words": words}, "$unset": {"search_text": ""}},
                                  session=session)
        try:
            await coll.drop_index("text_search")
        except OperationFailure:  # absent, or named otherwise (the embedded server renames indexes)
            pass


class Backward:
    @free_fall_migration(document_models=[Product])
    async def remove_search_words(self, session):
        coll, docs = await _each(session)
        for d in docs:
            text = normalize(" ".join([d.get("name") or "", *(d.get("tags") or []), *(d.get("flower_types") or [])]))
            await coll.update_one({"_id": d["_id"]}, {"$set": {"search_text": text}, "$unset": {"search_words": ""}},
                                  session=session)

