"""Promo code API schemas (admin)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, model_validator

from app.core.pagination import PageParams
from app.core.text import FreeText
from app.core.types import Bool, Int, UtcDateTime, UtcInstant
from app.models.promo import PromoCode, PromoKind
from app.schemas.common import StrictModel, unique_items

Code = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=3, max_length=32,
                                        pattern=r"^[A-Za-z0-9_-]+$")]
CategoryId = Annotated[str, StringConstraints(pattern=r"^cat_[0-9A-HJKMNP-TV-Z]{26}$")]
Cents = Annotated[Int, Field(ge=1, le=10_000_000)]


CategoryIds = Annotated[list[CategoryId], Field(max_length=50), unique_items("category ids")]


class _PromoFields(StrictModel):
    description: Annotated[str, FreeText(200)] | None = None
    percent: Int | None = Field(None, ge=1, le=100, description="Percentage kind: whole percent (10 = 10 %).")
    percent_bps: Int | None = Field(None, ge=1, le=10_000, description="Percentage kind: basis points (1250 = 12.5 %).")
    amount: Cents | None = Field(None, description="Fixed kind: cents off.")
    min_subtotal: Int | None = Field(None, ge=0, le=10_000_000, description="Cents.")
    max_discount: Cents | None = None
    valid_from: UtcInstant | None = Field(None, description="With an offset; stored and shown in UTC.")
    valid_until: UtcInstant | None = Field(None, description="Exclusive end.")
    usage_limit: Int | None = Field(None, ge=1, le=10_000_000, description="Total uses; null = unlimited.")
    per_customer_limit: Int | None = Field(None, ge=1, le=1000)
    category_ids: CategoryIds | None = Field(None, description="The discount applies only to lines in these "
                                                                "categories (or below); empty = every line.")
    active: Bool | None = None

    @model_validator(mode="after")
    def _one_percent_form(self) -> _PromoFields:
        if self.percent is not None and self.percent_bps is not None:
            raise ValueError("give percent or percent_bps, not both")
        return self


class PromoIn(_PromoFields):
    code: Code
    kind: PromoKind


class PromoPatch(_PromoFields):
    code: Code | None = None
    kind: PromoKind | None = None


class PromoListParams(PageParams):
    active: bool | None = None
    q: str | None = Field(None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$", description="Code prefix.")


class PromoOut(BaseModel):
    id: str
    code: str
    description: str | None
    kind: PromoKind
    percent_bps: int | None
    amount: int | None
    min_subtotal: int
    max_discount: int | None
    valid_from: UtcDateTime | None
    valid_until: UtcDateTime | None
    usage_limit: int | None
    per_customer_limit: int | None
    category_ids: list[str]
    active: bool
    uses: int
    remaining_uses: int | None
    created_at: UtcDateTime
    updated_at: UtcDateTime


class PromoResult(BaseModel):
    """What the cart's promo code gives now: the discount in cents and whether delivery is free."""

    code: str
    discount: int = Field(description="Cents, capped by the eligible subtotal and max_discount.")
    free_delivery: bool
    kind: PromoKind | None = None
    description: str | None = None


def promo_out(p: PromoCode) -> PromoOut:
    """The admin view of a ``PromoCode`` document (``remaining_uses`` None when unlimited)."""
    remaining = None if p.usage_limit is None else max(0, p.usage_limit - p.uses)
    return PromoOut.model_validate({**p.model_dump(), "remaining_uses": remaining})
