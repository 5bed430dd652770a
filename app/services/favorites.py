"""The signed-in user's favorite products (at most MAX_FAVORITES product ids in ``User.favorites``).

Adds use a scalar ``$addToSet`` guarded on the user's ``version`` (read, check the cap, write only if
nobody changed the user meanwhile, retry): race-safe, so concurrent adds never exceed the cap. The
emulator ignores ``{"favorites.199": {"$exists": false}}`` guards and, under concurrency, reports
``$expr``/``$size``-guarded updates as matched that it did not apply, so neither is used.
Removals are a plain ``$pull`` (they cannot break the cap).
"""

from __future__ import annotations

from app.core.errors import Conflict, NotFound
from app.models.catalog import Product, ProductStatus
from app.models.user import User
from app.services.product_lookup import load_product

MAX_FAVORITES = 200
ATTEMPTS = 20


class FavoriteService:
    async def list(self, user: User) -> list[Product]:
        """The favorite products, most recently added first; archived or drafted ones included."""
        ids = list(reversed(user.favorites))
        if not ids:
            return []
        by_id = {p.id: p for p in await Product.find({"_id": {"$in": ids}}).to_list()}
        return [by_id[i] for i in ids if i in by_id]  # hard-deleted products have nothing left to show

    async def add(self, user: User, product_id: str) -> None:
        await load_product(product_id)
        coll = User.get_pymongo_collection()
        for _ in range(ATTEMPTS):
            doc = await coll.find_one({"_id": user.id}, {"favorites": 1, "version": 1})
            if doc is None:
                raise NotFound("No such user.")
            favorites = doc.get("favorites") or []
            if product_id in favorites:
                return
            if len(favorites) >= MAX_FAVORITES:
                raise Conflict(f"You can keep at most {MAX_FAVORITES} favorites; remove one first.",
                               code="too-many-favorites")
            res = await coll.update_one({"_id": user.id, "version": doc.get("version", 0)},
                                        {"$addToSet": {"favorites": product_id}, "$inc": {"version": 1}})
            if res.matched_count == 1:
                return
        raise Conflict("Your favorites are being changed by another request; try again.", code="concurrent-update")

    async def remove(self, user: User, product_id: str) -> None:
        await User.get_pymongo_collection().update_one({"_id": user.id}, {"$pull": {"favorites": product_id}})


def is_available(product: Product) -> bool:
    return product.status == ProductStatus.active
