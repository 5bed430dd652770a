"""/auth: registration, tokens, logout, password reset, email verification."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response, status

from app.core.errors import Unauthorized
from app.core.ratelimit import client_ip, hit
from app.deps import CartToken, OptionalUser, SettingsDep, client_info, get_auth_service, get_cart_service
from app.models.common import Message, problem_responses
from app.schemas.auth import (
    AuthResult,
    EmailIn,
    LoginIn,
    RefreshIn,
    RegisterIn,
    ResetPasswordIn,
    TokenIn,
    TokenPair,
)
from app.schemas.users import UserOut, user_out
from app.services.auth import AuthService, ClientInfo
from app.services.cart import CartService

router = APIRouter(prefix="/auth", tags=["auth"])

REFRESH_COOKIE = "af_refresh"
Auth = Annotated[AuthService, Depends(get_auth_service)]
Client = Annotated[ClientInfo, Depends(client_info)]
Carts = Annotated[CartService, Depends(get_cart_service)]


def _set_refresh_cookie(response: Response, settings, tokens: TokenPair) -> None:
    response.set_cookie(REFRESH_COOKIE, tokens.refresh_token, max_age=tokens.refresh_expires_in, httponly=True,
                        secure=settings.refresh_cookie_secure, samesite="strict", path="/api/v1/auth")


def _clear_refresh_cookie(response: Response, settings) -> None:
    response.delete_cookie(REFRESH_COOKIE, path="/api/v1/auth", httponly=True,
                           secure=settings.refresh_cookie_secure, samesite="strict")


def _login_limits(request: Request, email: str) -> None:
    s = request.app.state.settings
    hit(request, s.rate_limit_login_ip, "login-ip", client_ip(request))
    hit(request, s.rate_limit_login_email, "login-email", email)


@router.post("/register", response_model=AuthResult, status_code=status.HTTP_201_CREATED,
             responses=problem_responses(409, 422, 429), summary="Create a customer account")
async def register(body: RegisterIn, request: Request, response: Response, auth: Auth, client: Client,
                   settings: SettingsDep, carts: Carts, cart_token: CartToken) -> AuthResult:
    hit(request, settings.rate_limit_register, "register", client_ip(request))
    user, tokens = await auth.register(body, client)
    await carts.merge_guest(cart_token, user)  # X-Cart-Token: the guest cart joins the new account
    _set_refresh_cookie(response, settings, tokens)
    return AuthResult(user=user_out(user), tokens=tokens)


@router.post("/login", response_model=AuthResult, responses=problem_responses(401, 403, 422, 429),
             summary="Sign in with email and password")
async def login(body: LoginIn, request: Request, response: Response, auth: Auth, client: Client,
                settings: SettingsDep, carts: Carts, cart_token: CartToken) -> AuthResult:
    _login_limits(request, body.email)
    user, tokens = await auth.login(body.email, body.password, client)
    await carts.merge_guest(cart_token, user)  # X-Cart-Token: the guest cart joins the customer's cart
    _set_refresh_cookie(response, settings, tokens)
    return AuthResult(user=user_out(user), tokens=tokens)


@router.post("/token", response_model=TokenPair, responses=problem_responses(401, 403, 422, 429),
             summary="OAuth2 password flow (form body; used by the docs' Authorize button)")
async def token(request: Request, auth: Auth, client: Client,
                username: Annotated[str, Form(max_length=254)],
                password: Annotated[str, Form(min_length=1, max_length=128)]) -> TokenPair:
    email = username.strip().lower()
    _login_limits(request, email)
    _, tokens = await auth.login(email, password, client)
    return tokens


@router.post("/refresh", response_model=TokenPair, responses=problem_responses(401, 422),
             summary="Rotate the refresh token (body or cookie) and get a new access token")
async def refresh(request: Request, response: Response, auth: Auth, client: Client, settings: SettingsDep,
                  body: RefreshIn | None = None) -> TokenPair:
    raw = (body.refresh_token if body else None) or request.cookies.get(REFRESH_COOKIE)
    if not raw or len(raw) > 256:
        raise Unauthorized("No refresh token was sent.", code="invalid-refresh-token")
    _, tokens = await auth.refresh(raw, client)
    _set_refresh_cookie(response, settings, tokens)
    return tokens


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="End this session")
async def logout(request: Request, auth: Auth, user: OptionalUser, settings: SettingsDep,
                 body: RefreshIn | None = None) -> Response:
    raw = (body.refresh_token if body else None) or request.cookies.get(REFRESH_COOKIE)
    await auth.logout(refresh_token=raw, session_id=getattr(request.state, "session_id", None), user=user)
    response = Response(status_code=204)
    _clear_refresh_cookie(response, settings)
    return response


@router.post("/logout-all", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(401),
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
    hit(request, settings.rate_limit_forgot, "forgot-ip", client_ip(request))
    hit(request, settings.rate_limit_forgot, "forgot-email", body.email)
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
    return user_out(await auth.verify_email(body.token))


@router.post("/resend-verification", status_code=status.HTTP_202_ACCEPTED, response_model=Message,
             responses=problem_responses(422, 429), summary="Send the verification email again (always 202)")
async def resend_verification(body: EmailIn, request: Request, auth: Auth, settings: SettingsDep) -> Message:
    hit(request, settings.rate_limit_resend, "resend-ip", client_ip(request))
    await auth.resend_verification(body.email)
    return Message(detail="If this account still needs verification, an email is on its way.")
