"""Auth API schemas."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, EmailStr, Field, StringConstraints

from app.models.common import StrictModel
from app.schemas.users import Name, UserOut, UsPhone


def normalize_email(value: str) -> str:
    return value.strip().lower()


Email = Annotated[EmailStr, Field(max_length=254), AfterValidator(normalize_email)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=128)]
NewPassword = Annotated[str, StringConstraints(min_length=10, max_length=128)]
Token = Annotated[str, StringConstraints(min_length=16, max_length=256, pattern=r"^[A-Za-z0-9_-]+$")]


class RegisterIn(StrictModel):
    email: Email
    password: NewPassword
    first_name: Name
    last_name: Name
    phone: UsPhone | None = None


class LoginIn(StrictModel):
    email: Email
    password: Password


class RefreshIn(StrictModel):
    refresh_token: Token | None = Field(None, description="Omit when the refresh cookie is sent.")


class EmailIn(StrictModel):
    email: Email


class ResetPasswordIn(StrictModel):
    token: Token
    password: NewPassword


class TokenIn(StrictModel):
    token: Token


class TokenPair(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str
    refresh_expires_in: int


class AuthResult(BaseModel):
    user: UserOut
    tokens: TokenPair

