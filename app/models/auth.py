"""Refresh-token sessions and single-use tokens (storage). Secrets are stored only as SHA-256 hashes."""

from __future__ import annotations

from enum import StrEnum

from beanie import Document
from pymongo import ASCENDING, IndexModel

from app.models.base import UtcDateTime, id_field, now_field


class RefreshSession(Document):
    """One refresh token. Rotation revokes it and creates its successor in the same family."""

    id: str = id_field("ses")  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    user_id: str
    family_id: str
    token_hash: str
    expires_at: UtcDateTime
    revoked_at: UtcDateTime | None = None
    revoked_reason: str | None = None
    replaced_by: str | None = None
    # Set on every session of a family when the family ends (logout, reuse detected, logout-all, security
    # event), including its already-rotated sessions: access tokens naming any of them are refused at once.
    ended_reason: str | None = None
    user_agent: str | None = None
    ip: str | None = None
    created_at: UtcDateTime = now_field()

    class Settings:
        name = "refresh_sessions"
        indexes = [
            IndexModel([("token_hash", ASCENDING)], unique=True, name="token_hash_unique"),
            IndexModel([("user_id", ASCENDING), ("revoked_at", ASCENDING)], name="user_revoked"),
            IndexModel([("family_id", ASCENDING)], name="family"),
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=7 * 24 * 3600, name="expires_ttl"),
        ]


class TokenPurpose(StrEnum):
    password_reset = "password_reset"
    email_verify = "email_verify"


class OneTimeToken(Document):
    """A reset or verification link. ``stamp`` is the user's ``security_stamp`` when it was issued: a security
    event raises the user's stamp, which voids every link issued before it."""

    id: str = id_field("tok")  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    purpose: TokenPurpose
    user_id: str
    token_hash: str
    expires_at: UtcDateTime
    used_at: UtcDateTime | None = None
    stamp: int = 0
    created_at: UtcDateTime = now_field()

    class Settings:
        name = "one_time_tokens"
        indexes = [
            IndexModel([("token_hash", ASCENDING)], unique=True, name="token_hash_unique"),
            IndexModel([("user_id", ASCENDING), ("purpose", ASCENDING)], name="user_purpose"),
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=24 * 3600, name="expires_ttl"),
        ]
