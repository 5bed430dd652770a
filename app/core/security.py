"""Passwords (libpass: argon2id, legacy bcrypt verified and upgraded), JWTs (python-jose), opaque tokens and
signed link tokens (stateless, for links in email: newsletter confirmation and unsubscribe)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
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


# --- signed link tokens ------------------------------------------------------------------------------------
# ``<base64url JSON payload>.<base64url HMAC-SHA256>``: the payload names its purpose (``p``) and, when the
# link expires, the expiry as a Unix time (``x``). The MAC key is derived from JWT_SECRET (and, to verify,
# from JWT_PREVIOUS_SECRETS: links sent before a rotation keep working), separately from the JWT key use.
LINK_TOKEN_PATTERN = r"^[A-Za-z0-9_-]{8,400}\.[A-Za-z0-9_-]{43}$"
MAX_LINK_TOKEN = 444


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _link_mac(secret: str, body: str) -> str:
    key = hmac.new(secret.encode(), b"amour-florals:signed-link:v1", hashlib.sha256).digest()
    return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def sign_link(settings: Settings, purpose: str, data: dict[str, Any], *, ttl: timedelta | None = None) -> str:
    """A token carrying ``data`` (short keys, JSON values) for ``purpose``, signed with JWT_SECRET; it expires
    after ``ttl`` (never when None). Anyone may read the payload: put ids in it, never secrets or addresses."""
    payload: dict[str, Any] = {"p": purpose, **data}
    if ttl is not None:
        payload["x"] = int((utcnow() + ttl).timestamp())
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_link_mac(settings.jwt_secret.get_secret_value(), body)}"


def read_link(settings: Settings, purpose: str, token: str) -> dict[str, Any] | None:
    """The payload of a ``sign_link`` token for ``purpose`` if its signature is ours (current or previous
    secret) and it has not expired; None otherwise (never raises)."""
    if len(token) > MAX_LINK_TOKEN:
        return None
    body, _, mac = token.partition(".")
    if not any(tokens_equal(_link_mac(secret, body), mac) for secret in settings.jwt_verify_secrets):
        return None
    try:
        payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, binascii.Error):  # pragma: no cover - only we sign bodies, and ours always decode
        return None
    if payload.get("p") != purpose:
        return None
    if "x" in payload and payload["x"] <= utcnow().timestamp():
        return None
    return payload
