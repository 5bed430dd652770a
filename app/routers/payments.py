"""/payments/webhook: Stripe events, verified on the raw body and processed once per event id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel

from app.deps import get_order_payments
from app.models.common import problem_responses
from app.services.order_jobs import OrderPayments

router = APIRouter(prefix="/payments", tags=["payments"])


class WebhookAck(BaseModel):
    received: bool
    result: str  # "processed" or "duplicate"


@router.post("/webhook", response_model=WebhookAck, responses=problem_responses(400, 500, 503),
             summary="Stripe webhook endpoint (Stripe-Signature verified; replays acknowledged and ignored)")
async def stripe_webhook(request: Request, payments: Annotated[OrderPayments, Depends(get_order_payments)],
                         stripe_signature: Annotated[str | None, Header(max_length=2048)] = None) -> WebhookAck:
    result = await payments.handle_webhook(await request.body(), stripe_signature)
    return WebhookAck(received=True, result=result)
