"""Request dependencies: the current user and role guards, and the services of a request (thin: each reads
``request.app.state.runtime`` and calls its builder in ``app.composition``)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import OAuth2PasswordBearer

from app import composition
from app.composition import Clock, Runtime
from app.config import Settings
from app.core.clock import utcnow
from app.core.context import user_id_var
from app.core.contract import declares
from app.core.errors import Forbidden, Unauthorized
from app.core.security import decode_access_token
from app.models.user import Role, User
from app.services.accounts import AccountService, UserAdminService
from app.services.analytics import Tracker, tracker_of
from app.services.auth import AuthService, ClientInfo, session_is_live
from app.services.campaigns import CampaignService
from app.services.cart import CartService
from app.services.categories import CategoryAdminService
from app.services.checkout import CheckoutService
from app.services.delivery import DeliveryService
from app.services.email import EmailService
from app.services.favorites import FavoriteService
from app.services.images import ImageService
from app.services.newsletter import NewsletterService
from app.services.orders import OrderService
from app.services.product_admin import ProductAdminService
from app.services.promo import PromoService
from app.services.reports import ReportService
from app.services.reviews import ReviewService
from app.services.shopper_reports import ShopperReportService
from app.services.stock_alerts import StockAlertService
from app.services.stripe_integration.webhooks import StripeWebhooks

# The OAuth2 password flow drives the docs' Authorize button; the OpenAPI builder (app.core.openapi) also
# publishes the same token as a plain HTTP bearer scheme (what generated clients set) and lists both on every
# operation whose dependencies declare security.
oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False, scheme_name="oauth2",
                              description="The access token from /auth/token (form) or /auth/login (JSON).")


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


@declares(statuses=(401,), security="optional",
          note="Guests may call it without a token; a token that is sent must be valid (else 401).")
async def optional_user(request: Request, token: Annotated[str | None, Depends(oauth2)]) -> User | None:
    if not token:
        return None
    claims = decode_access_token(request.app.state.settings, token)
    if claims is None:
        raise Unauthorized("The access token is invalid or expired.")
    # Two indexed _id lookups, concurrently: the account and the token's session (ended at logout).
    user, live = await asyncio.gather(User.get(claims["sub"]), session_is_live(claims.get("sid"), claims["sub"]))
    if user is None or not user.is_active:
        raise Unauthorized("The access token is invalid or expired.")
    if not live or (user.tokens_valid_after and float(claims["iat"]) < user.tokens_valid_after.timestamp()):
        raise Unauthorized("This session was signed out. Sign in again.")
    request.state.session_id = claims.get("sid")
    user_id_var.set(user.id)
    return user


@declares(statuses=(401,), security="required", note="Needs a signed-in user's bearer token.")
async def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise Unauthorized("Sign in to use this endpoint.")
    return user


@declares(statuses=(403,), note="For shop staff and administrators.")
async def staff_user(user: Annotated[User, Depends(current_user)]) -> User:
    if user.role not in (Role.staff, Role.admin):
        raise Forbidden("This endpoint is for shop staff.")
    return user


@declares(statuses=(403,), note="For administrators.")
async def admin_user(user: Annotated[User, Depends(current_user)]) -> User:
    if user.role != Role.admin:
        raise Forbidden("This endpoint is for administrators.")
    return user


OptionalUser = Annotated[User | None, Depends(optional_user)]
CurrentUser = Annotated[User, Depends(current_user)]
StaffUser = Annotated[User, Depends(staff_user)]
AdminUser = Annotated[User, Depends(admin_user)]


# Every dependency below is ``async def`` although none awaits anything: FastAPI runs a plain ``def``
# dependency in its thread pool, a thread hop per dependency per request (measured with bench/checkout.py).
def get_runtime(request: Request) -> Runtime:
    """The app's runtime (``app.composition.Runtime``), opened by the lifespan."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_clock(request: Request) -> Clock:
    """The current-time function (``app.state.clock`` when set, e.g. by tests; else ``utcnow``)."""
    clock: Clock | None = getattr(request.app.state, "clock", None)
    return clock or utcnow


async def get_email_service(request: Request) -> EmailService | None:
    return get_runtime(request).email


async def get_auth_service(request: Request) -> AuthService:
    return composition.auth_service(get_runtime(request))


async def client_info(request: Request) -> ClientInfo:
    return ClientInfo(ip=request.client.host if request.client else None,
                      user_agent=request.headers.get("user-agent"))


async def get_account_service(request: Request) -> AccountService:
    return composition.account_service(get_runtime(request))


async def get_user_admin_service(request: Request) -> UserAdminService:
    return composition.user_admin_service(get_runtime(request))


async def get_delivery_service(request: Request) -> DeliveryService:
    return composition.delivery_service(get_runtime(request).settings, get_clock(request))


async def get_promo_service(request: Request) -> PromoService:
    return composition.promo_service(get_runtime(request).settings, get_clock(request))


async def get_cart_service(request: Request) -> CartService:
    return composition.cart_service(get_runtime(request).settings, get_clock(request))


CART_TOKEN_HEADER = "X-Cart-Token"


async def cart_token(value: Annotated[str | None, Header(
        alias=CART_TOKEN_HEADER, description="Guests: the cart token issued when the cart was created (header "
        "`X-Cart-Token` of that response and `cart_token` in its body). Ignored for signed-in customers, except "
        "that login and register merge that guest cart into the account. A malformed token counts as none.",
        examples=["Jr3n2f0q1Yc8bqkWm5Zt7v4X9pL6sD2a"])] = None) -> str | None:
    """The guest cart token from ``X-Cart-Token``; a malformed one counts as none (the cart is unknown)."""
    if value and 20 <= len(value) <= 128 and value.replace("-", "").replace("_", "").isalnum() and value.isascii():
        return value
    return None


CartToken = Annotated[str | None, Depends(cart_token)]


async def get_tracker(request: Request, visitor: Annotated[str | None, Header(
        alias="X-Visitor-Id", description="Optional anonymous visitor id for shop analytics: a random token the "
        "storefront creates once and keeps in the browser (16-64 characters `A-Z a-z 0-9 _ -`, e.g. a UUID). "
        "It links a visitor's product views, searches, cart adds and checkouts; it is never a personal "
        "identifier. A value of another shape is ignored (the request is answered as without it).",
        examples=["3f0c7d1e-9b2a-4c5d-8e6f-0a1b2c3d4e5f"])] = None) -> Tracker:
    """The request's analytics tracker with the validated visitor id."""
    return tracker_of(request)  # the header parameter above declares X-Visitor-Id in the OpenAPI document


async def get_order_service(request: Request) -> OrderService:
    return composition.order_service(get_runtime(request), get_clock(request))


async def get_stripe_webhooks(request: Request) -> StripeWebhooks:
    return composition.stripe_webhooks(get_runtime(request), get_clock(request))


async def get_checkout_service(request: Request) -> CheckoutService:
    return composition.checkout_service(get_runtime(request), get_clock(request))


async def get_review_service(request: Request) -> ReviewService:
    return composition.review_service(get_runtime(request))


async def get_favorite_service() -> FavoriteService:
    return composition.favorite_service()


async def get_image_service(request: Request) -> ImageService:
    return composition.image_service(get_runtime(request))


async def get_category_admin_service(request: Request) -> CategoryAdminService:
    return composition.category_admin_service(get_runtime(request))


async def get_product_admin_service(request: Request) -> ProductAdminService:
    return composition.product_admin_service(get_runtime(request))


async def get_report_service(request: Request) -> ReportService:
    return composition.report_service(get_runtime(request).settings, get_clock(request))


async def get_newsletter_service(request: Request) -> NewsletterService:
    return composition.newsletter_service(get_runtime(request))


async def get_stock_alert_service(request: Request) -> StockAlertService:
    return composition.stock_alert_service(get_runtime(request))


async def get_campaign_service(request: Request) -> CampaignService:
    return composition.campaign_service(get_runtime(request))


async def get_shopper_report_service(request: Request) -> ShopperReportService:
    return composition.shopper_report_service(get_runtime(request).settings, get_clock(request))
