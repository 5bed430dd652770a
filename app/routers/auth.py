"""/auth: registration, tokens, logout, password reset, email verification."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, Form, Header, Request, Response, status

from app.config import Settings
from app.core.errors import Unauthorized
from app.core.openapi import response_headers
from app.core.problems import problem_responses
from app.core.ratelimit import client_ip, hit
from app.deps import CartToken, OptionalUser, SettingsDep, client_info, get_auth_service, get_cart_service
from app.routers.params import API_PREFIX
from app.schemas.auth import (
    AuthResult,
    EmailIn,
    LoginIn,
    RefreshIn,
    RegisterIn,
    ResetPasswordIn,
    SessionMode,
    TokenIn,
    TokenPair,
)
from app.schemas.common import Message
from app.schemas.users import UserOut
from app.services.accounts import profile
from app.services.auth import AuthService, ClientInfo
from app.services.cart import CartService

router = APIRouter(prefix="/auth", tags=["auth"])

REFRESH_COOKIE = "af_refresh"
COOKIE_CONTRACT = (
    "The refresh cookie: `af_refresh`, `HttpOnly`, `SameSite=Strict`, `Path=/api/v1/auth`, `Secure` (unless "
    "`REFRESH_COOKIE_SECURE=false` in development), `Max-Age` = the refresh token's lifetime "
    "(`REFRESH_TOKEN_DAYS`, default 30 days). Set by register, login and refresh; cleared by logout and "
    "logout-all. Browsers should send `X-Session-Mode: cookie` so that the refresh token never appears in a "
    "response body readable by page scripts; mobile and server clients keep the body token (default `body`).")
Auth = Annotated[AuthService, Depends(get_auth_service)]
Client = Annotated[ClientInfo, Depends(client_info)]
Carts = Annotated[CartService, Depends(get_cart_service)]
Mode = Annotated[SessionMode, Header(
    alias="X-Session-Mode", description="`cookie`: the refresh token is only set in the httpOnly `af_refresh` "
    "cookie and `refresh_token` is null in the body (browsers). `body` (default): also in the body "
    "(mobile and server-side clients).")]
SETS_COOKIE = "Also sets the refresh cookie (`Set-Cookie: af_refresh=…`)."


def _issue(response: Response, settings: Settings, tokens: TokenPair, mode: SessionMode) -> TokenPair:
    """Set the refresh cookie; in cookie mode the body carries no refresh token."""
    response.set_cookie(REFRESH_COOKIE, tokens.refresh_token or "", max_age=tokens.refresh_expires_in,
                        httponly=True, secure=settings.refresh_cookie_secure, samesite="strict",
                        path="/api/v1/auth")
    return tokens.model_copy(update={"refresh_token": None}) if mode == "cookie" else tokens


def _clear_refresh_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(REFRESH_COOKIE, path="/api/v1/auth", httponly=True,
                           secure=settings.refresh_cookie_secure, samesite="strict")


async def _login_limits(request: Request, email: str) -> None:
    s = request.app.state.settings
    await hit(request, s.rate_limit_login_ip, "login-ip", client_ip(request))
    await hit(request, s.rate_limit_login_email, "login-email", email)


@router.post("/register", response_model=AuthResult, status_code=status.HTTP_201_CREATED,
             operation_id="auth_register",
             responses={**problem_responses(409, 422, 429), **response_headers(201, "Set-Cookie", "Location")},
             summary="Create a customer account",
             description="Creates the account and signs it in; a guest cart sent with `X-Cart-Token` joins it. "
                         + SETS_COOKIE)
async def register(body: RegisterIn, request: Request, response: Response, auth: Auth, client: Client,
                   settings: SettingsDep, carts: Carts, cart_token: CartToken, mode: Mode = "body") -> AuthResult:
    await hit(request, settings.rate_limit_register, "register", client_ip(request))
    user, tokens = await auth.register(body, client)
    await carts.merge_guest(cart_token, user)  # X-Cart-Token: the guest cart joins the new account
    response.headers["Location"] = f"{API_PREFIX}/users/me"
    return AuthResult(user=await profile(user), tokens=_issue(response, settings, tokens, mode))


@router.post("/login", response_model=AuthResult,
             responses={**problem_responses(401, 403, 422, 429), **response_headers(200, "Set-Cookie")},
             summary="Sign in with email and password",
             description="A guest cart sent with `X-Cart-Token` joins the customer's cart. " + SETS_COOKIE)
async def login(body: LoginIn, request: Request, response: Response, auth: Auth, client: Client,
                settings: SettingsDep, carts: Carts, cart_token: CartToken, mode: Mode = "body") -> AuthResult:
    await _login_limits(request, body.email)
    user, tokens = await auth.login(body.email, body.password, client)
    await carts.merge_guest(cart_token, user)  # X-Cart-Token: the guest cart joins the customer's cart
    return AuthResult(user=await profile(user), tokens=_issue(response, settings, tokens, mode))


@router.post("/token", response_model=TokenPair, responses=problem_responses(401, 403, 422, 429),
             summary="OAuth2 password flow (form body; used by the docs' Authorize button)")
async def token(request: Request, auth: Auth, client: Client,
                username: Annotated[str, Form(max_length=254)],
                password: Annotated[str, Form(min_length=1, max_length=128)]) -> TokenPair:
    email = username.strip().lower()
    await _login_limits(request, email)
    _, tokens = await auth.login(email, password, client)
    return tokens


@router.post("/refresh", response_model=TokenPair,
             responses={**problem_responses(401, 422), **response_headers(200, "Set-Cookie")},
             summary="Rotate the refresh token (body or cookie) and get a new access token",
             description="Send the refresh token in the body, or send no body and let the browser send the "
                         "`af_refresh` cookie. Each refresh token works once: the answer carries a new one "
                         "(reusing an old one ends the session: 401). " + COOKIE_CONTRACT)
async def refresh(request: Request, response: Response, auth: Auth, client: Client, settings: SettingsDep,
                  body: RefreshIn | None = None, mode: Mode = "body",
                  af_refresh: Annotated[str | None, Cookie(description="The refresh cookie (browsers; used when "
                                                                       "the body has no token).")] = None,
                  ) -> TokenPair:
    raw = (body.refresh_token if body else None) or af_refresh
    if not raw or len(raw) > 256:
        raise Unauthorized("No refresh token was sent.", code="invalid-refresh-token")
    _, tokens = await auth.refresh(raw, client)
    return _issue(response, settings, tokens, mode)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="End this session",
             responses=response_headers(204, "Set-Cookie", description="Signed out; the refresh cookie is cleared."))
async def logout(request: Request, auth: Auth, user: OptionalUser, settings: SettingsDep,
                 body: RefreshIn | None = None,
                 af_refresh: Annotated[str | None, Cookie(description="The refresh cookie, if any.")] = None,
                 ) -> Response:
    raw = (body.refresh_token if body else None) or af_refresh
    await auth.logout(refresh_token=raw, session_id=getattr(request.state, "session_id", None), user=user)
    response = Response(status_code=204)
    _clear_refresh_cookie(response, settings)
    return response


@router.post("/logout-all", status_code=status.HTTP_204_NO_CONTENT,
             responses={**problem_responses(401), **response_headers(204, "Set-Cookie")},
             summary="End every session of the signed-in user")
async def logout_all(auth: Auth, user: OptionalUser, settings: SettingsDep) -> Response:
    if user is None:
        raise Unauthorized("Sign in to use this endpoint.")
    await auth.logout_all(user)
    response = Response(status_code=204)
    _clear_refresh_cookie(response, settings)
    return response


@router.post("/forgot-password", status_code=status.HTTP_202_ACCEPTED, response_model=Message,
             responses=problem_responses(422, 429), summary="Email a password reset link (always 202)")
async def forgot_password(body: EmailIn, request: Request, auth: Auth, settings: SettingsDep) -> Message:
    await hit(request, settings.rate_limit_forgot, "forgot-ip", client_ip(request))
    await hit(request, settings.rate_limit_forgot, "forgot-email", body.email)
    await auth.forgot_password(body.email)
    return Message(detail="If an account exists for this email, a reset link is on its way.")


@router.post("/reset-password", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(400, 422),
             summary="Set a new password with a reset token; ends every session")
async def reset_password(body: ResetPasswordIn, auth: Auth) -> Response:
    await auth.reset_password(body.token, body.password)
    return Response(status_code=204)


@router.post("/verify-email", response_model=UserOut, responses=problem_responses(400, 422),
             summary="Confirm the email address with the emailed token")
async def verify_email(body: TokenIn, auth: Auth) -> UserOut:
    return await profile(await auth.verify_email(body.token))


@router.post("/resend-verification", status_code=status.HTTP_202_ACCEPTED, response_model=Message,
             responses=problem_responses(422, 429), summary="Send the verification email again (always 202)")
async def resend_verification(body: EmailIn, request: Request, auth: Auth, settings: SettingsDep) -> Message:
    await hit(request, settings.rate_limit_resend, "resend-ip", client_ip(request))
    await auth.resend_verification(body.email)
    return Message(detail="If this account still needs verification, an email is on its way.")
