"""/admin/promo-codes (admins): create, list, read, change, delete promo codes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from app.core.problems import problem_responses
from app.deps import admin_user, get_promo_service
from app.routers.params import CREATED, PromoId, created
from app.schemas.common import Page
from app.schemas.promo import PromoIn, PromoListParams, PromoOut, PromoPatch, promo_out
from app.services.promo import PromoService

router = APIRouter(prefix="/promo-codes", tags=["admin: promo codes"], dependencies=[Depends(admin_user)])

Promos = Annotated[PromoService, Depends(get_promo_service)]


@router.get("", response_model=Page[PromoOut], responses=problem_responses(422),
            summary="List promo codes (newest first)")
async def list_promos(promos: Promos, params: Annotated[PromoListParams, Query()]) -> Page[PromoOut]:
    docs, cursor, total = await promos.list(params, active=params.active, q=params.q)
    return Page(items=[promo_out(p) for p in docs], next_cursor=cursor, total=total)


@router.post("", response_model=PromoOut, status_code=status.HTTP_201_CREATED,
             responses={**problem_responses(409, 422), **CREATED},
             summary="Create a promo code (codes are case-insensitive)")
async def create_promo(body: PromoIn, promos: Promos, response: Response) -> PromoOut:
    out = promo_out(await promos.create(body))
    created(response, f"/admin/promo-codes/{out.id}")
    return out


@router.get("/{promo_id}", response_model=PromoOut, responses=problem_responses(404))
async def get_promo(promo_id: PromoId, promos: Promos) -> PromoOut:
    return promo_out(await promos.get(promo_id))


@router.patch("/{promo_id}", response_model=PromoOut, responses=problem_responses(404, 409, 422),
              summary="Change a promo code (null clears an optional limit)")
async def patch_promo(promo_id: PromoId, body: PromoPatch, promos: Promos) -> PromoOut:
    return promo_out(await promos.update(promo_id, body))


@router.delete("/{promo_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404, 409),
               summary="Delete a never-used promo code (a used one can only be deactivated)")
async def delete_promo(promo_id: PromoId, promos: Promos) -> Response:
    await promos.delete(promo_id)
    return Response(status_code=204)
