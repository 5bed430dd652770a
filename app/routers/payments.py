"""/payments/webhook: Stripe events, verified on the raw body and processed once per event id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, Field

from app.core.problems import problem_responses
from app.deps import get_stripe_webhooks
from app.services.stripe_integration.webhooks import StripeWebhooks, WebhookResult

router = APIRouter(prefix="/payments", tags=["payments"])


class WebhookAck(BaseModel):
    received: bool
    result: WebhookResult = Field(
        description="processed; ignored (recorded, but about an object we or Stripe do not know, or a type we "
                    "do not handle); duplicate (this event id was processed before)")


@router.post("/webhook", response_model=WebhookAck, responses=problem_responses(400, 500, 503),
             summary="Stripe webhook endpoint (Stripe-Signature verified; replays acknowledged and ignored)",
             description="400 `invalid-signature` (bad, missing, or timestamp more than 300 s from now in either "
                         "direction) or `malformed-event` (signed, but not structured as a Stripe event of its "
                         "type). Events about objects we do not know are answered 200 `ignored`. 500 when our "
                         "storage fails and 503 when Stripe cannot be reached to re-read the object: the event "
                         "stays unprocessed and Stripe's retry processes it.")
async def stripe_webhook(request: Request, webhooks: Annotated[StripeWebhooks, Depends(get_stripe_webhooks)],
                         stripe_signature: Annotated[str | None, Header(max_length=2048)] = None) -> WebhookAck:
    result = await webhooks.handle_webhook(await request.body(), stripe_signature)
    return WebhookAck(received=True, result=result)
