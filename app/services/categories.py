"""Category administration: create, update, move within the tree (max 4 levels), delete.

Each category stores its ``ancestors`` (root first) and ``depth``; each product stores its
``category_path`` (its category, then that category's ancestors nearest first). A move rewrites both
for the moved subtree, so "products in X or below" stays one indexed match.
"""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.text import word_keys
from app.models.catalog import Category, Product
from app.schemas.catalog.admin import CategoryCreate, CategoryUpdate
from app.services.catalog_cache import CatalogCache, notify_catalog_changed
from app.services.slugs import insert_with_slug

MAX_DEPTH = 3  # depth 0..3 = 4 levels
# Timestamps are written with $currentDate: the embedded server stores a top-level datetime given to
# $set as a string (see tests/test_db_contract_catalog.py).
TOUCH = {"updated_at": True}


def category_path(category_id: str, ancestors: list[str]) -> list[str]:
    return [category_id, *reversed(ancestors)]


class CategoryAdminService:
    def __init__(self, cache: CatalogCache) -> None:
        """``cache``: the catalog cache bumped after each category write."""
        self.cache = cache

    async def get(self, category_id: str) -> Category:
        cat = await Category.get(category_id)
        if cat is None:
            raise NotFound("No such category.")
        return cat

    async def list_all(self) -> list[Category]:
        return await Category.find({}).sort("+depth", "+sort_order", "+name").to_list()

    async def _parent(self, parent_id: str | None) -> Category | None:
        if parent_id is None:
            return None
        parent = await Category.get(parent_id)
        if parent is None:
            raise Unprocessable("The parent category does not exist.", code="unknown-parent")
        return parent

    async def create(self, body: CategoryCreate) -> Category:
        parent = await self._parent(body.parent_id)
        ancestors = [*parent.ancestors, parent.id] if parent else []
        if len(ancestors) > MAX_DEPTH:
            raise Conflict("Categories nest at most 4 levels deep.", code="category-too-deep")
        fields = body.model_dump(exclude={"slug"})

        async def insert(slug: str) -> Category:
            cat = Category(**fields, slug=slug, ancestors=ancestors, depth=len(ancestors),
                           search_keys=word_keys(body.name))
            return await cat.insert()

        cat: Category = await insert_with_slug(insert, body.name, body.slug)
        await notify_catalog_changed(self.cache)
        return cat

    async def update(self, category_id: str, body: CategoryUpdate) -> Category:
        await self.get(category_id)
        changes = body.model_dump(exclude_unset=True)
        for required in ("name", "slug", "sort_order", "is_active"):
            if required in changes and changes[required] is None:
                raise Unprocessable(f"{required} cannot be null.")
        if "name" in changes:
            changes["search_keys"] = word_keys(changes["name"])
        if changes:
            try:
                await Category.get_pymongo_collection().update_one({"_id": category_id},
                                                                   {"$set": changes, "$currentDate": TOUCH})
            except DuplicateKeyError:
                raise Conflict(f"The slug {changes['slug']!r} is taken.", code="slug-taken") from None
            await notify_catalog_changed(self.cache)
        return await self.get(category_id)

    async def move(self, category_id: str, parent_id: str | None) -> Category:
        cat = await self.get(category_id)
        parent = await self._parent(parent_id)
        if parent and (parent.id == cat.id or cat.id in parent.ancestors):
            raise Conflict("A category cannot move under itself or one of its descendants.", code="category-cycle")
        new_ancestors = [*parent.ancestors, parent.id] if parent else []
        # Membership as $in: the embedded server answers {"ancestors": id} wrongly on an indexed array.
        descendants = await Category.find({"ancestors": {"$in": [cat.id]}}).to_list()
        height = max((d.depth - cat.depth for d in descendants), default=0)
        if len(new_ancestors) + height > MAX_DEPTH:
            raise Conflict("After this move the tree would be deeper than 4 levels.", code="category-too-deep")
        coll = Category.get_pymongo_collection()
        moved = {cat.id: new_ancestors}
        await coll.update_one({"_id": cat.id}, {"$set": {"parent_id": parent.id if parent else None,
                                                         "ancestors": new_ancestors,
                                                         "depth": len(new_ancestors)}, "$currentDate": TOUCH})
        for d in descendants:
            below = d.ancestors[d.ancestors.index(cat.id):]  # the moved category and what lies under it
            ancestors = [*new_ancestors, *below]
            moved[d.id] = ancestors
            await coll.update_one({"_id": d.id}, {"$set": {"ancestors": ancestors, "depth": len(ancestors)},
                                                  "$currentDate": TOUCH})
        products = Product.get_pymongo_collection()
        for cid, ancestors in moved.items():
            await products.update_many({"category_id": cid},
                                       {"$set": {"category_path": category_path(cid, ancestors)},
                                        "$currentDate": TOUCH})
        await notify_catalog_changed(self.cache)
        return await self.get(cat.id)

    async def delete(self, category_id: str) -> None:
        await self.get(category_id)
        if await Category.find_one({"parent_id": category_id}) is not None:
            raise Conflict("Move or delete the subcategories first.", code="category-has-children")
        if await Product.find_one({"category_id": category_id}) is not None:
            raise Conflict("Move or delete the products of this category first (archived ones too).",
                           code="category-has-products")
        await Category.get_pymongo_collection().delete_one({"_id": category_id})
        await notify_catalog_changed(self.cache)
