"""/admin/reviews (staff): moderation queue, hide and unhide."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.core.problems import problem_responses
from app.deps import StaffUser, get_review_service
from app.routers.params import ReviewId
from app.schemas.common import Page
from app.schemas.reviews import ReviewAdminOut, ReviewAdminParams, review_admin_out
from app.services.reviews import ReviewService, author_names

router = APIRouter(prefix="/reviews", tags=["admin: reviews"])

Reviews = Annotated[ReviewService, Depends(get_review_service)]


@router.get("", response_model=Page[ReviewAdminOut], responses=problem_responses(422),
            summary="All reviews, newest first (hidden ones included)")
async def list_reviews(reviews: Reviews, params: Annotated[ReviewAdminParams, Query()]) -> Page[ReviewAdminOut]:
    docs, cursor, total, names = await reviews.admin_list(params, product_id=params.product_id, hidden=params.hidden)
    return Page(items=[review_admin_out(r, names) for r in docs], next_cursor=cursor, total=total)


@router.post("/{review_id}/hide", response_model=ReviewAdminOut, responses=problem_responses(404),
             summary="Hide a review from the shop (idempotent; leaves the product rating)")
async def hide_review(review_id: ReviewId, reviews: Reviews, staff: StaffUser) -> ReviewAdminOut:
    review = await reviews.set_hidden(staff, review_id, True)
    return review_admin_out(review, await author_names([review]))


@router.post("/{review_id}/unhide", response_model=ReviewAdminOut, responses=problem_responses(404),
             summary="Show a hidden review again (idempotent)")
async def unhide_review(review_id: ReviewId, reviews: Reviews, staff: StaffUser) -> ReviewAdminOut:
    review = await reviews.set_hidden(staff, review_id, False)
    return review_admin_out(review, await author_names([review]))
