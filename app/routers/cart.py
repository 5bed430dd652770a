"""/cart: the shopping cart of the signed-in customer, or of a guest identified by ``X-Cart-Token``.

The first add without a cart creates a guest cart and returns its token once (header ``X-Cart-Token`` and
``cart_token`` in the body). Every amount is computed by the server from the current catalog.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status

from app.core.openapi import response_headers
from app.core.problems import problem_responses
from app.core.ratelimit import client_ip, count_failures
from app.core.security import hash_token
from app.deps import CART_TOKEN_HEADER, CartToken, CurrentUser, OptionalUser, get_cart_service, get_tracker
from app.models.user import User
from app.routers.params import LineId, ProductId
from app.schemas.cart import CartItemIn, CartItemPatch, MoveToCartIn, PricedCart, PromoCodeIn, priced_cart_out
from app.services.analytics import Tracker
from app.services.cart import CartService

router = APIRouter(tags=["cart"])

Carts = Annotated[CartService, Depends(get_cart_service)]
Track = Annotated[Tracker, Depends(get_tracker)]


def _ctx(user: User | None, token: str | None) -> dict[str, Any]:
    """The owner arguments of the cart service's methods: the customer, else the guest's cart token."""
    return {"user": user, "cart_token": None if user else token}


@router.get("/cart", response_model=PricedCart, summary="My cart, priced now (empty when there is none)")
async def get_cart(carts: Carts, user: OptionalUser, token: CartToken,
                   zip: Annotated[str | None, Query(pattern=r"^\d{5}(-\d{4})?$",
                                                    description="Estimate the delivery fee for this ZIP.")] = None,
                   ) -> PricedCart:
    return priced_cart_out(await carts.view(**_ctx(user, token), zip_code=zip))


@router.post("/cart/items", response_model=PricedCart, operation_id="cart_items_add",
             responses={**problem_responses(404, 409, 422), **response_headers(200, "X-Cart-Token")},
             summary="Add a bouquet (same product, size, add-ons and message: quantities add)")
async def add_item(body: CartItemIn, response: Response, carts: Carts, user: OptionalUser,
                   token: CartToken, track: Track) -> PricedCart:
    priced = await carts.add_item(**_ctx(user, token), data=body)
    track.added_to_cart(body.product_id, body.quantity)
    if priced.cart_token:
        response.headers[CART_TOKEN_HEADER] = priced.cart_token
    return priced_cart_out(priced)


@router.patch("/cart/items/{item_id}", response_model=PricedCart, responses=problem_responses(404, 409, 422),
              summary="Change a line's quantity, size, add-ons or gift message")
async def patch_item(item_id: LineId, body: CartItemPatch, carts: Carts, user: OptionalUser,
                     token: CartToken) -> PricedCart:
    return priced_cart_out(await carts.update_item(**_ctx(user, token), item_id=item_id, patch=body))


@router.delete("/cart/items/{item_id}", response_model=PricedCart, responses=problem_responses(404),
               summary="Remove a line")
async def delete_item(item_id: LineId, carts: Carts, user: OptionalUser, token: CartToken) -> PricedCart:
    return priced_cart_out(await carts.remove_item(**_ctx(user, token), item_id=item_id))


@router.delete("/cart", status_code=status.HTTP_204_NO_CONTENT, summary="Empty the cart")
async def empty_cart(carts: Carts, user: OptionalUser, token: CartToken) -> Response:
    await carts.empty(**_ctx(user, token))
    return Response(status_code=204)


@router.post("/cart/promo", response_model=PricedCart, responses=problem_responses(404, 422, 429),
             operation_id="cart_promo_apply",
             summary="Apply a promo code (evaluated now; the error says why it does not apply)",
             description="Refused attempts are limited per client IP (`RATE_LIMIT_PROMO_IP`) and per cart or "
                         "account (`RATE_LIMIT_PROMO_CART`); over the limit the answer is 429 with Retry-After.")
async def apply_promo(body: PromoCodeIn, request: Request, carts: Carts, user: OptionalUser,
                      token: CartToken) -> PricedCart:
    s = request.app.state.settings
    limits = [(s.rate_limit_promo_ip, ("promo-ip", client_ip(request)))]
    owner = f"user:{user.id}" if user else (f"cart:{hash_token(token)}" if token else None)
    if owner:
        limits.append((s.rate_limit_promo_cart, ("promo-cart", owner)))
    async with count_failures(request, limits):
        return priced_cart_out(await carts.apply_promo(**_ctx(user, token), code=body.code))


@router.delete("/cart/promo", response_model=PricedCart, responses=problem_responses(404),
               summary="Remove the promo code")
async def remove_promo(carts: Carts, user: OptionalUser, token: CartToken) -> PricedCart:
    return priced_cart_out(await carts.remove_promo(**_ctx(user, token)))


@router.post("/users/me/favorites/{product_id}/move-to-cart", response_model=PricedCart,
             responses=problem_responses(401, 404, 409, 422),
             summary="Put a favorite into the cart (it stays a favorite unless asked)")
async def move_favorite_to_cart(product_id: ProductId, body: MoveToCartIn, carts: Carts,
                                user: CurrentUser, track: Track) -> PricedCart:
    priced = await carts.move_favorite(user=user, product_id=product_id, data=body)
    track.added_to_cart(product_id, body.quantity)
    return priced_cart_out(priced)
