"""Passwords (libpass: argon2id, legacy bcrypt verified and upgraded), JWTs (python-jose), opaque tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

from jose import JWTError, jwt
from passlib.context import CryptContext

from app.config import Settings
from app.core.clock import utcnow
from app.core.ids import new_id

ALGORITHM = "HS256"
MAX_PASSWORD_BYTES = 512  # argon2 has no 72-byte limit; keep inputs bounded all the same

pwd_context = CryptContext(
    schemes=["argon2", "bcrypt"],
    deprecated=["bcrypt"],
    argon2__type="ID",
)

# A real hash of a random password, verified when the email is unknown so both paths cost the same.
_DUMMY_HASH = pwd_context.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return pwd_context.hash(password)


def verify_password(password: str, hashed: str | None) -> tuple[bool, str | None]:
    """Return (ok, new_hash_if_the_stored_one_should_be_upgraded)."""
    if not hashed:
        pwd_context.verify(password, _DUMMY_HASH)
        return False, None
    try:
        if hashed.startswith(("$2a$", "$2b$", "$2y$")) and len(password.encode()) > 72:
            return False, None  # bcrypt cannot have stored a longer password
        return pwd_context.verify_and_update(password, hashed)
    except (ValueError, TypeError):
        return False, None


def burn_password_check(password: str) -> None:
    pwd_context.verify(password, _DUMMY_HASH)


def create_access_token(settings: Settings, *, user_id: str, role: str, session_id: str) -> tuple[str, int]:
    now = utcnow()
    ttl = timedelta(minutes=settings.access_token_minutes)
    claims: dict[str, Any] = {
        "sub": user_id,
        "role": role,
        "sid": session_id,
        "iat": now.timestamp(),  # millisecond precision: compared with tokens_valid_after
        "exp": int((now + ttl).timestamp()),
        "jti": new_id("jti"),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "typ": "access",
    }
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM), int(ttl.total_seconds())


def decode_access_token(settings: Settings, token: str) -> dict[str, Any] | None:
    """The verified claims of an access token, or None when it is not one of ours or not valid now.

    The signature may be made with JWT_SECRET or any of JWT_PREVIOUS_SECRETS (secret rotation: tokens
    issued before the switch keep working until they expire); python-jose tries each key of the list.
    Expiry, audience and issuer are checked whichever secret signed it.
    """
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM:
            return None
        claims = jwt.decode(
            token, settings.jwt_verify_secrets, algorithms=[ALGORITHM],
            audience=settings.jwt_audience, issuer=settings.jwt_issuer,
            options={"require_exp": True, "require_iat": True, "require_sub": True, "require_aud": True},
        )
    except JWTError:
        return None
    if claims.get("typ") != "access":
        return None
    return claims


def new_token() -> str:
    """An opaque, URL-safe secret (refresh, reset, verification, cart, order-access tokens)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)
