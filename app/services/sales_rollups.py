"""Daily sales rollups, kept exactly once per order change; sales reports read them instead of orders.

An order's **share** of the rollups (``RollupFigures``) is a pure function of the order: nothing unless its
payment is settled (paid, partially_refunded, refunded); otherwise, on the day document of its shop day
(``created_at`` in ``SHOP_TIMEZONE``) and currency, ``gross`` = amount paid, ``refunded`` = amount refunded,
one order, its units and discount, and per product and category its units, line totals and one order.

Exactly once, without transactions:

1. Every version-guarded write of an order (``app.services.order_events.update_versioned``) calls ``queue``:
   when the write changes the order's share, the **change** (new share minus ``rollup.counted``, with a new
   token) is appended to ``rollup.pending`` and ``counted`` becomes the new share — in the same write as
   the status or payment change, so the change is recorded if and only if the order changed.
2. ``settle`` applies each pending change to its day document with one conditional update:
   ``{_id, applied: {$nin: [token]}, rebuilding: false}`` + ``$inc`` of the figures + ``$addToSet`` of the
   token. A second attempt (a replayed webhook, the background job after a crash, two processes) finds the
   token and changes nothing. Then the applied changes are removed from the order (guarded by
   ``rollup.seq``, so a change queued meanwhile is kept).
3. A crash between 1 and 2 leaves the change pending: ``settle_due`` (a background job) applies it after
   ``ROLLUP_RETRY_SECONDS``. Tokens stay on the day document ``ROLLUP_TOKEN_HOURS`` (far longer than a
   change can stay in flight), then ``prune`` removes them.

Changes commute (each is a difference of shares), so their order does not matter. A webhook replay or a
status change that leaves the share as it is queues nothing and costs no round trip.

``rebuild`` recomputes days from their orders (``amour-florals rollups rebuild``, the migration): it marks the
day documents ``rebuilding`` (changes made meanwhile wait in their orders), rewrites each order's
``counted`` under its version guard (a concurrent write then re-reads it), replaces the day documents with
the sums, and settles what waited. Run it again after changing ``SHOP_TIMEZONE``.

Embedded server (nx-27017) notes: an upsert whose ``$inc`` has dotted paths stores literal ``"a.b"`` keys, so a
day document is created first with ``$setOnInsert`` of its full zeroed shape and the ``$inc`` is a plain update;
a range filter on an array field (``{"applied": {"$lt": x}}``) matches every document, so pruning uses
``$pull`` with the range, which is evaluated correctly; a string ``_id`` that starts with an ISO date and a
separator (``"2030-04-09:USD"``) is stored but never found again, hence ids like ``sd_2030-04-09_USD``
(tests/test_db_contract_rollups.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pymongo import UpdateOne
from ulid import ULID

from app.config import Settings
from app.core.atomic import ensure_document
from app.core.clock import ensure_utc, utcnow
from app.core.ids import new_id
from app.models.order import (
    SETTLED,
    ItemFigures,
    Order,
    OrderLine,
    OrderRollup,
    PaymentStatus,
    RollupDelta,
    RollupFigures,
)
from app.models.sales import SalesDay, parse_sales_day_id, sales_day_id

log = logging.getLogger("app.rollups")

TOKEN_PREFIX = "rlt"
UNCATEGORIZED = "uncategorized"
_SCALARS = ("gross", "refunded", "orders", "units", "discount")
_GROUPS = ("products", "categories")


def local_midnight(day: date, tz: Any) -> datetime:
    """The UTC instant a shop day starts (a midnight skipped by DST starts at the first existing instant)."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


def _iso(instant: datetime) -> str:
    return ensure_utc(instant).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- shares and changes (pure) ------------------------------------------------------------------------------
def share(*, payment_status: PaymentStatus | str, amount_paid: int, amount_refunded: int, currency: str,
          discount: int, created_at: datetime, lines: Iterable[OrderLine], tz: Any) -> RollupFigures | None:
    """One order's share of the rollups (None: it counts nowhere, its payment is not settled)."""
    if PaymentStatus(payment_status) not in SETTLED:
        return None
    placed = ensure_utc(created_at)
    figures = RollupFigures(day_id=sales_day_id(placed.astimezone(tz).date().isoformat(), currency),
                            gross=amount_paid, refunded=amount_refunded, orders=1, discount=discount)
    for line in lines:
        figures.units += line.quantity
        for group, key in (("products", line.product_id), ("categories", line.category_id or UNCATEGORIZED)):
            item = getattr(figures, group).setdefault(key, ItemFigures())
            item.units += line.quantity
            item.revenue += line.line_total
            item.orders = 1
        figures.names[line.product_id] = f"{_iso(placed)}|{line.product_name}"
    return figures


def order_share(order: Order, tz: Any) -> RollupFigures | None:
    return share(payment_status=order.payment_status, amount_paid=order.amount_paid,
                 amount_refunded=order.amount_refunded, currency=order.amounts.currency,
                 discount=order.amounts.discount, created_at=order.created_at, lines=order.lines, tz=tz)


def _scaled(figures: RollupFigures, sign: int) -> RollupFigures:
    out = RollupFigures(day_id=figures.day_id, **{k: sign * getattr(figures, k) for k in _SCALARS})
    for group in _GROUPS:
        setattr(out, group, {key: ItemFigures(units=sign * v.units, revenue=sign * v.revenue, orders=sign * v.orders)
                             for key, v in getattr(figures, group).items()})
    if sign > 0:
        out.names = dict(figures.names)
    return out


def difference(old: RollupFigures | None, new: RollupFigures | None) -> list[RollupFigures]:
    """The changes that turn share ``old`` into share ``new`` (one per day document; none if equal)."""
    if old == new:
        return []
    if old is None or new is None or old.day_id != new.day_id:
        return [d for d in (_scaled(old, -1) if old else None, _scaled(new, 1) if new else None) if d is not None]
    out = RollupFigures(day_id=new.day_id, **{k: getattr(new, k) - getattr(old, k) for k in _SCALARS})
    for group in _GROUPS:
        before, after = getattr(old, group), getattr(new, group)
        for key in before.keys() | after.keys():
            a, b = after.get(key, ItemFigures()), before.get(key, ItemFigures())
            item = ItemFigures(units=a.units - b.units, revenue=a.revenue - b.revenue, orders=a.orders - b.orders)
            if item != ItemFigures():
                getattr(out, group)[key] = item
    out.names = {k: v for k, v in new.names.items() if old.names.get(k) != v}
    return [out]


def _update(figures: RollupFigures, token: str) -> dict[str, Any]:
    """The day document update applying ``figures`` (flat dotted ``$inc`` paths, ``$max`` of names)."""
    inc: dict[str, int] = {k: getattr(figures, k) for k in _SCALARS if getattr(figures, k)}
    for group in _GROUPS:
        for key, item in getattr(figures, group).items():
            for name in ("units", "revenue", "orders"):
                if getattr(item, name):
                    inc[f"{group}.{key}.{name}"] = getattr(item, name)
    update: dict[str, Any] = {"$addToSet": {"applied": token}, "$currentDate": {"updated_at": True}}
    if inc:
        update["$inc"] = inc
    if figures.names:
        update["$max"] = {f"names.{pid}": value for pid, value in figures.names.items()}
    return update


def _zero(day_id: str, time_zone: str) -> dict[str, Any]:
    day, currency = parse_sales_day_id(day_id)
    return {"day": day, "currency": currency, "time_zone": time_zone, **dict.fromkeys(_SCALARS, 0),
            "products": {}, "categories": {}, "names": {}, "applied": [], "rebuilding": False}


def _dump(rollup: OrderRollup) -> dict[str, Any]:
    return rollup.model_dump()


class SalesRollups:
    """Keeps the ``sales_days`` collection (see the module docstring). One per OrderService."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tz = settings.tz

    # --- queueing a change with the order's own write ----------------------------------------------------
    def queue(self, doc: Order, changes: dict[str, Any]) -> dict[str, Any]:
        """``changes`` (the fields an order write sets on ``doc``), plus the order's new ``rollup`` when they
        change its share of the rollups."""
        new = share(payment_status=changes.get("payment_status", doc.payment_status),
                    amount_paid=changes.get("amount_paid", doc.amount_paid),
                    amount_refunded=changes.get("amount_refunded", doc.amount_refunded),
                    currency=doc.amounts.currency, discount=doc.amounts.discount, created_at=doc.created_at,
                    lines=doc.lines, tz=self.tz)
        deltas = difference(doc.rollup.counted, new)
        if not deltas:
            return changes
        pending = [*doc.rollup.pending, *(RollupDelta(token=new_id(TOKEN_PREFIX), figures=d) for d in deltas)]
        rollup = OrderRollup(counted=new, pending=pending, pending_any=True, seq=doc.rollup.seq + 1, since=utcnow())
        return {**changes, "rollup": _dump(rollup)}

    # --- applying ---------------------------------------------------------------------------------------
    async def settle(self, order: Order) -> bool:
        """Apply ``order``'s pending changes (each at most once) and remove them from the order. False when
        some stay pending (their day is being rebuilt): the background job applies them later."""
        done: set[str] = set()
        for delta in order.rollup.pending:
            if await self._apply(delta):
                done.add(delta.token)
        if done:
            await self._forget(order, done)
        return len(done) == len(order.rollup.pending)

    async def _apply(self, delta: RollupDelta) -> bool:
        """Apply one change to its day document; True when it is applied (now or before)."""
        coll = SalesDay.get_pymongo_collection()
        day_id, token = delta.figures.day_id, delta.token
        for _ in range(3):
            res = await coll.update_one({"_id": day_id, "applied": {"$nin": [token]}, "rebuilding": False},
                                        _update(delta.figures, token))
            if res.matched_count == 1:
                return True
            found = await coll.find_one({"_id": day_id}, {"applied": 1, "rebuilding": 1})
            if found is not None and token in (found.get("applied") or []):
                return True  # applied before
            if found is not None and found.get("rebuilding"):
                return False
            if found is None:
                await ensure_document(coll, day_id, _zero(day_id, self.settings.shop_timezone))
        return False

    @staticmethod
    async def _forget(order: Order, done: set[str]) -> None:
        """Remove the applied changes ``done`` from the order, keeping any queued meanwhile (``rollup.seq``)."""
        coll = Order.get_pymongo_collection()
        rollup = order.rollup
        for _ in range(10):
            left = [d for d in rollup.pending if d.token not in done]
            res = await coll.update_one({"_id": order.id, "rollup.seq": rollup.seq},
                                        {"$set": {"rollup.pending": [d.model_dump() for d in left],
                                                  "rollup.pending_any": bool(left)}})
            if res.matched_count == 1:
                return
            raw = await coll.find_one({"_id": order.id}, {"rollup": 1})
            if raw is None:
                return
            rollup = OrderRollup.model_validate(raw.get("rollup") or {})
        log.warning("rollup changes of order %s stay listed as pending; the background job drops them", order.id)

    async def prune(self) -> None:
        """Drop tokens older than ROLLUP_TOKEN_HOURS from every day document."""
        cutoff = utcnow() - timedelta(hours=self.settings.rollup_token_hours)
        oldest = f"{TOKEN_PREFIX}_{str(ULID.from_datetime(cutoff))[:10]}"
        await SalesDay.get_pymongo_collection().update_many({}, {"$pull": {"applied": {"$lt": oldest}}})

    # --- rebuilding ---------------------------------------------------------------------------------------
    async def order_days(self) -> tuple[date, date] | None:
        """The shop days of the first and the last order placed (None without orders)."""
        coll = Order.get_pymongo_collection()
        first = await coll.find_one({}, {"created_at": 1}, sort=[("created_at", 1)])
        last = await coll.find_one({}, {"created_at": 1}, sort=[("created_at", -1)])
        if first is None or last is None:
            return None
        first_day, last_day = (ensure_utc(d["created_at"]).astimezone(self.tz).date() for d in (first, last))
        return first_day, last_day

    async def rebuild(self, start: date, end: date) -> int:
        """Recompute the shop days ``start..end`` (inclusive) from their orders; returns the orders counted.
        Idempotent, safe beside live traffic (see the module docstring)."""
        counted = 0
        day = start
        while day <= end:
            counted += await self._rebuild_day(day)
            day += timedelta(days=1)
        return counted

    async def _rebuild_day(self, day: date) -> int:
        days = SalesDay.get_pymongo_collection()
        orders = Order.get_pymongo_collection()
        window = {"$gte": local_midnight(day, self.tz), "$lt": local_midnight(day + timedelta(days=1), self.tz)}
        currencies = await orders.distinct("amounts.currency", {"created_at": window})
        if not currencies and await days.find_one({"day": day.isoformat()}, {"_id": 1}) is None:
            return 0  # no orders and no rollup: nothing to write
        ids = sorted({sales_day_id(day.isoformat(), c) for c in [self.settings.currency, *currencies]})
        for day_id in ids:
            await ensure_document(days, day_id, _zero(day_id, self.settings.shop_timezone))
        # From here no change is applied to these documents (it waits in its order), so the set of applied
        # tokens is fixed: a pending change whose token is in it is already part of the order's ``counted``.
        await days.update_many({"_id": {"$in": ids}}, {"$set": {"rebuilding": True}})
        applied = {t for d in await days.find({"_id": {"$in": ids}}, {"applied": 1}).to_list(None)
                   for t in d.get("applied") or []}
        fields = {f: 1 for f in ("payment_status", "amount_paid", "amount_refunded", "amounts", "created_at", "lines",
                                 "rollup", "version")}
        stored = {raw["_id"]: raw for raw in await orders.find({"created_at": window}, fields).to_list(None)}
        for _ in range(10):
            wrong = {oid: figures for oid, raw in stored.items()
                     if _rollup(raw).counted != (figures := self._share_of(raw))}
            if not wrong:
                break
            await orders.bulk_write([self._mark(stored[oid], figures) for oid, figures in wrong.items()],
                                    ordered=False)
            # Read them again: a write made meanwhile missed the guard of ours (or ours missed: then redo).
            stored.update({raw["_id"]: raw for raw in await orders.find({"_id": {"$in": sorted(wrong)}},
                                                                        fields).to_list(None)})
        sums: dict[str, RollupFigures] = {}
        count = 0
        for raw in stored.values():
            rollup = _rollup(raw)
            parts = [(1, rollup.counted)] if rollup.counted is not None else []
            parts += [(-1, d.figures) for d in rollup.pending if d.token not in applied and d.figures.day_id in ids]
            for sign, figures in parts:
                sums[figures.day_id] = _add(sums.get(figures.day_id), _scaled(figures, sign))
            count += rollup.counted is not None
        for day_id in ids:
            figures = sums.get(day_id) or RollupFigures(day_id=day_id)
            doc = {**_zero(day_id, self.settings.shop_timezone), **figures.model_dump(exclude={"day_id"}),
                   "applied": sorted(applied), "updated_at": utcnow()}
            await days.replace_one({"_id": day_id}, doc)
        # Changes queued meanwhile (and those pending from before) are owed to the new figures: apply them.
        async for raw in orders.find({"created_at": window, "rollup.pending_any": True}):
            await self.settle(Order.model_validate(raw))
        return count

    def _share_of(self, raw: dict[str, Any]) -> RollupFigures | None:
        amounts = raw.get("amounts") or {}
        return share(payment_status=raw.get("payment_status", "unpaid"), amount_paid=raw.get("amount_paid", 0),
                     amount_refunded=raw.get("amount_refunded", 0), currency=amounts.get("currency", "USD"),
                     discount=amounts.get("discount", 0), created_at=raw["created_at"],
                     lines=[OrderLine.model_validate(x) for x in raw.get("lines") or []], tz=self.tz)

    @staticmethod
    def _mark(raw: dict[str, Any], figures: RollupFigures | None) -> UpdateOne:
        """Correct the order's ``counted`` share under its version guard; the version is bumped so that a write
        prepared before this one misses and computes its change again from the corrected share."""
        guard = {"version": raw["version"]} if "version" in raw else {"version": {"$exists": False}}
        counted = figures.model_dump() if figures is not None else None
        return UpdateOne({"_id": raw["_id"], **guard}, {"$set": {"rollup.counted": counted}, "$inc": {"version": 1}})


def _rollup(raw: dict[str, Any]) -> OrderRollup:
    return OrderRollup.model_validate(raw.get("rollup") or {})


def _add(total: RollupFigures | None, figures: RollupFigures) -> RollupFigures:
    if total is None:
        return figures.model_copy(deep=True)
    for k in _SCALARS:
        setattr(total, k, getattr(total, k) + getattr(figures, k))
    for group in _GROUPS:
        bucket = getattr(total, group)
        for key, item in getattr(figures, group).items():
            have = bucket.setdefault(key, ItemFigures())
            have.units += item.units
            have.revenue += item.revenue
            have.orders += item.orders
    for pid, value in figures.names.items():
        total.names[pid] = max(total.names.get(pid, ""), value)
    return total
