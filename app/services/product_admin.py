"""Product administration: create, partial update, archive, delete, admin list, stock movements.

Derived fields (``price_min``, ``search_words``, ``name_keys``, ``category_path``) are recomputed
here whenever their sources change. Stock is only changed by ``app/services/inventory.py``.
"""

from __future__ import annotations

import re
from typing import Any

from pymongo.errors import DuplicateKeyError

from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.filters import all_of, count_matching
from app.core.ids import looks_like_id
from app.core.pagination import PageParams, paginate
from app.core.text import normalize, word_keys
from app.models.catalog import Category, Product, ProductStatus, product_search_words
from app.models.inventory import StockMovement, StockReason
from app.models.user import User
from app.schemas.catalog.admin import AdminProductParams, ProductCreate, ProductUpdate, StockAdjust
from app.services.catalog_cache import CatalogCache, notify_catalog_changed
from app.services.categories import TOUCH, category_path
from app.services.inventory import adjust_stock, publish_product_stock
from app.services.product_lookup import load_product
from app.services.slugs import insert_with_slug
from app.services.stock_host import StockHost

MovementPage = tuple[list[StockMovement], str | None]  # (stock movements, next cursor)


class ProductAdminService:
    def __init__(self, cache: CatalogCache, stock: StockHost) -> None:
        """``cache``: the catalog cache bumped after each product write; ``stock``: what stock changes need."""
        self.cache = cache
        self.stock = stock

    async def get(self, product_id: str) -> Product:
        return await load_product(product_id, active_only=False)

    async def _category(self, category_id: str) -> Category:
        cat = await Category.get(category_id)
        if cat is None:
            raise Unprocessable("The category does not exist.", code="unknown-category")
        return cat

    async def create(self, body: ProductCreate, actor: User) -> Product:
        cat = await self._category(body.category_id)
        stock = {s.code: s.stock for s in body.sizes}
        fields = body.model_dump(exclude={"slug", "sizes"})
        sizes = [s.model_dump(exclude={"stock"}) for s in body.sizes]
        derived = {
            "price_min": min(s.price for s in body.sizes),
            "search_words": product_search_words(body.name, body.tags, body.flower_types, body.description,
                                                 body.occasions, body.colors),
            "name_keys": word_keys(body.name),
            "category_path": category_path(cat.id, cat.ancestors),
        }

        async def insert(slug: str) -> Product:
            return await Product(**fields, **derived, slug=slug, sizes=sizes, stock=stock,
                                 stock_total=sum(stock.values())).insert()

        product: Product = await insert_with_slug(insert, body.name, body.slug)
        for code, units in stock.items():
            if units:
                await StockMovement(product_id=product.id, size=code, delta=units, before=0, after=units,
                                    reason=StockReason.initial, actor_id=actor.id).insert()
        await notify_catalog_changed(self.cache)
        return product

    async def update(self, product_id: str, body: ProductUpdate) -> Product:
        patch = body.model_dump(exclude_unset=True)
        coll = Product.get_pymongo_collection()
        for _ in range(10):
            current = await self.get(product_id)
            changes, unset, guard = await self._changes(current, patch)
            if not changes and not unset:
                return current
            stock_view_changes = bool({"status", "sizes"} & patch.keys())  # what the stock events show
            update: dict[str, Any] = {"$set": changes, "$inc": {"version": 1, **({"stock_seq": 1} if
                                      stock_view_changes else {})}, "$currentDate": TOUCH}
            if unset:
                update["$unset"] = unset
            try:
                res = await coll.update_one({"_id": product_id, "version": current.version, **guard}, update)
            except DuplicateKeyError:
                raise Conflict(f"The slug {patch.get('slug')!r} is taken.", code="slug-taken") from None
            if res.matched_count == 1:
                await notify_catalog_changed(self.cache)
                if stock_view_changes:
                    await publish_product_stock(product_id)
                return await self.get(product_id)
        raise Conflict("The product is being changed by another request; try again.", code="concurrent-update")

    async def _changes(self, current: Product,
                       patch: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
        """(fields to ``$set``, fields to ``$unset``, extra filter guarding the write) for ``patch``."""
        changes = dict(patch)
        unset: dict[str, str] = {}
        guard: dict[str, Any] = {}
        if "sizes" in patch:
            new_codes = {s["code"] for s in patch["sizes"]}
            for code, units in current.stock.items():
                if code not in new_codes:
                    if units > 0:
                        raise Conflict(f"Size {code!r} still has {units} in stock; set its stock to 0 first.",
                                       code="size-has-stock")
                    unset[f"stock.{code}"] = ""
                    guard[f"stock.{code}"] = 0  # a concurrent restock makes this write miss and retry
            for code in new_codes - set(current.stock):
                changes[f"stock.{code}"] = 0
            changes["price_min"] = min(s["price"] for s in patch["sizes"])
        if {"name", "tags", "flower_types", "description", "occasions", "colors"} & patch.keys():
            name = patch.get("name", current.name)
            changes["search_words"] = product_search_words(
                name, patch.get("tags", current.tags), patch.get("flower_types", current.flower_types),
                patch.get("description", current.description), patch.get("occasions", current.occasions),
                patch.get("colors", current.colors))
            changes["name_keys"] = word_keys(name)
        if "category_id" in patch:
            cat = await self._category(patch["category_id"])
            changes["category_path"] = category_path(cat.id, cat.ancestors)
        return changes, unset, guard

    async def archive(self, product_id: str) -> Product:
        return await self.update(product_id, ProductUpdate(status=ProductStatus.archived))

    async def delete(self, product_id: str) -> None:
        res = await Product.get_pymongo_collection().delete_one({"_id": product_id, "ever_ordered": {"$ne": True}})
        if res.deleted_count == 0:
            await self.get(product_id)  # 404 when it does not exist
            raise Conflict("This product has been ordered, so it is kept for the order history; archive it instead.",
                           code="product-ordered")
        await notify_catalog_changed(self.cache)

    async def list(self, params: AdminProductParams) -> tuple[list[Product], str | None, int]:
        clauses: list[dict[str, Any]] = []
        if params.status:
            clauses.append({"status": params.status.value})
        if params.category:
            cat = await Category.get(params.category) if looks_like_id(params.category, "cat") else \
                await Category.find_one({"slug": params.category.lower()})
            if cat is None:
                raise NotFound("No such category.")
            clauses.append({"category_path": {"$in": [cat.id]}})
        if params.featured is not None:
            clauses.append({"featured": params.featured})
        if params.in_stock is not None:
            clauses.append({"stock_total": {"$gt": 0}} if params.in_stock else {"stock_total": {"$lte": 0}})
        if params.q and normalize(params.q):
            clauses.append({"name_keys": {"$elemMatch": {"$regex": "^" + re.escape(normalize(params.q))}}})
        query = all_of(*clauses)
        sort = [("_id", -1)]
        if params.page:
            docs = await Product.find(query).sort("-_id").skip((params.page - 1) * params.limit) \
                .limit(params.limit).to_list()
            return docs, None, await count_matching(Product.get_pymongo_collection(), query)
        docs, cursor, total = await paginate(Product, query, sort, params, total=True)
        return docs, cursor, total or 0

    async def adjust_stock(self, product_id: str, body: StockAdjust, actor: User) -> StockMovement:
        return await adjust_stock(self.stock, product_id, body.size, body.delta, reason=StockReason(body.reason),
                                  actor_id=actor.id, note=body.note)

    async def movements(self, product_id: str, page: PageParams) -> MovementPage:
        """(the product's stock movements, newest first, next cursor); 404 for an unknown product."""
        await self.get(product_id)
        docs, cursor, _ = await paginate(StockMovement, {"product_id": product_id}, [("_id", -1)], page)
        return docs, cursor
