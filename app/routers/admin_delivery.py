"""/admin/delivery (admins): zones, the delivery config (slots, blackout dates, cutoff), slot usage."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from app.core.problems import problem_responses
from app.core.types import RequestDate
from app.deps import admin_user, get_delivery_service
from app.routers.params import CREATED, ZoneId, created
from app.schemas.common import Page
from app.schemas.delivery import (
    DeliveryConfigOut,
    DeliveryConfigPatch,
    SlotUsageOut,
    ZoneIn,
    ZoneListParams,
    ZoneOut,
    ZonePatch,
    config_out,
    usage_out,
    zone_out,
)
from app.services.delivery import DeliveryService

router = APIRouter(prefix="/delivery", tags=["admin: delivery"], dependencies=[Depends(admin_user)])

Delivery = Annotated[DeliveryService, Depends(get_delivery_service)]


@router.get("/zones", response_model=Page[ZoneOut], responses=problem_responses(422), summary="List delivery zones")
async def list_zones(delivery: Delivery, params: Annotated[ZoneListParams, Query()]) -> Page[ZoneOut]:
    docs, cursor, total = await delivery.list_zones(params, active=params.active)
    return Page(items=[zone_out(z) for z in docs], next_cursor=cursor, total=total)


@router.post("/zones", response_model=ZoneOut, status_code=status.HTTP_201_CREATED,
             responses={**problem_responses(409, 422), **CREATED}, summary="Create a delivery zone")
async def create_zone(body: ZoneIn, delivery: Delivery, response: Response) -> ZoneOut:
    out = zone_out(await delivery.create_zone(body))
    created(response, f"/admin/delivery/zones/{out.id}")
    return out


@router.get("/zones/{zone_id}", response_model=ZoneOut, responses=problem_responses(404))
async def get_zone(zone_id: ZoneId, delivery: Delivery) -> ZoneOut:
    return zone_out(await delivery.get_zone(zone_id))


@router.patch("/zones/{zone_id}", response_model=ZoneOut, responses=problem_responses(404, 409, 422),
              summary="Change a zone (name, ZIPs, fee, same-day, active)")
async def patch_zone(zone_id: ZoneId, body: ZonePatch, delivery: Delivery) -> ZoneOut:
    return zone_out(await delivery.update_zone(zone_id, body))


@router.delete("/zones/{zone_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404),
               summary="Delete a zone (orders keep their snapshot; prefer deactivating)")
async def delete_zone(zone_id: ZoneId, delivery: Delivery) -> Response:
    await delivery.delete_zone(zone_id)
    return Response(status_code=204)


@router.get("/config", response_model=DeliveryConfigOut, summary="Slots, pickup, blackout dates, cutoff")
async def get_config(delivery: Delivery) -> DeliveryConfigOut:
    return config_out(await delivery.config(), delivery.settings.shop_timezone)


@router.patch("/config", response_model=DeliveryConfigOut, responses=problem_responses(409, 422),
              summary="Change the delivery config (listed slots are replaced; lists are replaced whole)")
async def patch_config(body: DeliveryConfigPatch, delivery: Delivery) -> DeliveryConfigOut:
    return config_out(await delivery.update_config(body), delivery.settings.shop_timezone)


@router.get("/usage", response_model=list[SlotUsageOut], summary="Places taken per zone and slot on a date")
async def slot_usage(delivery: Delivery, date: Annotated[RequestDate, Query()]) -> list[SlotUsageOut]:
    return [usage_out(u) for u in await delivery.usage(date)]
