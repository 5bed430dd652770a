"""/checkout: turn the cart into an order (stock, slot and promo use held) and start its payment."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response, status

from app.core.openapi import response_headers
from app.core.problems import problem_responses
from app.deps import CartToken, OptionalUser, get_checkout_service, get_tracker
from app.routers.params import created
from app.schemas.checkout import CheckoutIn, CheckoutOut, checkout_out
from app.services.analytics import Tracker
from app.services.checkout import CheckoutService

router = APIRouter(prefix="/checkout", tags=["checkout"])

IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", min_length=8, max_length=255,
                                       pattern=r"^[A-Za-z0-9_.:-]+$",
                                       description="A unique key per checkout attempt (e.g. a UUID); retries "
                                                   "with the same key and body return the same order.")]


@router.post("", response_model=CheckoutOut, status_code=status.HTTP_201_CREATED,
             responses={**problem_responses(401, 409, 422, 500, 502, 503),
                        **response_headers(201, "Location", "Idempotent-Replayed")},
             summary="Place the order for the cart (customers, or guests with X-Cart-Token)",
             description="A total of 0 is a free order: paid at once (`payment.method` `free`, no PaymentIntent). "
                         "A card total above 0 but below the currency's minimum charge is a 422 "
                         "`amount-below-minimum` (`minimum`, `total`, `currency` in the body) before anything is "
                         "held. If the payment cannot be started after stock, slot and promo use were held — 502 "
                         "`payment-provider-error` (Stripe refused; `provider_code`), 503 `payments-unavailable` "
                         "(Stripe unreachable) or 500 — every hold is given back and the same Idempotency-Key "
                         "runs the checkout again (failures are not replayed).")
async def checkout(body: CheckoutIn, response: Response, user: OptionalUser, cart_token: CartToken,
                   key: IdempotencyKey,
                   service: Annotated[CheckoutService, Depends(get_checkout_service)],
                   track: Annotated[Tracker, Depends(get_tracker)]) -> CheckoutOut:
    result = await service.checkout(user=user, cart_token=cart_token, key=key, body=body)
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    else:
        track.checkout_started(result.order.id)
    created(response, f"/orders/{result.order.id}")
    return checkout_out(result.order, client_secret=result.client_secret, access_token=result.access_token)
