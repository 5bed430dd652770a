"""/delivery: public delivery and pickup options (dates, slots, remaining capacity, fee, or why not)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.core.problems import problem_responses
from app.core.types import RequestDate
from app.deps import get_delivery_service
from app.schemas.delivery import DeliveryOptionsOut, Method, delivery_options_out
from app.services.delivery import DeliveryService

router = APIRouter(prefix="/delivery", tags=["delivery"])

Delivery = Annotated[DeliveryService, Depends(get_delivery_service)]


@router.get("/options", response_model=DeliveryOptionsOut, responses=problem_responses(422),
            summary="Dates and time slots for a ZIP code (or store pickup), with fee and remaining capacity")
async def delivery_options(
    delivery: Delivery,
    method: Method = "delivery",
    zip: Annotated[str | None, Query(pattern=r"^\d{5}(-\d{4})?$", description="Required for delivery.")] = None,
    date: Annotated[RequestDate | None, Query(description="One local date; omitted: the next days.")] = None,
) -> DeliveryOptionsOut:
    return delivery_options_out(await delivery.options(method=method, zip=zip, date=date))
