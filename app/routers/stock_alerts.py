"""/products/{id}/stock-alerts: ask for one email when a sold-out size is back (guests by address, customers
by account); /stock-alerts/stop: the one-click link of those emails that stops them for the address."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response, status

from app.core.openapi import response_headers
from app.core.problems import problem_responses
from app.core.query import EMAIL_LINK
from app.core.ratelimit import client_ip, hit
from app.deps import OptionalUser, SettingsDep, get_stock_alert_service
from app.routers.params import OneClick, ProductId
from app.schemas.common import Message
from app.schemas.newsletter import LinkToken, StockAlertIn
from app.services.stock_alerts import StockAlertService

router = APIRouter(tags=["catalog"])

Alerts = Annotated[StockAlertService, Depends(get_stock_alert_service)]
MAX_TOKEN = 500  # longer than any link token we sign; the page's POST refuses anything else


@router.post("/products/{product_id}/stock-alerts", status_code=status.HTTP_202_ACCEPTED, response_model=Message,
             responses=problem_responses(404, 409, 422, 429),
             summary="Email me once when this sold-out size is back in stock",
             description="One email when the size comes back, then the request is spent. Asking again while it "
                         "waits changes nothing (the same 202). `409 size-in-stock`: it can be ordered now; "
                         "`422 unknown-size`, `email-required` (guests give `email`), `email-not-allowed` "
                         "(signed-in customers omit it). Limited per client IP and per address.")
async def request_stock_alert(product_id: ProductId, body: StockAlertIn, request: Request, user: OptionalUser,
                              alerts: Alerts, settings: SettingsDep) -> Message:
    await hit(request, settings.rate_limit_stock_alert_ip, "stock-alert-ip", client_ip(request))
    address = user.email if user is not None else body.email
    if address:
        await hit(request, settings.rate_limit_stock_alert_email, "stock-alert-email", address.lower())
    await alerts.request(product_id, body.size, user=user, email=body.email)
    return Message(detail="We will email you once when this size is back in stock.")


@router.post("/stock-alerts/stop", response_model=Message, responses=problem_responses(400, 422),
             summary="Stop back-in-stock emails to an address, with one click (RFC 8058)",
             description="The `List-Unsubscribe` URL of every back-in-stock email (its body links to the "
                         "storefront's page `STOREFRONT_URL/stock-alerts/stop?token=…`, which POSTs here). The "
                         "address's waiting requests are cancelled and later requests for it are dropped (202 all "
                         "the same), unless the account owning the address, with the address verified, asks: that "
                         "lifts the stop. "
                         "No sign-in; idempotent. `400 invalid-token` for a token this shop did not sign.")
async def stop_stock_alerts(token: Annotated[LinkToken, Query(description="The `token` of the link.")],
                            alerts: Alerts,
                            list_unsubscribe: OneClick = None,
                            ) -> Message:
    await alerts.stop(token)
    return Message(detail="No more back-in-stock emails will be sent to this address.")


@router.get("/stock-alerts/stop", status_code=status.HTTP_303_SEE_OTHER, response_class=Response,
            responses=response_headers(303, "Location", description=(
                "The storefront's page `STOREFRONT_URL/stock-alerts/stop?token=…` (the token as given).")),
            summary="Open the stop link in a browser: redirects to the storefront's page",
            description="A mail client without one-click support opens the `List-Unsubscribe` URL: this answers "
                        "with the storefront's page, which asks for the click and then POSTs. Changes nothing (link "
                        "scanners fetch URLs). Other query parameters (added by link trackers) are ignored.",
            openapi_extra=EMAIL_LINK)
async def stop_stock_alerts_page(settings: SettingsDep, token: Annotated[str | None, Query(
        description="The `token` of the link, passed on as given.")] = None) -> Response:
    query = f"?token={quote(token[:MAX_TOKEN])}" if token else ""
    page = f"{settings.storefront_url.rstrip('/')}/stock-alerts/stop{query}"
    return Response(status_code=status.HTTP_303_SEE_OTHER, headers={"Location": page})
