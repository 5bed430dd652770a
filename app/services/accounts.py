"""The signed-in customer's profile, addresses and account deletion; admin user management."""

from __future__ import annotations

import re
from typing import Any

from app.core.clock import utcnow
from app.core.errors import Conflict, NotFound
from app.core.filters import count_matching
from app.core.pagination import PageParams, paginate
from app.core.versioned import update_versioned
from app.models.user import Address, Preferences, Role, User
from app.schemas.users import AddressIn, AddressPatch, ProfilePatch, UserOut, user_out
from app.services.auth import AuthService
from app.services.email import cancel_marketing_to
from app.services.newsletter import NewsletterService

MAX_ADDRESSES = 20


async def profiles(users: list[User]) -> list[UserOut]:
    """The API view of each of ``users``, with its newsletter preference read from the subscriptions (one
    ``$in`` read for them all)."""
    states = await NewsletterService.states([u.email for u in users])
    return [user_out(u, states[u.email].value if u.email in states else None) for u in users]


async def profile(user: User) -> UserOut:
    """The API view of one user (see ``profiles``)."""
    return (await profiles([user]))[0]


class AccountService:
    def __init__(self, auth: AuthService) -> None:
        self.auth = auth
        self.newsletter = NewsletterService(auth.settings, auth.email)

    async def update_profile(self, user: User, patch: ProfilePatch) -> User:
        """Names, phone and preferences; ``preferences.newsletter`` goes to the newsletter subscription."""
        changes = patch.model_dump(exclude_unset=True, exclude={"preferences"})
        if patch.preferences is not None:
            wanted = patch.preferences.model_dump(exclude_unset=True)
            newsletter = wanted.pop("newsletter", None)
            if newsletter is not None:
                await self.newsletter.set_for_account(user, newsletter)
            if wanted:
                prefs = user.preferences.model_dump()
                prefs.update(wanted)
                changes["preferences"] = Preferences.model_validate(prefs).model_dump()
        if changes:
            changes["updated_at"] = utcnow()
            await User.find_one(User.id == user.id).update({"$set": changes})
        return await User.get(user.id)  # type: ignore[return-value]  # just updated: it exists

    async def delete_account(self, user: User, password: str) -> None:
        """Anonymize personal data, keep order records (they reference the id), end every session."""
        await self.auth.verify_password_or_fail(user, password)
        if user.role == Role.admin:
            await set_keeping_an_admin(user, {"is_active": False})
        await self.newsletter.forget(user.email)  # the consent record goes with the address
        await User.find_one(User.id == user.id).update({"$set": {
            "email": f"deleted+{user.id.lower()}@invalid.amourflorals.com",
            "first_name": "Deleted", "last_name": "User", "phone": None, "password_hash": None,
            "addresses": [], "favorites": [], "preferences": Preferences().model_dump(),
            "is_active": False, "deleted_at": utcnow(), "updated_at": utcnow(),
        }, "$inc": {"version": 1}})
        await self.auth.logout_all(user, reason="account-deleted")

    # --- addresses: the array is rewritten whole under the version guard ---------------------------
    async def add_address(self, user: User, data: AddressIn) -> Address:
        new = Address(**data.model_dump())

        def mutate(doc: User) -> dict[str, Any]:
            if len(doc.addresses) >= MAX_ADDRESSES:
                raise Conflict(f"An account can keep at most {MAX_ADDRESSES} addresses.", code="too-many-addresses")
            addresses = [*doc.addresses, new]
            return {"addresses": _with_default(addresses, new.id if new.is_default else None)}

        doc = await update_versioned(User, user.id, mutate)
        return _find(doc, new.id)

    async def update_address(self, user: User, address_id: str, patch: AddressPatch) -> Address:
        fields = patch.model_dump(exclude_unset=True)

        def mutate(doc: User) -> dict[str, Any]:
            current = _find(doc, address_id)
            updated = current.model_copy(update=fields)
            addresses = [updated if a.id == address_id else a for a in doc.addresses]
            make_default = address_id if fields.get("is_default") else None
            if fields.get("is_default") is False and current.is_default:
                make_default = None
            return {"addresses": _with_default(addresses, make_default)}

        doc = await update_versioned(User, user.id, mutate)
        return _find(doc, address_id)

    async def delete_address(self, user: User, address_id: str) -> None:
        def mutate(doc: User) -> dict[str, Any]:
            _find(doc, address_id)
            return {"addresses": _with_default([a for a in doc.addresses if a.id != address_id], None)}

        await update_versioned(User, user.id, mutate)

    @staticmethod
    def get_address(user: User, address_id: str) -> Address:
        return _find(user, address_id)


def _find(user: User, address_id: str) -> Address:
    for a in user.addresses:
        if a.id == address_id:
            return a
    raise NotFound("No such address in your account.")


def _with_default(addresses: list[Address], default_id: str | None) -> list[dict[str, Any]]:
    """Exactly one default while any address exists: the named one, else the current one, else the first."""
    if default_id is None:
        current = [a.id for a in addresses if a.is_default]
        default_id = current[0] if current else (addresses[0].id if addresses else None)
    return [a.model_copy(update={"is_default": a.id == default_id}).model_dump() for a in addresses]


async def ensure_another_active_admin(user_id: str) -> None:
    others = await count_matching(User.get_pymongo_collection(),
                                  {"role": Role.admin.value, "is_active": True, "_id": {"$ne": user_id}}, limit=1)
    if others == 0:
        raise Conflict("This is the last active administrator.", code="last-admin")


async def set_keeping_an_admin(user: User, changes: dict[str, Any]) -> None:
    """Write ``changes`` that may take ``user``'s admin rights away, then undo them (409) if no active admin
    is left. Checking after the write is what stops two admins demoting each other at the same moment."""
    await ensure_another_active_admin(user.id)  # the common case, refused before writing anything
    await User.find_one(User.id == user.id).update({"$set": changes})
    if await count_matching(User.get_pymongo_collection(), {"role": Role.admin.value, "is_active": True},
                            limit=1) == 0:
        guarded: dict[str, Any] = {k: changes[k] for k in ("role", "is_active") if k in changes}
        undo = {"role": user.role.value, "is_active": user.is_active}
        await User.get_pymongo_collection().update_one({"_id": user.id, **guarded},
                                                       {"$set": {k: undo[k] for k in guarded}})
        raise Conflict("This is the last active administrator.", code="last-admin")


class UserAdminService:
    def __init__(self, auth: AuthService) -> None:
        self.auth = auth

    async def list(self, params: PageParams, *, q: str | None, role: Role | None, active: bool | None
                   ) -> tuple[list[User], str | None, int | None]:
        query: dict[str, Any] = {}
        if role is not None:
            query["role"] = role.value
        if active is not None:
            query["is_active"] = active
        if q:
            pattern = re.escape(q.strip().lower())
            query["$or"] = [{"email": {"$regex": pattern}},
                            {"first_name": {"$regex": pattern, "$options": "i"}},
                            {"last_name": {"$regex": pattern, "$options": "i"}}]
        return await paginate(User, query, [("_id", -1)], params, total=True)

    async def get(self, user_id: str) -> User:
        user = await User.get(user_id)
        if user is None:
            raise NotFound("No such user.")
        return user

    async def update(self, actor: User, user_id: str, role: Role | None, is_active: bool | None) -> User:
        target = await self.get(user_id)
        demoting = role is not None and role != Role.admin and target.role == Role.admin
        deactivating = is_active is False and target.is_active and target.role == Role.admin
        changes: dict[str, Any] = {}
        if role is not None and role != target.role:
            changes["role"] = role.value
        if is_active is not None and is_active != target.is_active:
            changes["is_active"] = is_active
        if not changes:
            return target
        changes["updated_at"] = utcnow()
        if demoting or deactivating:
            await set_keeping_an_admin(target, changes)
        else:
            await User.find_one(User.id == target.id).update({"$set": changes})
        if "role" in changes or changes.get("is_active") is False:
            # Tokens carry the role; make the user sign in again to get the new one.
            await self.auth.logout_all(target, reason="admin-change")
        if changes.get("is_active") is False:
            await cancel_marketing_to(target.email)  # no marketing reaches a deactivated account
        return await self.get(target.id)
