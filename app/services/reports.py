"""Sales, product and customer reports for staff, in the shop's time zone. Each report is a result value of
``app.models.reports``; the router maps it to its response with ``app.schemas.reports``.

Sales, top products and the overview's money figures come from the daily rollups (``sales_days``, one small
document per shop day and currency, kept exactly once per order change by app/services/sales_rollups.py):
a yearly report reads at most 366 documents whatever the shop's volume, so these reports are never refused.
The overview counts orders by status and new accounts with indexed counts (``count_matching``, no rows read).

The customers report needs each customer's orders in the range (repeat customers are not a sum of days), so
it still reads paid orders (``payment_status`` + ``created_at`` range) and accounts, bucketing in Python; one
that would read more than ``REPORTS_MAX_ROWS`` documents is refused with a 422 asking for a shorter range.
The embedded server (nx-27017) cannot bucket by shop day in the database: ``$dateToString`` ignores
``timezone``, a ``$match`` on a date range inside ``aggregate`` is unreliable and ``$group`` on a compound
``_id`` keeps the literal expressions (tests/test_db_contract_reports.py holds the forms used here).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from app.config import Settings
from app.core.clock import ensure_utc, utcnow
from app.core.errors import Unprocessable
from app.core.filters import count_matching
from app.models.order import SETTLED, Order, OrderStatus
from app.models.reports import (
    Bucket,
    CustomersResult,
    Figures,
    Interval,
    OverviewPeriod,
    OverviewResult,
    ProductSales,
    SalesResult,
    TopBy,
    TopProductsResult,
)
from app.models.sales import SalesDay
from app.models.user import Role, User
from app.schemas.reports import BucketedRange, TopProductsQuery
from app.services.inventory import low_stock_report
from app.services.sales_rollups import local_midnight

SETTLED_VALUES = [s.value for s in SETTLED]


class ReportTooLarge(Unprocessable):
    code, title = "report-too-large", "Report too large"


# --- shop days and buckets ------------------------------------------------------------------------------
def bucket_key(day: date, interval: Interval) -> str:
    if interval == Interval.week:
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if interval == Interval.month:
        return f"{day.year}-{day.month:02d}"
    return day.isoformat()


def buckets(start: date, end: date, interval: Interval) -> list[Bucket]:
    """Every bucket touching ``start..end`` (inclusive), clipped to the range, in order."""
    out: list[Bucket] = []
    day = start
    while day <= end:
        key = bucket_key(day, interval)
        if out and out[-1].key == key:
            out[-1] = Bucket(key, out[-1].start, day)
        else:
            out.append(Bucket(key, day, day))
        day += timedelta(days=1)
    return out


def half_up(total: int, count: int) -> int:
    """``total / count`` rounded half up (non-negative integers); 0 when ``count`` is 0."""
    return (2 * total + count) // (2 * count) if count else 0


@dataclass
class Tally:
    gross: int = 0
    refunded: int = 0
    orders: int = 0
    units: int = 0

    def add(self, day: dict[str, Any]) -> None:
        """Add a day's rollup (a ``sales_days`` document)."""
        self.gross += int(day.get("gross") or 0)
        self.refunded += int(day.get("refunded") or 0)
        self.orders += int(day.get("orders") or 0)
        self.units += int(day.get("units") or 0)

    def figures(self) -> Figures:
        return Figures(gross=self.gross, refunded=self.refunded, net=self.gross - self.refunded, orders=self.orders,
                       units=self.units, average_order_value=half_up(self.gross, self.orders))


def customer_key(doc: dict[str, Any]) -> str:
    contact = doc.get("contact") or {}
    if contact.get("user_id"):
        return f"user:{contact['user_id']}"
    return f"email:{str(contact.get('email') or '').strip().lower()}"


class ReportService:
    def __init__(self, settings: Settings, clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.clock = clock
        self.tz = settings.tz

    # --- reading ------------------------------------------------------------------------------------
    def _utc_range(self, start: date, end: date) -> dict[str, datetime]:
        return {"$gte": local_midnight(start, self.tz), "$lt": local_midnight(end + timedelta(days=1), self.tz)}

    def _shop_day(self, instant: datetime) -> date:
        return ensure_utc(instant).astimezone(self.tz).date()

    async def _read(self, document: Any, query: dict[str, Any], fields: Iterable[str]) -> list[dict[str, Any]]:
        cap = self.settings.reports_max_rows
        cursor = document.get_pymongo_collection().find(query, {f: 1 for f in fields}).limit(cap + 1)
        docs: list[dict[str, Any]] = await cursor.to_list(None)
        if len(docs) > cap:
            raise ReportTooLarge(f"This report would read more than {cap} records; choose a shorter range.",
                                 limit=cap)
        return docs

    async def _paid_orders(self, start: date, end: date, *fields: str) -> list[dict[str, Any]]:
        """Paid orders (in the shop's currency) placed on the shop days ``start..end`` (customers report)."""
        query = {"payment_status": {"$in": SETTLED_VALUES}, "created_at": self._utc_range(start, end),
                 "amounts.currency": self.settings.currency}
        return await self._read(Order, query, fields)

    async def _days(self, start: date, end: date, *fields: str) -> list[dict[str, Any]]:
        """The rollups of the shop days ``start..end`` in the shop's currency (days without sales may be missing)."""
        query = {"currency": self.settings.currency, "day": {"$gte": start.isoformat(), "$lte": end.isoformat()}}
        return await SalesDay.get_pymongo_collection().find(query, {f: 1 for f in ("day", *fields)}).to_list(None)

    async def _new_customers(self, start: date, end: date) -> list[date]:
        """The shop day of each customer account created on ``start..end``."""
        docs = await self._read(User, {"role": Role.customer.value, "created_at": self._utc_range(start, end)},
                                ("created_at",))
        return [self._shop_day(d["created_at"]) for d in docs]

    # --- reports --------------------------------------------------------------------------------------
    async def sales(self, q: BucketedRange) -> SalesResult:
        plan = buckets(q.from_, q.to, q.interval)
        tallies = {b.key: Tally() for b in plan}
        total = Tally()
        for doc in await self._days(q.from_, q.to, "gross", "refunded", "orders", "units"):
            tallies[bucket_key(date.fromisoformat(doc["day"]), q.interval)].add(doc)
            total.add(doc)
        return SalesResult(start=q.from_, end=q.to, interval=q.interval, time_zone=self.settings.shop_timezone,
                           currency=self.settings.currency, totals=total.figures(),
                           buckets=[(b, tallies[b.key].figures()) for b in plan])

    async def top_products(self, q: TopProductsQuery) -> TopProductsResult:
        units: Counter[str] = Counter()
        revenue: Counter[str] = Counter()
        orders: Counter[str] = Counter()
        latest: dict[str, str] = {}  # product id -> "<placed at>|<name>" of its most recent order line
        for day in await self._days(q.from_, q.to, "products", "names"):
            for pid, item in (day.get("products") or {}).items():
                units[pid] += int(item.get("units") or 0)
                revenue[pid] += int(item.get("revenue") or 0)
                orders[pid] += int(item.get("orders") or 0)
            for pid, value in (day.get("names") or {}).items():
                latest[pid] = max(latest.get(pid, ""), value)
        sold = [pid for pid in units if orders[pid] > 0]  # a product whose orders all stopped counting is gone
        names = {pid: (latest.get(pid) or f"|{pid}").split("|", 1)[1] for pid in sold}
        first, second = (revenue, units) if q.by == TopBy.revenue else (units, revenue)
        ranked = sorted(sold, key=lambda pid: (-first[pid], -second[pid], names[pid], pid))[:q.limit]
        return TopProductsResult(
            start=q.from_, end=q.to, by=q.by, currency=self.settings.currency,
            items=[ProductSales(product_id=pid, name=names[pid], units=units[pid], revenue=revenue[pid],
                                orders=orders[pid]) for pid in ranked])

    async def customers(self, q: BucketedRange) -> CustomersResult:
        plan = buckets(q.from_, q.to, q.interval)
        registered = Counter(bucket_key(day, q.interval) for day in await self._new_customers(q.from_, q.to))
        per_customer = Counter(customer_key(doc) for doc in await self._paid_orders(q.from_, q.to, "contact"))
        repeat = sum(1 for n in per_customer.values() if n >= 2)
        rate = round(repeat / len(per_customer), 4) if per_customer else 0.0
        return CustomersResult(
            start=q.from_, end=q.to, interval=q.interval, time_zone=self.settings.shop_timezone,
            buckets=[(b, registered[b.key]) for b in plan], new_customers=sum(registered.values()),
            customers=len(per_customer), repeat_customers=repeat, repeat_rate=rate)

    async def overview(self) -> OverviewResult:
        now = ensure_utc(self.clock())
        today = self._shop_day(now)
        starts = {"today": today, "last_7_days": today - timedelta(days=6), "last_30_days": today - timedelta(days=29)}
        oldest = starts["last_30_days"]
        days = await self._days(oldest, today, "gross", "refunded", "orders")
        users = User.get_pymongo_collection()
        orders = Order.get_pymongo_collection()
        windows: dict[str, OverviewPeriod] = {}
        for name, start in starts.items():
            tally = Tally()
            for doc in days:
                if date.fromisoformat(doc["day"]) >= start:
                    tally.add(doc)
            f = tally.figures()
            new = await count_matching(users, {"role": Role.customer.value,
                                               "created_at": self._utc_range(start, today)})
            windows[name] = OverviewPeriod(start=start, end=today, gross=f.gross, refunded=f.refunded, net=f.net,
                                           orders=f.orders, average_order_value=f.average_order_value,
                                           new_customers=new)
        placed = self._utc_range(oldest, today)
        by_status = {s: await count_matching(orders, {"status": s.value, "created_at": placed}) for s in OrderStatus}
        pending = await count_matching(orders, {"status": OrderStatus.pending_payment.value})
        return OverviewResult(
            as_of=now, time_zone=self.settings.shop_timezone, currency=self.settings.currency,
            today=windows["today"], last_7_days=windows["last_7_days"], last_30_days=windows["last_30_days"],
            orders_by_status=by_status, pending_payment=pending, low_stock_sizes=len(await low_stock_report()))
