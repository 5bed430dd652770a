"""Product reviews: one per customer and product, author edits/deletes, staff hide/unhide, exact aggregates.

Aggregates. ``Product.rating_sum`` and ``rating_count`` change only by atomic ``$inc`` deltas, each tied
to one atomic state change of a review document (insert; a rating change guarded on the old rating;
delete; hide/unhide guarded on the old flag, returning the pre-image). ``$inc`` deltas commute, so
the sums stay exact whatever the interleaving. ``rating_avg`` is derived: after its ``$inc`` a writer
sets it from the sums that ``$inc`` returned, guarded on those very sums; if another writer moved the
sums meanwhile the guard misses and we re-read and try again, so the last writer always leaves the
average of the final sums.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.core.clock import utcnow
from app.core.errors import Conflict, Forbidden, NotFound
from app.core.pagination import PageParams, paginate
from app.models.catalog import Product
from app.models.review import Review
from app.models.user import Role, User
from app.schemas.reviews import ReviewIn, ReviewPatch
from app.services.catalog_cache import CatalogCache, notify_catalog_changed
from app.services.orders import has_delivered_purchase
from app.services.product_lookup import load_product

log = logging.getLogger("app.reviews")

ReviewSort = Literal["newest", "highest", "lowest"]
SORTS: dict[str, list[tuple[str, int]]] = {
    "newest": [("_id", -1)],
    "highest": [("rating", -1), ("_id", -1)],
    "lowest": [("rating", 1), ("_id", -1)],
}
AVG_ATTEMPTS = 10
EDIT_ATTEMPTS = 10


def rating_average(rating_sum: int, rating_count: int) -> float:
    return round(rating_sum / rating_count, 2) if rating_count else 0.0


async def apply_rating_delta(product_id: str, d_sum: int, d_count: int) -> None:
    """Move the product's rating sums by an atomic ``$inc`` and set the average from the fresh sums."""
    coll = Product.get_pymongo_collection()
    fields = {"rating_sum": 1, "rating_count": 1}
    doc = await coll.find_one_and_update({"_id": product_id},
                                         {"$inc": {"rating_sum": d_sum, "rating_count": d_count}},
                                         projection=fields, return_document=ReturnDocument.AFTER)
    for _ in range(AVG_ATTEMPTS):
        if doc is None:
            return  # the product was deleted meanwhile
        s, c = doc["rating_sum"], doc["rating_count"]
        res = await coll.update_one({"_id": product_id, "rating_sum": s, "rating_count": c},
                                    {"$set": {"rating_avg": rating_average(s, c)}})
        if res.matched_count == 1:
            return
        doc = await coll.find_one({"_id": product_id}, fields)
    log.warning("rating_avg of %s not settled after %d attempts; the next review write fixes it",
                product_id, AVG_ATTEMPTS)


# (reviews, next cursor, total, author names by user id): a page of reviews as the routers show it.
ReviewPage = tuple[list[Review], str | None, int | None, dict[str, str]]


class ReviewService:
    def __init__(self, cache: CatalogCache) -> None:
        """``cache``: the catalog cache bumped when a product's rating changes."""
        self.cache = cache

    # --- public reads ---------------------------------------------------------------------------
    async def list(self, product_id: str, sort: ReviewSort,
                   params: PageParams) -> ReviewPage:
        """(visible reviews of the product, next cursor, total, author names by user id); 404 unknown product."""
        await load_product(product_id)
        query = {"product_id": product_id, "hidden": False}
        docs, cursor, total = await paginate(Review, query, SORTS[sort], params, total=True)
        return docs, cursor, total, await author_names(docs)

    async def summary(self, product_id: str) -> tuple[dict[int, int], int, int]:
        """(histogram 1..5 → count, count, sum) over visible reviews, by aggregation."""
        await load_product(product_id)
        pipeline: list[dict[str, Any]] = [{"$match": {"product_id": product_id, "hidden": False}},
                                          {"$group": {"_id": "$rating", "n": {"$sum": 1}}}]
        histogram = dict.fromkeys(range(1, 6), 0)
        async for row in await Review.get_pymongo_collection().aggregate(pipeline):
            if row["_id"] in histogram:
                histogram[row["_id"]] = row["n"]
        count = sum(histogram.values())
        return histogram, count, sum(star * n for star, n in histogram.items())

    async def get_visible(self, review_id: str) -> Review:
        review = await Review.find_one({"_id": review_id, "hidden": False})
        if review is None:
            raise NotFound("No such review.")
        return review

    # --- author writes --------------------------------------------------------------------------
    async def create(self, user: User, product_id: str, data: ReviewIn) -> Review:
        if user.role != Role.customer:
            raise Forbidden("Only customer accounts can review products.")
        product = await load_product(product_id)
        now = utcnow()
        review = Review(product_id=product.id, user_id=user.id, rating=data.rating, title=data.title,
                        body=data.body, verified_purchase=await has_delivered_purchase(user.id, product.id),
                        created_at=now, updated_at=now)
        try:
            await review.insert()
        except DuplicateKeyError as exc:
            raise Conflict("You have already reviewed this product; edit your review instead.",
                           code="duplicate-review") from exc
        await self._aggregates_changed(product.id, review.rating, 1)
        return review

    async def update(self, user: User, review_id: str, patch: ReviewPatch) -> Review:
        changes = patch.model_dump(exclude_unset=True)
        coll = Review.get_pymongo_collection()
        for _ in range(EDIT_ATTEMPTS):
            review = await self._own_visible(user, review_id)
            if not changes:
                return review
            changes["verified_purchase"] = await has_delivered_purchase(user.id, review.product_id)
            # Guarded on the rating we read: the aggregate delta below is exactly what this write changed.
            # (updated_at via $currentDate: the embedded server mangles top-level datetimes given to $set.)
            res = await coll.update_one({"_id": review_id, "user_id": user.id, "hidden": False,
                                         "rating": review.rating},
                                        {"$set": changes, "$currentDate": {"updated_at": True}})
            if res.matched_count == 1:
                delta = changes.get("rating", review.rating) - review.rating
                if delta:
                    await self._aggregates_changed(review.product_id, delta, 0)
                return await Review.get(review_id) or review.model_copy(update=changes)
        raise Conflict("The review is being changed by another request; try again.", code="concurrent-update")

    async def delete(self, user: User, review_id: str) -> None:
        gone = await Review.get_pymongo_collection().find_one_and_delete(
            {"_id": review_id, "user_id": user.id, "hidden": False})
        if gone is None:
            await self._own_visible(user, review_id)  # raises the precise 404/403
            raise Conflict("The review is being changed by another request; try again.", code="concurrent-update")
        await self._aggregates_changed(gone["product_id"], -gone["rating"], -1)

    async def _own_visible(self, user: User, review_id: str) -> Review:
        review = await self.get_visible(review_id)
        if review.user_id != user.id:
            # Reviews are public, so this one's existence is no secret: 403, not 404.
            raise Forbidden("You can only change your own reviews.")
        return review

    # --- staff moderation -----------------------------------------------------------------------
    async def admin_list(self, params: PageParams, *, product_id: str | None,
                         hidden: bool | None) -> ReviewPage:
        """(reviews matching the filters, next cursor, total, author names by user id), newest first."""
        query: dict[str, Any] = {}
        if product_id is not None:
            query["product_id"] = product_id
        if hidden is not None:
            query["hidden"] = hidden
        docs, cursor, total = await paginate(Review, query, [("_id", -1)], params, total=True)
        return docs, cursor, total, await author_names(docs)

    async def set_hidden(self, staff: User, review_id: str, hidden: bool) -> Review:
        """Hide or unhide (idempotent); only the request that flips the flag moves the aggregates."""
        before = await Review.get_pymongo_collection().find_one_and_update(
            {"_id": review_id, "hidden": not hidden},
            {"$set": {"hidden": True, "hidden_by": staff.id}, "$currentDate": {"hidden_at": True}} if hidden
            else {"$set": {"hidden": False, "hidden_by": None, "hidden_at": None}},
            return_document=ReturnDocument.BEFORE)
        if before is not None:
            sign = -1 if hidden else 1
            await self._aggregates_changed(before["product_id"], sign * before["rating"], sign)
        review = await Review.get(review_id)
        if review is None:
            raise NotFound("No such review.")
        return review

    async def _aggregates_changed(self, product_id: str, d_sum: int, d_count: int) -> None:
        await apply_rating_delta(product_id, d_sum, d_count)
        await notify_catalog_changed(self.cache)


async def author_names(reviews: list[Review]) -> dict[str, str]:
    """Display names ("Olivia B.") of the reviews' authors: one query per page, never per row."""
    ids = list({r.user_id for r in reviews})
    if not ids:
        return {}
    return {u.id: display_name(u) for u in await User.find({"_id": {"$in": ids}}).to_list()}


def display_name(user: User) -> str:
    if user.deleted_at is not None:
        return "Former customer"
    return f"{user.first_name} {user.last_name[:1]}.".strip()
