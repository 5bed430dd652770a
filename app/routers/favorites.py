"""/users/me/favorites: the signed-in user's favorite products (at most 200)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from app.core.problems import problem_responses
from app.deps import CurrentUser, SettingsDep, get_favorite_service
from app.routers.params import ProductId
from app.schemas.favorites import FavoriteList, favorite_out
from app.services.favorites import MAX_FAVORITES, FavoriteService, is_available

router = APIRouter(prefix="/users/me/favorites", tags=["favorites"], responses=problem_responses(401))

Favorites = Annotated[FavoriteService, Depends(get_favorite_service)]


@router.get("", response_model=FavoriteList, summary="My favorites, most recent first (all of them, at most 200)")
async def list_favorites(user: CurrentUser, favorites: Favorites, settings: SettingsDep) -> FavoriteList:
    products = await favorites.list(user)
    items = [favorite_out(p, settings.currency, is_available(p)) for p in products]
    return FavoriteList(items=items, count=len(items), max=MAX_FAVORITES)


@router.put("/{product_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404, 409, 422),
            summary="Add a product to my favorites (idempotent)")
async def add_favorite(product_id: ProductId, user: CurrentUser, favorites: Favorites) -> Response:
    await favorites.add(user, product_id)
    return Response(status_code=204)


@router.delete("/{product_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(422),
               summary="Remove a product from my favorites (idempotent)")
async def remove_favorite(product_id: ProductId, user: CurrentUser, favorites: Favorites) -> Response:
    await favorites.remove(user, product_id)
    return Response(status_code=204)
