"""/newsletter: sign-up with double opt-in, confirmation, one-click unsubscribe (RFC 8058). No sign-in needed."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response, status

from app.core.openapi import response_headers
from app.core.problems import problem_responses
from app.core.query import EMAIL_LINK
from app.core.ratelimit import client_ip, hit
from app.deps import SettingsDep, get_newsletter_service
from app.routers.params import OneClick
from app.schemas.common import Message
from app.schemas.newsletter import ConfirmIn, LinkToken, SubscribeIn, SubscriptionOut
from app.services.newsletter import NewsletterService

router = APIRouter(prefix="/newsletter", tags=["newsletter"])

Newsletter = Annotated[NewsletterService, Depends(get_newsletter_service)]
UnsubscribeToken = Annotated[LinkToken, Query(description="The `token` of the unsubscribe link carried by every "
                                                          "marketing email (`List-Unsubscribe` header).")]
SUBSCRIBED = "Thank you. If this address is not subscribed yet, a confirmation email is on its way."


@router.post("/subscribe", status_code=status.HTTP_202_ACCEPTED, response_model=Message,
             responses=problem_responses(422, 429), summary="Subscribe to the newsletter (always 202)",
             description="Guests and customers alike. The answer is the same whether the address is new, waiting "
                         "for its confirmation, already subscribed or refused: a new (or unsubscribed) address "
                         "gets an email with a confirmation link valid `NEWSLETTER_CONFIRM_HOURS` (72) hours. "
                         "Limited per client IP and per address.")
async def subscribe(body: SubscribeIn, request: Request, newsletter: Newsletter, settings: SettingsDep) -> Message:
    await hit(request, settings.rate_limit_newsletter_ip, "newsletter-ip", client_ip(request))
    await hit(request, settings.rate_limit_newsletter_email, "newsletter-email", body.email)
    await newsletter.subscribe(body.email)
    return Message(detail=SUBSCRIBED)


@router.post("/confirm", response_model=SubscriptionOut, responses=problem_responses(400, 422),
             summary="Confirm a subscription with the emailed token",
             description="`400 invalid-token`: the link was altered, has expired, or its subscription is gone.")
async def confirm(body: ConfirmIn, newsletter: Newsletter) -> SubscriptionOut:
    sub = await newsletter.confirm(body.token)
    return SubscriptionOut(email=sub.email, status=sub.status.value)


@router.post("/unsubscribe", response_model=Message, responses=problem_responses(400, 422),
             summary="Unsubscribe with one click (RFC 8058)",
             description="The `List-Unsubscribe` URL of every marketing email. Mail clients POST to it with the "
                         "form body `List-Unsubscribe=One-Click`; the storefront's unsubscribe page may POST with "
                         "no body. No sign-in; idempotent; the address's unsent marketing email is cancelled. "
                         "`400 invalid-token` for a token this shop did not sign; `422 preview-link` for the link "
                         "of a campaign's preview or test copy, which names no subscriber (nothing is changed).")
async def unsubscribe(token: UnsubscribeToken, newsletter: Newsletter,
                      list_unsubscribe: OneClick = None,
                      ) -> Message:
    await newsletter.unsubscribe(token)
    return Message(detail="You are unsubscribed: no more newsletters or reminders will be sent to this address.")


@router.get("/unsubscribe", status_code=status.HTTP_303_SEE_OTHER, response_class=Response,
            responses=response_headers(303, "Location", description=(
                "The storefront's unsubscribe page: `STOREFRONT_URL/newsletter/unsubscribe?token=…` for a valid "
                "link, `…/newsletter/unsubscribe?status=invalid` for a malformed, altered or missing token, "
                "`…/newsletter/unsubscribe?status=preview` for the link of a preview or test copy.")),
            summary="Open the unsubscribe link in a browser: redirects to the storefront's page",
            openapi_extra=EMAIL_LINK,
            description="Always a 303 to the storefront's page, whatever the token: a person opening a damaged "
                        "link sees the shop's page, told by `status` what is wrong with it. Changes nothing (link "
                        "scanners fetch URLs): the page asks for the click, then POSTs. Other query parameters "
                        "(added by link trackers) are ignored.")
async def unsubscribe_page(newsletter: Newsletter, settings: SettingsDep, token: Annotated[str | None, Query(
        description="The `token` of the unsubscribe link; any value is answered with the redirect.")] = None,
                           ) -> Response:
    state = newsletter.unsubscribe_link_state(token) if token is not None else "invalid"
    query = f"token={quote(token)}" if token is not None and state == "valid" else f"status={state}"
    page = f"{settings.storefront_url.rstrip('/')}/newsletter/unsubscribe?{query}"
    return Response(status_code=status.HTTP_303_SEE_OTHER, headers={"Location": page})
