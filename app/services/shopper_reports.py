"""Shopper-behaviour reports for staff: the conversion funnel by day, searches (with and without results),
product interest against purchases, cart abandonment.

Product views come counted (``ProductViewDay``: per shop day and product, the views and the distinct shoppers):
one indexed ``find`` of the days of the range (index ``day``, ISO date strings), refused with a 422
``report-too-large`` past ``REPORTS_MAX_ROWS`` shoppers (a day document without any counts as one). The other
kinds are read like the sales reports (``app/services/reports.py``): one indexed ``find`` per event kind for the buckets
overlapping the UTC instants of the requested shop days (``kind`` + ``start`` < range end + ``end`` >= range
start, index ``kind_start``), keeping the events inside the range, grouped here in Python, refused with a 422
``report-too-large`` past ``REPORTS_MAX_ROWS`` events of a kind.
The embedded server cannot group in the database (a date-range ``$match`` inside ``aggregate`` is wrong and a
compound ``$group`` key does not group; tests/test_db_contract_audit_analytics.py keeps the forms used here). On
real MongoDB the same figures could come from ``$group`` on the shop day.

A **shopper** is the storefront's visitor id, else the account, else (checkouts and payments) the order; a
paid order belongs to the shopper of its checkout (its bucket found by ``orders $in``, index ``orders``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta
from typing import Any

from app.core.clock import ensure_utc
from app.models.analytics import AnalyticsBucket, EventKind, ProductViewDay
from app.models.catalog import Product
from app.models.reports import (
    CartAbandonmentResult,
    FunnelResult,
    FunnelStages,
    ProductInterestResult,
    ProductInterestRow,
    SearchesResult,
    SearchTermStats,
)
from app.schemas.reports import ReportRange
from app.schemas.shopper_reports import LimitedRange
from app.services.analytics_store import shopper_key
from app.services.reports import ReportService, ReportTooLarge

IN_CHUNK = 500  # order ids per $in look-up


def ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


class Stage:
    """Events of one funnel stage: how many, and the distinct shoppers and orders among them."""

    def __init__(self) -> None:
        self.events = 0
        self.shoppers: set[str] = set()
        self.orders: set[str] = set()

    def add(self, key: str | None, order_id: str | None = None) -> None:
        self.events += 1
        if key:
            self.shoppers.add(key)
        if order_id:
            self.orders.add(order_id)

    def add_counted(self, events: int, keys: list[str]) -> None:
        """Add ``events`` events (counted in storage) by the shoppers ``keys``."""
        self.events += events
        self.shoppers.update(keys)


def figures(view: Stage, cart: Stage, checkout: Stage, paid: Stage) -> FunnelStages:
    v, c, k, p = len(view.shoppers), len(cart.shoppers), len(checkout.shoppers), len(paid.shoppers)
    return FunnelStages(viewed=v, added_to_cart=c, checked_out=k, paid=p, product_views=view.events,
                        cart_adds=cart.events, orders_placed=len(checkout.orders), orders_paid=len(paid.orders),
                        view_to_cart=ratio(c, v), cart_to_checkout=ratio(k, c), checkout_to_paid=ratio(p, k),
                        view_to_paid=ratio(p, v))


class ShopperReportService(ReportService):
    async def _events(self, kind: EventKind, start: date, end: date) -> list[dict[str, Any]]:
        """The events of ``kind`` on the shop days ``start..end``: the buckets overlapping the range, then
        their events inside it. Raises ReportTooLarge past ``REPORTS_MAX_ROWS`` events."""
        span = self._utc_range(start, end)
        lo, hi = span["$gte"], span["$lt"]
        cap = self.settings.reports_max_rows
        cursor = AnalyticsBucket.get_pymongo_collection().find(
            {"kind": kind.value, "start": {"$lt": hi}, "end": {"$gte": lo}}, {"events": 1})
        events: list[dict[str, Any]] = []
        async for bucket in cursor:
            events.extend(e for e in bucket["events"] if lo <= ensure_utc(e["at"]) < hi)
            if len(events) > cap:
                raise ReportTooLarge(f"This report would read more than {cap} events; choose a shorter range.",
                                     limit=cap)
        return events

    async def _views(self, start: date, end: date) -> list[dict[str, Any]]:
        """The product-view days (``day``, ``product_id``, ``views``, ``viewers``) of the shop days ``start..end``.
        Raises ReportTooLarge past ``REPORTS_MAX_ROWS`` viewers (a day without any counts as one)."""
        cap = self.settings.reports_max_rows
        cursor = ProductViewDay.get_pymongo_collection().find(
            {"day": {"$gte": start.isoformat(), "$lte": end.isoformat()}},
            {"day": 1, "product_id": 1, "views": 1, "viewers": 1})
        days: list[dict[str, Any]] = []
        rows = 0
        async for doc in cursor:
            days.append(doc)
            rows += max(1, len(doc.get("viewers") or []))
            if rows > cap:
                raise ReportTooLarge(f"This report would read more than {cap} viewers; choose a shorter range.",
                                     limit=cap)
        return days

    async def _paid(self, start: date, end: date) -> list[dict[str, Any]]:
        """Paid events of the range, each with ``key`` = the shopper of its order's checkout."""
        paid = await self._events(EventKind.order_paid, start, end)
        ids = sorted({e["order_id"] for e in paid if e.get("order_id")})
        wanted = set(ids)
        by_order: dict[str, str] = {}
        coll = AnalyticsBucket.get_pymongo_collection()
        for i in range(0, len(ids), IN_CHUNK):
            cursor = coll.find({"kind": EventKind.checkout_start.value, "orders": {"$in": ids[i:i + IN_CHUNK]}},
                               {"events": 1})
            async for bucket in cursor:
                for c in bucket["events"]:
                    key = shopper_key(c)
                    if key and c.get("order_id") in wanted:
                        by_order.setdefault(c["order_id"], key)
        for e in paid:
            e["key"] = by_order.get(e.get("order_id") or "") or shopper_key(e)
        return paid

    async def funnel(self, q: ReportRange) -> FunnelResult:
        days = [q.from_ + timedelta(days=n) for n in range((q.to - q.from_).days + 1)]
        per_day = {d: (Stage(), Stage(), Stage(), Stage()) for d in days}
        total = (Stage(), Stage(), Stage(), Stage())
        for doc in await self._views(q.from_, q.to):
            views, viewers = int(doc.get("views") or 0), doc.get("viewers") or []
            per_day[date.fromisoformat(doc["day"])][0].add_counted(views, viewers)
            total[0].add_counted(views, viewers)
        streams = [
            (1, await self._events(EventKind.cart_add, q.from_, q.to)),
            (2, await self._events(EventKind.checkout_start, q.from_, q.to)),
            (3, await self._paid(q.from_, q.to)),
        ]
        for stage, events in streams:
            for e in events:
                key = e["key"] if "key" in e else shopper_key(e)
                order_id = e.get("order_id")
                per_day[self._shop_day(e["at"])][stage].add(key, order_id)
                total[stage].add(key, order_id)
        return FunnelResult(start=q.from_, end=q.to, time_zone=self.settings.shop_timezone,
                            days=[(d, figures(*per_day[d])) for d in days], totals=figures(*total))

    async def searches(self, q: LimitedRange) -> SearchesResult:
        events = await self._events(EventKind.search, q.from_, q.to)  # in time order within each bucket
        events.sort(key=lambda e: ensure_utc(e["at"]))  # stable: equal instants keep their recorded order
        counts: Counter[str] = Counter()
        empty: Counter[str] = Counter()
        shoppers: dict[str, set[str]] = defaultdict(set)
        empty_shoppers: dict[str, set[str]] = defaultdict(set)
        last: dict[str, int] = {}
        for e in events:
            query, key, results = e.get("query") or "", shopper_key(e), int(e.get("results") or 0)
            counts[query] += 1
            last[query] = results
            if key:
                shoppers[query].add(key)
            if results == 0:
                empty[query] += 1
                if key:
                    empty_shoppers[query].add(key)

        def top(counter: Counter[str], who: dict[str, set[str]]) -> list[SearchTermStats]:
            ranked = sorted(counter, key=lambda t: (-counter[t], t))[:q.limit]
            return [SearchTermStats(query=t, searches=counter[t], shoppers=len(who[t]), last_results=last[t])
                    for t in ranked]

        total, without = sum(counts.values()), sum(empty.values())
        return SearchesResult(start=q.from_, end=q.to, searches=total, searches_without_results=without,
                              no_result_rate=ratio(without, total), top=top(counts, shoppers),
                              without_results=top(empty, empty_shoppers))

    async def product_interest(self, q: LimitedRange) -> ProductInterestResult:
        views: Counter[str] = Counter()
        viewers: dict[str, set[str]] = defaultdict(set)
        for doc in await self._views(q.from_, q.to):
            views[doc["product_id"]] += int(doc.get("views") or 0)
            viewers[doc["product_id"]].update(doc.get("viewers") or [])
        units: Counter[str] = Counter()
        orders: Counter[str] = Counter()
        line_names: dict[str, str] = {}
        for doc in await self._paid_orders(q.from_, q.to, "lines"):
            for pid in {line["product_id"] for line in doc.get("lines") or []}:
                orders[pid] += 1
            for line in doc.get("lines") or []:
                units[line["product_id"]] += int(line.get("quantity") or 0)
                line_names.setdefault(line["product_id"], line.get("product_name") or line["product_id"])
        most_viewed = sorted(views, key=lambda p: (-views[p], p))[:q.limit]
        most_bought = sorted((p for p in units if units[p] > 0), key=lambda p: (-units[p], -orders[p], p))[:q.limit]
        ids = sorted({*most_viewed, *most_bought})
        names = {d["_id"]: d["name"] for d in await Product.get_pymongo_collection().find(
            {"_id": {"$in": ids}}, {"name": 1}).to_list(None)} if ids else {}

        def row(pid: str) -> ProductInterestRow:
            return ProductInterestRow(product_id=pid, name=names.get(pid) or line_names.get(pid) or pid,
                                   views=views[pid], viewers=len(viewers[pid]), units_bought=units[pid],
                                   orders=orders[pid], orders_per_viewer=ratio(orders[pid], len(viewers[pid])))

        return ProductInterestResult(start=q.from_, end=q.to, most_viewed=[row(p) for p in most_viewed],
                                     most_bought=[row(p) for p in most_bought])

    async def cart_abandonment(self, q: ReportRange) -> CartAbandonmentResult:
        carts = {k for e in await self._events(EventKind.cart_add, q.from_, q.to) if (k := shopper_key(e))}
        checkouts = {k for e in await self._events(EventKind.checkout_start, q.from_, q.to)
                     if (k := shopper_key(e))} & carts
        paid = {e["key"] for e in await self._paid(q.from_, q.to) if e["key"]} & carts
        return CartAbandonmentResult(
            start=q.from_, end=q.to, shoppers_with_cart=len(carts), checked_out=len(checkouts), paid=len(paid),
            abandoned=len(carts) - len(paid), abandonment_rate=ratio(len(carts) - len(paid), len(carts)),
            checkout_abandonment_rate=ratio(len(checkouts - paid), len(checkouts)))
