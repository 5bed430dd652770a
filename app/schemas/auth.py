"""Auth API schemas."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from app.schemas.common import StrictModel
from app.schemas.users import Name, UserOut, UsPhone


def normalize_email(value: str) -> str:
    return value.strip().lower()


Email = Annotated[EmailStr, Field(max_length=254), AfterValidator(normalize_email)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=128)]
NewPassword = Annotated[str, StringConstraints(min_length=10, max_length=128)]
Token = Annotated[str, StringConstraints(min_length=16, max_length=256, pattern=r"^[A-Za-z0-9_-]+$")]


class RegisterIn(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "email": "olivia@example.com", "password": "Bouquet-Demo-2026", "first_name": "Olivia",
        "last_name": "Bennett", "phone": "+1 212 555 0134"}]})

    email: Email
    password: NewPassword
    first_name: Name
    last_name: Name
    phone: UsPhone | None = None


class LoginIn(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"email": "olivia@example.com",
                                                               "password": "Bouquet-Demo-2026"}]})

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
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c3JfMDFKRDdaIn0.c2lnbmF0dXJl",
        "token_type": "bearer", "expires_in": 900, "refresh_token": "rt_Jr3n2f0q1Yc8bqkWm5Zt7v4X9pL6sD2a",
        "refresh_expires_in": 2592000}]})

    access_token: str = Field(description="Send as `Authorization: Bearer <access_token>`.")
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str | None = Field(description="Rotating refresh token for `/auth/refresh` (single use). "
                                                  "Null in cookie session mode (`X-Session-Mode: cookie`): "
                                                  "then it is only in the httpOnly `af_refresh` cookie.")
    refresh_expires_in: int = Field(description="Seconds until the refresh token expires.")


class AuthResult(BaseModel):
    user: UserOut
    tokens: TokenPair


SessionMode = Literal["body", "cookie"]

