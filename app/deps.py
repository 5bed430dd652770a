"""Request dependencies: runtime services, the current user and role guards."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from app.config import Settings
from app.core.errors import Forbidden, Unauthorized
from app.core.security import decode_access_token
from app.models.user import Role, User

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def optional_user(request: Request, token: Annotated[str | None, Depends(oauth2)]) -> User | None:
    if not token:
        return None
    claims = decode_access_token(request.app.state.settings, token)
    if claims is None:
        raise Unauthorized("The access token is invalid or expired.")
    user = await User.get(claims["sub"])
    if user is None or not user.is_active:
        raise Unauthorized("The access token is invalid or expired.")
    if user.tokens_valid_after and float(claims["iat"]) < user.tokens_valid_after.timestamp():
        raise Unauthorized("This session was signed out. Sign in again.")
    request.state.session_id = claims.get("sid")
    return user


async def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise Unauthorized("Sign in to use this endpoint.")
    return user


async def staff_user(user: Annotated[User, Depends(current_user)]) -> User:
    if user.role not in (Role.staff, Role.admin):
        raise Forbidden("This endpoint is for shop staff.")
    return user


async def admin_user(user: Annotated[User, Depends(current_user)]) -> User:
    if user.role != Role.admin:
        raise Forbidden("This endpoint is for administrators.")
    return user


OptionalUser = Annotated[User | None, Depends(optional_user)]
CurrentUser = Annotated[User, Depends(current_user)]
StaffUser = Annotated[User, Depends(staff_user)]
AdminUser = Annotated[User, Depends(admin_user)]


def get_email_service(request: Request):
    return request.app.state.runtime.email


def get_auth_service(request: Request):
    from app.services.auth import AuthService

    return AuthService(request.app.state.settings, request.app.state.runtime.email)


def client_info(request: Request):
    from app.services.auth import ClientInfo

    return ClientInfo(ip=request.client.host if request.client else None,
                      user_agent=request.headers.get("user-agent"))


def get_account_service(request: Request):
    from app.services.accounts import AccountService

    return AccountService(get_auth_service(request))


def get_user_admin_service(request: Request):
    from app.services.accounts import UserAdminService

    return UserAdminService(get_auth_service(request))


def get_review_service(request: Request):
    from app.services.reviews import ReviewService

    return ReviewService(request.app.state.runtime)


def get_favorite_service(request: Request):
    from app.services.favorites import FavoriteService

    return FavoriteService()


def get_image_service(request: Request):
    from app.services.images import ImageService

    rt = request.app.state.runtime
    return ImageService(rt.storage, request.app.state.settings, rt)
