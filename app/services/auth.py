"""Accounts and sessions: register, login, refresh rotation with reuse detection, logout, password reset,
email verification.

Revocation: an access token names its refresh session (``sid``). Ending a session family (logout, reuse
detected) marks every session of the family ``ended_reason``, and ``session_is_live`` -- one ``_id`` lookup
per authenticated request -- refuses access tokens naming an ended session. A security event (``logout_all``:
password change or reset, deactivation, role change, deletion, logout-all) also raises the user's
``security_stamp``, which voids every one-time link issued before it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from importlib import resources
from urllib.parse import quote

from anyio import to_thread
from pymongo.errors import DuplicateKeyError

from app.config import Settings
from app.core.clock import utcnow
from app.core.errors import AppError, Conflict, Forbidden, Unauthorized, Unprocessable
from app.core.ids import new_id
from app.core.security import (
    burn_password_check,
    create_access_token,
    hash_password,
    hash_token,
    new_token,
    verify_password,
)
from app.models.auth import OneTimeToken, RefreshSession, TokenPurpose
from app.models.user import User
from app.schemas.auth import RegisterIn, TokenPair
from app.services.email import EmailService

log = logging.getLogger("app.auth")

INVALID_LOGIN = "Email or password is incorrect."


class InvalidToken(AppError):
    status, code, title = 400, "invalid-token", "Invalid or expired token"


@lru_cache
def _common_passwords() -> frozenset[str]:
    text = resources.files("app.data").joinpath("common_passwords.txt").read_text()
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def check_password_policy(password: str, email: str) -> None:
    lowered = password.lower()
    if not 10 <= len(password) <= 128:
        raise Unprocessable("The password must be 10 to 128 characters long.", code="weak-password")
    if lowered == email.lower() or lowered == email.split("@")[0].lower():
        raise Unprocessable("The password must not be your email address.", code="weak-password")
    if lowered in _common_passwords() or len(set(password)) < 4:
        raise Unprocessable("This password is too common. Choose a less guessable one.", code="weak-password")


@dataclass
class ClientInfo:
    ip: str | None = None
    user_agent: str | None = None


class AuthService:
    def __init__(self, settings: Settings, email: EmailService) -> None:
        self.settings = settings
        self.email = email

    # --- registration and login -------------------------------------------------------------------
    async def register(self, data: RegisterIn, client: ClientInfo) -> tuple[User, TokenPair]:
        check_password_policy(data.password, data.email)
        user = User(email=data.email, first_name=data.first_name, last_name=data.last_name, phone=data.phone,
                    password_hash=await to_thread.run_sync(hash_password, data.password))
        try:
            await user.insert()
        except DuplicateKeyError:
            raise Conflict("An account with this email already exists.", code="email-taken") from None
        await self._send_verification(user, template="welcome_verify")
        return user, await self._issue(user, client, family_id=None)

    async def login(self, email: str, password: str, client: ClientInfo) -> tuple[User, TokenPair]:
        user = await User.find_one(User.email == email)
        ok, new_hash = await to_thread.run_sync(verify_password, password, user.password_hash if user else None)
        if user is None or not ok:
            raise Unauthorized(INVALID_LOGIN, code="invalid-credentials")
        if not user.is_active:
            raise Forbidden("This account is deactivated. Contact the shop.", code="account-deactivated")
        updates: dict[str, object] = {"last_login_at": utcnow()}
        if new_hash:  # legacy bcrypt (or outdated argon2 parameters): upgrade transparently
            updates["password_hash"] = new_hash
        await User.find_one(User.id == user.id).update({"$set": updates})
        return user, await self._issue(user, client, family_id=None)

    async def refresh(self, token: str, client: ClientInfo) -> tuple[User, TokenPair]:
        now = utcnow()
        session = await RefreshSession.find_one(RefreshSession.token_hash == hash_token(token))
        if session is None or session.expires_at <= now:
            raise Unauthorized("The refresh token is invalid or expired.", code="invalid-refresh-token")
        if session.revoked_at is not None:
            if session.revoked_reason == "rotated":
                # A rotated token came back: it was copied. End every session of that family.
                await self._revoke({"family_id": session.family_id}, "reuse-detected")
                log.warning("refresh token reuse detected; family %s revoked", session.family_id)
            raise Unauthorized("The refresh token is invalid or expired.", code="invalid-refresh-token")
        user = await User.get(session.user_id)
        if user is None or not user.is_active:
            raise Unauthorized("The refresh token is invalid or expired.", code="invalid-refresh-token")
        successor_id = new_id("ses")
        # Atomic: of two concurrent refreshes with the same token, exactly one rotates it.
        res = await RefreshSession.get_pymongo_collection().update_one(
            {"_id": session.id, "revoked_at": None},
            {"$set": {"revoked_at": now, "revoked_reason": "rotated", "replaced_by": successor_id}},
        )
        if res.modified_count != 1:
            await self._revoke({"family_id": session.family_id}, "reuse-detected")
            raise Unauthorized("The refresh token is invalid or expired.", code="invalid-refresh-token")
        return user, await self._issue(user, client, family_id=session.family_id, session_id=successor_id)

    async def logout(self, *, refresh_token: str | None, session_id: str | None, user: User | None) -> None:
        if refresh_token:
            session = await RefreshSession.find_one(RefreshSession.token_hash == hash_token(refresh_token))
            if session is not None and (user is None or session.user_id == user.id):
                await self._revoke({"family_id": session.family_id}, "logout")
        if session_id and user is not None:
            session = await RefreshSession.get(session_id)
            if session is not None and session.user_id == user.id:
                await self._revoke({"family_id": session.family_id}, "logout")

    async def logout_all(self, user: User, reason: str = "logout-all") -> None:
        """A security event: end every session (refresh tokens revoked, access tokens issued so far refused)
        and void every outstanding one-time link (reset, verification) by raising the security stamp."""
        await User.find_one(User.id == user.id).update({"$set": {"tokens_valid_after": utcnow()},
                                                        "$inc": {"security_stamp": 1}})
        await self._revoke({"user_id": user.id}, reason)

    # --- passwords ------------------------------------------------------------------------------
    async def forgot_password(self, email: str) -> None:
        user = await User.find_one(User.email == email)
        if user is None or not user.is_active:
            return  # same answer either way: no account enumeration
        token = await self._new_one_time(user, TokenPurpose.password_reset,
                                         timedelta(minutes=self.settings.password_reset_minutes))
        link = f"{self.settings.storefront_url}/reset-password?token={quote(token)}"
        await self.email.enqueue(to=user.email, template="password_reset", dedupe_key=f"reset:{hash_token(token)}",
                                 context={"first_name": user.first_name, "link": link, "token": token,
                                          "minutes": self.settings.password_reset_minutes})

    async def reset_password(self, token: str, password: str) -> None:
        # Check the new password before spending the single-use token: a refused password keeps the link.
        record, user = await self._redeemable(token, TokenPurpose.password_reset)
        if not user.is_active:
            raise InvalidToken("This reset link is invalid, was already used, or has expired.")
        check_password_policy(password, user.email)
        await self._spend(record)  # atomic: of two concurrent resets one wins
        await self.set_password(user, password)
        await self.logout_all(user, reason="password-reset")

    async def change_password(self, user: User, current: str, new: str, client: ClientInfo) -> TokenPair:
        """Change the password, end every session, and return a fresh token pair for this client."""
        ok, _ = await to_thread.run_sync(verify_password, current, user.password_hash)
        if not ok:
            raise Unprocessable("The current password is incorrect.", code="wrong-password")
        check_password_policy(new, user.email)
        if current == new:
            raise Unprocessable("The new password must differ from the current one.", code="weak-password")
        await self.set_password(user, new)
        await self.logout_all(user, reason="password-changed")
        await self.email.enqueue(to=user.email, template="password_changed", dedupe_key=new_id("pwchg"),
                                 context={"first_name": user.first_name})
        return await self._issue(user, client, family_id=None)

    async def set_password(self, user: User, password: str) -> None:
        hashed = await to_thread.run_sync(hash_password, password)
        await User.find_one(User.id == user.id).update({"$set": {"password_hash": hashed, "updated_at": utcnow()}})

    async def verify_password_or_fail(self, user: User, password: str) -> None:
        ok, _ = await to_thread.run_sync(verify_password, password, user.password_hash)
        if not ok:
            raise Unprocessable("The password is incorrect.", code="wrong-password")

    # --- email verification -------------------------------------------------------------------------
    async def verify_email(self, token: str) -> User:
        record, user = await self._redeemable(token, TokenPurpose.email_verify)
        await self._spend(record)
        if user.email_verified_at is None:
            await User.find_one(User.id == user.id).update({"$set": {"email_verified_at": utcnow()}})
        return await User.get(user.id)  # type: ignore[return-value]  # the token's user: it exists

    async def resend_verification(self, email: str) -> None:
        user = await User.find_one(User.email == email)
        if user is None or not user.is_active or user.email_verified_at is not None:
            await to_thread.run_sync(burn_password_check, "x")  # similar timing either way
            return
        await self._send_verification(user, template="verify_email")

    # --- internals ------------------------------------------------------------------------------
    async def _send_verification(self, user: User, template: str) -> None:
        token = await self._new_one_time(user, TokenPurpose.email_verify,
                                         timedelta(hours=self.settings.email_verify_hours))
        link = f"{self.settings.storefront_url}/verify-email?token={quote(token)}"
        await self.email.enqueue(to=user.email, template=template, dedupe_key=f"verify:{hash_token(token)}",
                                 context={"first_name": user.first_name, "link": link, "token": token,
                                          "hours": self.settings.email_verify_hours})

    async def _new_one_time(self, user: User, purpose: TokenPurpose, ttl: timedelta) -> str:
        # A new link replaces older unused ones of the same purpose.
        await OneTimeToken.get_pymongo_collection().update_many(
            {"user_id": user.id, "purpose": purpose, "used_at": None}, {"$set": {"used_at": utcnow()}})
        token = new_token()
        # ``user`` was read before this insert: a security event in between leaves the link with the old stamp.
        await OneTimeToken(purpose=purpose, user_id=user.id, token_hash=hash_token(token),
                           expires_at=utcnow() + ttl, stamp=user.security_stamp).insert()
        return token

    @staticmethod
    async def _redeemable(token: str, purpose: TokenPurpose) -> tuple[OneTimeToken, User]:
        """The unused, unexpired link ``token`` of ``purpose`` and its user, if no security event happened since
        it was issued; InvalidToken (400) otherwise. Nothing is spent."""
        record = await OneTimeToken.find_one({"token_hash": hash_token(token), "purpose": purpose,
                                              "used_at": None, "expires_at": {"$gt": utcnow()}})
        user = await User.get(record.user_id) if record else None
        if record is None or user is None or record.stamp != user.security_stamp:
            raise InvalidToken("This link is invalid, was already used, or has expired.")
        return record, user

    @staticmethod
    async def _spend(record: OneTimeToken) -> None:
        """Mark the link used, atomically: of two concurrent redemptions exactly one gets here without 400."""
        res = await OneTimeToken.get_pymongo_collection().update_one(
            {"_id": record.id, "used_at": None}, {"$set": {"used_at": utcnow()}})
        if res.modified_count != 1:
            raise InvalidToken("This link is invalid, was already used, or has expired.")

    async def _issue(self, user: User, client: ClientInfo, family_id: str | None,
                     session_id: str | None = None) -> TokenPair:
        refresh = new_token()
        ttl = timedelta(days=self.settings.refresh_token_days)
        session = RefreshSession(
            id=session_id or new_id("ses"), user_id=user.id, family_id=family_id or new_id("fam"),
            token_hash=hash_token(refresh), expires_at=utcnow() + ttl,
            ip=client.ip, user_agent=(client.user_agent or "")[:200] or None,
        )
        await session.insert()
        access, expires_in = create_access_token(self.settings, user_id=user.id, role=user.role, session_id=session.id)
        return TokenPair(access_token=access, expires_in=expires_in, refresh_token=refresh,
                         refresh_expires_in=int(ttl.total_seconds()))

    async def _revoke(self, query: dict[str, str], reason: str) -> None:
        """End the sessions matching ``query`` (a family or a user): refresh tokens not yet rotated are revoked,
        and every session, rotated ones included, is marked ended so its access tokens stop at once."""
        coll = RefreshSession.get_pymongo_collection()
        await coll.update_many({**query, "revoked_at": None},
                               {"$set": {"revoked_at": utcnow(), "revoked_reason": reason}})
        await coll.update_many({**query, "ended_reason": None}, {"$set": {"ended_reason": reason}})


async def session_is_live(session_id: str | None, user_id: str) -> bool:
    """True when the access token's session ``session_id`` belongs to ``user_id`` and its family has not ended.

    One ``_id`` lookup (projected to two fields); runs on every authenticated request."""
    if not session_id:
        return False
    raw = await RefreshSession.get_pymongo_collection().find_one({"_id": session_id},
                                                                  {"user_id": 1, "ended_reason": 1})
    return raw is not None and raw.get("user_id") == user_id and raw.get("ended_reason") is None
