"""Review API schemas."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from app.core.pagination import PageParams
from app.core.text import FreeText
from app.core.types import Int, UtcDateTime
from app.models.review import Review
from app.schemas.common import StrictModel

Rating = Annotated[Int, Field(ge=1, le=5)]
Title = Annotated[str, FreeText(120, min_length=1)]
Body = Annotated[str, FreeText(4000, multiline=True)]


class ReviewIn(StrictModel):
    rating: Rating
    title: Title
    body: Body = ""


class ReviewPatch(StrictModel):
    rating: Rating | None = None
    title: Title | None = None
    body: Body | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> ReviewPatch:
        for name in ("rating", "title"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null; omit it to keep the current value")
        if "body" in self.model_fields_set and self.body is None:
            self.body = ""
        return self


class ReviewListParams(PageParams):
    sort: Literal["newest", "highest", "lowest"] = "newest"


class ReviewAdminParams(PageParams):
    product_id: str | None = Field(None, max_length=40, pattern=r"^prd_[0-9A-Z]{26}$")
    hidden: bool | None = None


class ReviewOut(BaseModel):
    id: str
    product_id: str
    rating: int
    title: str
    body: str
    author_name: str
    verified_purchase: bool
    created_at: UtcDateTime
    updated_at: UtcDateTime
    edited: bool = Field(description="True when the author changed the review after posting it.")


class ReviewAdminOut(ReviewOut):
    user_id: str
    hidden: bool
    hidden_at: UtcDateTime | None
    hidden_by: str | None


class ReviewSummary(BaseModel):
    product_id: str
    count: int
    average: float = Field(description="Mean rating of the visible reviews, rounded to 2 decimals; 0 when none.")
    histogram: dict[str, int] = Field(description='Number of visible reviews per star, keys "1".."5".')


def review_out(review: Review, names: dict[str, str]) -> ReviewOut:
    return ReviewOut(**_public_fields(review, names))


def review_admin_out(review: Review, names: dict[str, str]) -> ReviewAdminOut:
    return ReviewAdminOut(**_public_fields(review, names), user_id=review.user_id, hidden=review.hidden,
                          hidden_at=review.hidden_at, hidden_by=review.hidden_by)


def _public_fields(review: Review, names: dict[str, str]) -> dict[str, Any]:
    return dict(id=review.id, product_id=review.product_id, rating=review.rating, title=review.title,
                body=review.body, author_name=names.get(review.user_id, "Customer"),
                verified_purchase=review.verified_purchase, created_at=review.created_at,
                updated_at=review.updated_at, edited=review.updated_at != review.created_at)
