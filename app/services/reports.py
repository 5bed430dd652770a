"""Sales, product and customer reports for staff, in the shop's time zone.

How the figures are read: one indexed ``find`` per report over the UTC instants of the requested shop
days (``payment_status`` + ``created_at`` range), projecting whole top-level fields; bucketing and sums
happen here in Python. The embedded server (nx-27017) cannot do it in the database: ``$dateToString``
ignores ``timezone``, a ``$match`` on a date range inside ``aggregate`` matches nothing (and ``$gte`` on a
date matches wrongly), and ``$group`` on a compound ``_id`` keeps the literal expressions
(tests/test_db_contract_reports.py holds the forms used here). That is fine for a shop's volume and is
bounded: a report that would read more than ``REPORTS_MAX_ROWS`` documents is refused with a 422 asking
for a shorter range. On real MongoDB this could become one ``$group`` on ``$dateToString`` with the zone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from app.config import Settings
from app.core.clock import ensure_utc, utcnow
from app.core.errors import Unprocessable
from app.core.filters import count_matching
from app.models.order import Order, OrderStatus
from app.models.user import Role, User
from app.schemas.reports import (
    BucketedRange,
    CustomerBucket,
    CustomersReport,
    CustomerTotals,
    Interval,
    Overview,
    OverviewWindow,
    SalesBucket,
    SalesFigures,
    SalesReport,
    TopBy,
    TopProduct,
    TopProductsQuery,
    TopProductsReport,
)
from app.services.inventory import low_stock_report
from app.services.orders import SETTLED

SETTLED_VALUES = [s.value for s in SETTLED]


class ReportTooLarge(Unprocessable):
    code, title = "report-too-large", "Report too large"


# --- shop days and buckets ------------------------------------------------------------------------------
def local_midnight(day: date, tz: Any) -> datetime:
    """The UTC instant a shop day starts (a midnight skipped by DST starts at the first existing instant)."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


def bucket_key(day: date, interval: Interval) -> str:
    if interval == Interval.week:
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if interval == Interval.month:
        return f"{day.year}-{day.month:02d}"
    return day.isoformat()


@dataclass(frozen=True)
class Bucket:
    key: str
    start: date
    end: date


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

    def add(self, doc: dict[str, Any]) -> None:
        self.gross += int(doc.get("amount_paid") or 0)
        self.refunded += int(doc.get("amount_refunded") or 0)
        self.orders += 1
        self.units += sum(int(line.get("quantity") or 0) for line in doc.get("lines") or [])

    def figures(self) -> dict[str, int]:
        return {"gross": self.gross, "refunded": self.refunded, "net": self.gross - self.refunded,
                "orders": self.orders, "units": self.units, "average_order_value": half_up(self.gross, self.orders)}


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
        docs = await cursor.to_list(None)
        if len(docs) > cap:
            raise ReportTooLarge(f"This report would read more than {cap} records; choose a shorter range.",
                                 limit=cap)
        return docs

    async def _paid_orders(self, start: date, end: date, *fields: str) -> list[dict[str, Any]]:
        """Paid orders (in the shop's currency) placed on the shop days ``start..end``."""
        query = {"payment_status": {"$in": SETTLED_VALUES}, "created_at": self._utc_range(start, end),
                 "amounts.currency": self.settings.currency}
        return await self._read(Order, query, ("created_at", "amount_paid", "amount_refunded", *fields))

    async def _new_customers(self, start: date, end: date) -> list[date]:
        """The shop day of each customer account created on ``start..end``."""
        docs = await self._read(User, {"role": Role.customer.value, "created_at": self._utc_range(start, end)},
                                ("created_at",))
        return [self._shop_day(d["created_at"]) for d in docs]

    # --- reports --------------------------------------------------------------------------------------
    async def sales(self, q: BucketedRange) -> SalesReport:
        plan = buckets(q.from_, q.to, q.interval)
        tallies = {b.key: Tally() for b in plan}
        total = Tally()
        for doc in await self._paid_orders(q.from_, q.to, "lines"):
            tallies[bucket_key(self._shop_day(doc["created_at"]), q.interval)].add(doc)
            total.add(doc)
        return SalesReport(
            from_=q.from_, to=q.to, interval=q.interval, time_zone=self.settings.shop_timezone,
            currency=self.settings.currency, totals=SalesFigures(**total.figures()),
            buckets=[SalesBucket(key=b.key, start=b.start, end=b.end, **tallies[b.key].figures()) for b in plan])

    async def top_products(self, q: TopProductsQuery) -> TopProductsReport:
        units: Counter[str] = Counter()
        revenue: Counter[str] = Counter()
        orders: Counter[str] = Counter()
        names: dict[str, tuple[datetime, str]] = {}
        for doc in await self._paid_orders(q.from_, q.to, "lines"):
            placed = ensure_utc(doc["created_at"])
            for product_id in {line["product_id"] for line in doc.get("lines") or []}:
                orders[product_id] += 1
            for line in doc.get("lines") or []:
                pid = line["product_id"]
                units[pid] += int(line.get("quantity") or 0)
                revenue[pid] += int(line.get("line_total") or 0)
                if pid not in names or placed >= names[pid][0]:
                    names[pid] = (placed, line.get("product_name") or pid)
        first, second = (revenue, units) if q.by == TopBy.revenue else (units, revenue)
        ranked = sorted(units, key=lambda pid: (-first[pid], -second[pid], names[pid][1], pid))[:q.limit]
        return TopProductsReport(
            from_=q.from_, to=q.to, by=q.by, currency=self.settings.currency,
            items=[TopProduct(product_id=pid, name=names[pid][1], units=units[pid], revenue=revenue[pid],
                              orders=orders[pid]) for pid in ranked])

    async def customers(self, q: BucketedRange) -> CustomersReport:
        plan = buckets(q.from_, q.to, q.interval)
        registered = Counter(bucket_key(day, q.interval) for day in await self._new_customers(q.from_, q.to))
        per_customer = Counter(customer_key(doc) for doc in await self._paid_orders(q.from_, q.to, "contact"))
        repeat = sum(1 for n in per_customer.values() if n >= 2)
        rate = round(repeat / len(per_customer), 4) if per_customer else 0.0
        return CustomersReport(
            from_=q.from_, to=q.to, interval=q.interval, time_zone=self.settings.shop_timezone,
            buckets=[CustomerBucket(key=b.key, start=b.start, end=b.end, new_customers=registered[b.key])
                     for b in plan],
            totals=CustomerTotals(new_customers=sum(registered.values()), customers=len(per_customer),
                                  repeat_customers=repeat, repeat_rate=rate))

    async def overview(self) -> Overview:
        now = ensure_utc(self.clock())
        today = self._shop_day(now)
        starts = {"today": today, "last_7_days": today - timedelta(days=6), "last_30_days": today - timedelta(days=29)}
        oldest = starts["last_30_days"]
        placed = await self._read(Order, {"created_at": self._utc_range(oldest, today)},
                                  ("created_at", "status", "payment_status", "amount_paid", "amount_refunded",
                                   "amounts"))
        registrations = await self._new_customers(oldest, today)
        windows = {}
        for name, start in starts.items():
            tally = Tally()
            for doc in placed:
                if (doc.get("payment_status") in SETTLED_VALUES
                        and (doc.get("amounts") or {}).get("currency") == self.settings.currency
                        and self._shop_day(doc["created_at"]) >= start):
                    tally.add(doc)
            figures = tally.figures()
            figures.pop("units")
            windows[name] = OverviewWindow(from_=start, to=today, new_customers=sum(d >= start for d in registrations),
                                           **figures)
        by_status = Counter(doc.get("status") for doc in placed)
        pending = await count_matching(Order.get_pymongo_collection(), {"status": OrderStatus.pending_payment.value})
        return Overview(
            as_of=now, time_zone=self.settings.shop_timezone, currency=self.settings.currency, **windows,
            orders_by_status={s: by_status.get(s.value, 0) for s in OrderStatus},
            pending_payment=pending, low_stock_sizes=len(await low_stock_report()))
