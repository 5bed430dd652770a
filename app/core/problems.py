"""RFC 9457 problem details as API schemas: the body of every error response (``Problem``), and
``problem_responses`` for routes declaring the error statuses they may answer. The error machinery itself
(``AppError`` and its handlers) is in :mod:`app.core.errors`; the OpenAPI builder (:mod:`app.core.openapi`)
gives each declared error status this schema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ProblemError(BaseModel):
    """One failed check of a 422 ``validation-error``: where (``loc``, e.g. ``["body", "email"]``) and why."""

    loc: list[str | int] = Field(description="Path to the offending input: its source (body, query, path, "
                                             "header) then field names and list indexes.")
    msg: str
    type: str | None = Field(description="Machine-readable kind of failure (pydantic's error type).")


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error (media type ``application/problem+json``).

    Handle errors by ``code`` (stable, listed in the enum); ``detail`` is for people. Some problems add
    extension members (listed below; absent when they do not apply); more may be added later, so clients
    should ignore members they do not know.
    """

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "type": "https://amourflorals.com/problems/out-of-stock", "title": "Conflict", "status": 409,
        "detail": "Only 2 of Classic Red Roses (Standard) are left.", "instance": "/api/v1/checkout",
        "request_id": "4b1c0a7e9d2f4e8a9c3b5d6e7f809a1b", "code": "out-of-stock", "line": 0,
        "item_id": "cln_01JD7Z8K4M2N6P8Q0R2S4T6V8W", "available": 2, "requested": 3}]})

    type: str = Field(description="`https://amourflorals.com/problems/<code>`.")
    title: str = Field(description="Short summary of the kind of problem.")
    status: int = Field(ge=400, le=599, description="The HTTP status, repeated.")
    detail: str = Field(description="What went wrong this time, for people.")
    instance: str | None = Field(description="The request path.")
    request_id: str | None = Field(description="The `X-Request-ID` of the request: quote it to support.")
    code: str = Field(description="Stable machine-readable code (the last segment of `type`).")
    errors: list[ProblemError] | None = Field(None, description="`validation-error` only: each failed check.")
    # Extension members, present only on the problems named.
    available: int | None = Field(None, description="Stock problems: units of that product and size available.")
    requested: int | None = Field(None, description="Stock problems: units asked for.")
    line: int | None = Field(None, description="Checkout: index of the cart line at fault (0-based).")
    item_id: str | None = Field(None, description="Checkout: id of the cart line at fault.")
    product_id: str | None = Field(None, description="Stock problems: the product.")
    size: str | None = Field(None, description="Stock problems: the size code.")
    max_quantity: int | None = Field(None, description="`line-quantity-limit`: most units of one line.")
    in_cart: int | None = Field(None, description="`line-quantity-limit`: units already in the cart.")
    sizes: list[str] | None = Field(None, description="`unknown-size`: the sizes the product has.")
    add_ons: list[str] | None = Field(None, description="`unknown-add-on`: the add-ons the product offers.")
    current_status: str | None = Field(None, description="Order state conflicts: the order's status now.")
    refundable: int | None = Field(None, description="`refund-exceeds-paid`: integer minor units (cents) "
                                                     "that can still be refunded.")
    limit: int | None = Field(None, description="`promo-customer-limit`: uses per customer; "
                                                "`report-too-large`: most records a report reads.")
    min_subtotal: int | None = Field(None, description="`promo-min-subtotal`: integer minor units (cents).")
    valid_from: str | None = Field(None, description="`promo-not-started`: when the code starts (ISO 8601).")
    zip: str | None = Field(None, description="`zip-not-served`: the 5-digit ZIP code asked about.")
    zone_id: str | None = Field(None, description="`zip-taken`: the zone that already has the ZIP.")
    zips: list[str] | None = Field(None, description="`zip-taken`: the ZIPs or prefixes already taken.")
    minimum: int | None = Field(None, description="`amount-below-minimum`: the smallest card charge in the "
                                                  "currency, integer minor units (cents).")
    total: int | None = Field(None, description="`amount-below-minimum`: the order total, integer minor units (cents).")
    currency: str | None = Field(None, description="`amount-below-minimum`: ISO 4217 currency of the amounts.")
    provider_code: str | None = Field(None, description="`payment-provider-error`: the payment provider's error "
                                                        "code (Stripe's `code`, e.g. `card_declined`).")


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Route-level declaration of statuses an operation may answer besides those its dependencies declare
    (the OpenAPI builder gives each the Problem schema under application/problem+json)."""
    return {c: {"model": Problem} for c in codes}
