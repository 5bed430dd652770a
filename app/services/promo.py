"""Promo codes: admin CRUD, evaluation against a cart, and uses taken/given back atomically.

A use is taken like stock: the total counter ``uses`` is raised only under ``uses < usage_limit``, the
per-customer counter (its own document) only under ``used < per_customer_limit``, and a redemption record
keyed by the order id makes taking idempotent and giving back exactly-once.
"""

from __future__ import annotations

import builtins  # builtins.list: in the service class the method ``list`` shadows the type
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from app.config import Settings
from app.core.atomic import ensure_document
from app.core.clock import utcnow
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.money import money
from app.core.pagination import PageParams, paginate
from app.core.versioned import update_versioned
from app.models.cart_pricing import AppliedPromo, PromoLine
from app.models.catalog import Category
from app.models.promo import PromoCode, PromoCustomerUses, PromoKind, PromoRedemption, RedemptionStatus
from app.schemas.promo import PromoIn, PromoPatch

__all__ = ["PromoService"]

Clock = Callable[[], datetime]
_CODE_RE = re.compile(r"^[A-Z0-9_-]{1,32}$")


def percent_of(amount: int, bps: int) -> int:
    """``amount * bps / 10000`` in integer cents, rounded half up (amount, bps >= 0)."""
    return (amount * bps + 5_000) // 10_000


def customer_key(user_id: str | None, email: str | None) -> str | None:
    """Per-customer limits count by email (so a guest and an account with the same email share them)."""
    if email:
        return "email:" + email.strip().lower()
    return f"user:{user_id}" if user_id else None


def normalize_code(code: str) -> str:
    return code.strip().upper()


class PromoService:
    def __init__(self, settings: Settings, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.clock = clock

    # --- admin ----------------------------------------------------------------------------------
    async def list(self, params: PageParams, *, active: bool | None, q: str | None
                   ) -> tuple[builtins.list[PromoCode], str | None, int | None]:
        query: dict[str, Any] = {}
        if active is not None:
            query["active"] = active
        if q:
            query["code"] = {"$regex": "^" + re.escape(normalize_code(q))}
        return await paginate(PromoCode, query, [("_id", -1)], params, total=True)

    async def get(self, promo_id: str) -> PromoCode:
        promo = await PromoCode.get(promo_id)
        if promo is None:
            raise NotFound("No such promo code.")
        return promo

    async def create(self, data: PromoIn) -> PromoCode:
        fields = self._storage_fields(data.model_dump(exclude_unset=True))
        promo = PromoCode(**fields)
        self._check_rules(promo)
        await self._check_categories(promo.category_ids)
        try:
            await promo.insert()
        except DuplicateKeyError:
            raise Conflict(f"The code {promo.code} already exists.", code="promo-code-taken") from None
        return promo

    async def update(self, promo_id: str, patch: PromoPatch) -> PromoCode:
        current = await self.get(promo_id)
        changes = self._storage_fields(patch.model_dump(exclude_unset=True))
        if not changes:
            return current
        merged = current.model_copy(update=changes)
        if "kind" in changes:  # a new kind drops the other kind's value unless given
            if merged.kind != PromoKind.percentage and "percent_bps" not in changes:
                merged.percent_bps = changes["percent_bps"] = None
            if merged.kind != PromoKind.fixed and "amount" not in changes:
                merged.amount = changes["amount"] = None
        self._check_rules(merged)
        if "category_ids" in changes:
            await self._check_categories(merged.category_ids)
        changes["updated_at"] = self.clock()
        try:
            # A use taken meanwhile bumps `version` too, so the replace never overwrites the counter.
            await update_versioned(PromoCode, promo_id, lambda _: changes, replace=True)
        except DuplicateKeyError:
            raise Conflict(f"The code {merged.code} already exists.", code="promo-code-taken") from None
        return await self.get(promo_id)

    async def delete(self, promo_id: str) -> None:
        promo = await self.get(promo_id)
        res = await PromoCode.get_pymongo_collection().delete_one({"_id": promo.id, "uses": 0})
        if res.deleted_count != 1:
            raise Conflict("This code has been used; deactivate it instead.", code="promo-in-use")

    @staticmethod
    def _storage_fields(data: dict[str, Any]) -> dict[str, Any]:
        if "percent" in data:
            percent = data.pop("percent")
            if percent is not None:
                data["percent_bps"] = percent * 100
        for name, empty in (("min_subtotal", 0), ("category_ids", []), ("active", True)):
            if name in data and data[name] is None:
                data[name] = empty
        return data

    @staticmethod
    def _check_rules(p: PromoCode) -> None:
        if p.kind == PromoKind.percentage and p.percent_bps is None:
            raise Unprocessable("A percentage code needs percent or percent_bps.", code="promo-invalid")
        if p.kind == PromoKind.fixed and p.amount is None:
            raise Unprocessable("A fixed code needs an amount in cents.", code="promo-invalid")
        if p.kind != PromoKind.percentage and p.percent_bps is not None:
            raise Unprocessable("Only a percentage code takes a percent.", code="promo-invalid")
        if p.kind != PromoKind.fixed and p.amount is not None:
            raise Unprocessable("Only a fixed code takes an amount.", code="promo-invalid")
        if p.valid_from and p.valid_until and p.valid_from >= p.valid_until:
            raise Unprocessable("valid_from must be before valid_until.", code="promo-invalid")

    @staticmethod
    async def _check_categories(ids: builtins.list[str]) -> None:
        if not ids:
            return
        found = {c.id for c in await Category.find({"_id": {"$in": ids}}).to_list()}
        missing = [i for i in ids if i not in found]
        if missing:
            raise Unprocessable(f"Unknown categories: {', '.join(missing)}.", code="unknown-category")

    # --- evaluation -----------------------------------------------------------------------------
    async def _find(self, code: str) -> PromoCode:
        normalized = normalize_code(code)
        promo = await PromoCode.find_one(PromoCode.code == normalized) if _CODE_RE.match(normalized) else None
        if promo is None or not promo.active:
            raise Unprocessable("This promo code does not exist.", code="promo-not-found")
        return promo

    def _check_window(self, promo: PromoCode) -> None:
        now = self.clock()
        if promo.valid_from and now < promo.valid_from:
            raise Unprocessable(f"This code is valid from {promo.valid_from.isoformat()}.", code="promo-not-started",
                                valid_from=promo.valid_from.isoformat())
        if promo.valid_until and now >= promo.valid_until:
            raise Unprocessable("This code has expired.", code="promo-expired")

    async def evaluate(self, code: str, *, subtotal: int, lines: builtins.list[PromoLine], user_id: str | None,
                       email: str | None) -> AppliedPromo:
        """The discount ``code`` gives on these lines now, or Unprocessable with the reason code."""
        promo = await self._find(code)
        self._check_window(promo)
        if promo.usage_limit is not None and promo.uses >= promo.usage_limit:
            raise Unprocessable("This code has been used up.", code="promo-used-up")
        key = customer_key(user_id, email)
        if promo.per_customer_limit is not None and key:
            used = await PromoCustomerUses.get(f"{promo.id}:{key}")
            if used is not None and used.used >= promo.per_customer_limit:
                raise Unprocessable("You have already used this code as often as it allows.",
                                    code="promo-customer-limit", limit=promo.per_customer_limit)
        if subtotal < promo.min_subtotal:
            raise Unprocessable(f"This code needs a subtotal of at least "
                                f"{money(promo.min_subtotal, self.settings.currency)}.",
                                code="promo-min-subtotal", min_subtotal=promo.min_subtotal)
        eligible = subtotal
        if promo.category_ids:
            wanted = set(promo.category_ids)
            eligible = sum(line.line_total for line in lines if wanted.intersection(line.category_path))
            if eligible <= 0:
                raise Unprocessable("This code does not apply to anything in your cart.", code="promo-not-applicable")
        discount = 0
        if promo.kind == PromoKind.percentage:
            discount = percent_of(eligible, promo.percent_bps or 0)
        elif promo.kind == PromoKind.fixed:
            discount = promo.amount or 0
        discount = min(discount, eligible, promo.max_discount if promo.max_discount is not None else discount)
        return AppliedPromo(code=promo.code, discount=max(0, discount),
                            free_delivery=promo.kind == PromoKind.free_delivery, kind=promo.kind,
                            description=promo.description)

    # --- uses -----------------------------------------------------------------------------------
    async def take_use(self, code: str, *, order_id: str, user_id: str | None, email: str | None) -> None:
        """Take one use of ``code`` for ``order_id``: the last use cannot be taken twice, the per-customer
        limit holds under concurrency, and a second call for the same order changes nothing.
        Conflict(code="promo-used-up" | "promo-customer-limit"); Unprocessable when the code is gone or expired."""
        existing = await PromoRedemption.get(order_id)
        if existing is not None:
            return self._same_redemption(existing, code)
        try:
            await self._take(code, order_id, user_id, email)
        except Conflict:
            existing = await PromoRedemption.get(order_id)  # a concurrent call for this order took it
            if existing is None:
                raise
            self._same_redemption(existing, code)

    async def _take(self, code: str, order_id: str, user_id: str | None, email: str | None) -> None:
        promo = await self._take_total(code)
        key = customer_key(user_id, email)
        counter_id = f"{promo.id}:{key}" if key else None
        if counter_id:
            counters = PromoCustomerUses.get_pymongo_collection()
            await ensure_document(counters, counter_id, {"promo_id": promo.id, "used": 0})
            flt: dict[str, Any] = {"_id": counter_id}
            if promo.per_customer_limit is not None:
                flt["used"] = {"$lt": promo.per_customer_limit}
            res = await counters.update_one(flt, {"$inc": {"used": 1}})
            if res.modified_count != 1:
                await self._undo(promo.id, None)
                raise Conflict("You have already used this code as often as it allows.", code="promo-customer-limit")
        try:
            await PromoRedemption(id=order_id, promo_id=promo.id, code=promo.code, customer_key=key).insert()
        except DuplicateKeyError:  # a concurrent call for the same order recorded it first
            await self._undo(promo.id, counter_id)
            existing = await PromoRedemption.get(order_id)
            if existing is not None:
                return self._same_redemption(existing, code)

    async def _take_total(self, code: str) -> PromoCode:
        coll = PromoCode.get_pymongo_collection()
        for _ in range(10):
            promo = await self._find(code)
            self._check_window(promo)
            # The limit read is part of the filter: if an admin changes it meanwhile, we miss and reload.
            flt: dict[str, Any] = {"_id": promo.id, "active": True, "usage_limit": promo.usage_limit}
            if promo.usage_limit is not None:
                flt["uses"] = {"$lt": promo.usage_limit}
            res = await coll.update_one(flt, {"$inc": {"uses": 1, "version": 1}})
            if res.modified_count == 1:
                return promo
            fresh = await coll.find_one({"_id": promo.id})
            if fresh is not None and fresh.get("active") and fresh.get("usage_limit") == promo.usage_limit:
                break
        raise Conflict("This code has just been used up.", code="promo-used-up")

    @staticmethod
    def _same_redemption(existing: PromoRedemption, code: str) -> None:
        if existing.status == RedemptionStatus.taken and existing.code == normalize_code(code):
            return
        raise Conflict("This order already took (or gave back) a promo code use.", code="promo-order-conflict")

    @staticmethod
    async def _undo(promo_id: str, counter_id: str | None) -> None:
        await PromoCode.get_pymongo_collection().update_one({"_id": promo_id, "uses": {"$gt": 0}},
                                                            {"$inc": {"uses": -1, "version": 1}})
        if counter_id:
            await PromoCustomerUses.get_pymongo_collection().update_one(
                {"_id": counter_id, "used": {"$gt": 0}}, {"$inc": {"used": -1}})

    async def give_back(self, order_id: str) -> None:
        """Return the use ``order_id`` took, exactly once (a repeat or concurrent call does nothing)."""
        raw = await PromoRedemption.get_pymongo_collection().find_one_and_update(
            {"_id": order_id, "status": RedemptionStatus.taken.value},
            {"$set": {"status": RedemptionStatus.released.value}, "$currentDate": {"released_at": True}},
        )
        if raw is None:
            return
        key = raw.get("customer_key")
        await self._undo(raw["promo_id"], f"{raw['promo_id']}:{key}" if key else None)
