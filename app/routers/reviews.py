"""Product reviews: public list and summary; customers post, edit and delete their own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from app.core.problems import problem_responses
from app.deps import CurrentUser, get_review_service
from app.routers.params import CREATED, ProductId, ReviewId, created
from app.schemas.common import Page
from app.schemas.reviews import ReviewIn, ReviewListParams, ReviewOut, ReviewPatch, ReviewSummary, review_out
from app.services.reviews import ReviewService, author_names, display_name, rating_average

router = APIRouter(tags=["reviews"])

Reviews = Annotated[ReviewService, Depends(get_review_service)]


@router.get("/products/{product_id}/reviews", response_model=Page[ReviewOut], responses=problem_responses(404, 422),
            summary="Visible reviews of a product (newest, highest or lowest rating first)")
async def list_reviews(product_id: ProductId, reviews: Reviews,
                       params: Annotated[ReviewListParams, Query()]) -> Page[ReviewOut]:
    docs, cursor, total, names = await reviews.list(product_id, params.sort, params)
    return Page(items=[review_out(r, names) for r in docs], next_cursor=cursor, total=total)


@router.get("/products/{product_id}/reviews/summary", response_model=ReviewSummary,
            responses=problem_responses(404), summary="Average, count and 1–5 star histogram")
async def review_summary(product_id: ProductId, reviews: Reviews) -> ReviewSummary:
    histogram, count, total = await reviews.summary(product_id)
    return ReviewSummary(product_id=product_id, count=count, average=rating_average(total, count),
                         histogram={str(k): v for k, v in histogram.items()})


@router.post("/products/{product_id}/reviews", response_model=ReviewOut, status_code=status.HTTP_201_CREATED,
             responses={**problem_responses(401, 403, 404, 409, 422), **CREATED},
             summary="Review a product (customers; one review per product)")
async def create_review(product_id: ProductId, body: ReviewIn, user: CurrentUser, reviews: Reviews,
                        response: Response) -> ReviewOut:
    review = await reviews.create(user, product_id, body)
    created(response, f"/reviews/{review.id}")
    return review_out(review, {user.id: display_name(user)})


@router.get("/reviews/{review_id}", response_model=ReviewOut, responses=problem_responses(404))
async def get_review(review_id: ReviewId, reviews: Reviews) -> ReviewOut:
    review = await reviews.get_visible(review_id)
    return review_out(review, await author_names([review]))


@router.patch("/reviews/{review_id}", response_model=ReviewOut, responses=problem_responses(401, 403, 404, 409, 422),
              summary="Edit my review")
async def patch_review(review_id: ReviewId, body: ReviewPatch, user: CurrentUser, reviews: Reviews) -> ReviewOut:
    return review_out(await reviews.update(user, review_id, body), {user.id: display_name(user)})


@router.delete("/reviews/{review_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses=problem_responses(401, 403, 404), summary="Delete my review")
async def delete_review(review_id: ReviewId, user: CurrentUser, reviews: Reviews) -> Response:
    await reviews.delete(user, review_id)
    return Response(status_code=204)

