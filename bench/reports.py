"""A yearly sales report before and after the daily rollups, in process, on one embedded database.

    .venv/bin/python bench/reports.py [--orders 100000] [--rounds 1]

Seeds ``--orders`` paid orders (two lines each, 40 products, 500 customers) spread over a year, builds the
rollups from them with ``SalesRollups.rebuild`` (what the migration and ``amour-florals rollups rebuild``
run; timed), then per round times:
(a) before   the read the sales report made before the rollups: every paid order of the range (its filter
             and projection, as app/services/reports.py issued it), bucketed by shop day in Python
(b) sales    ReportService.sales over the 366-day range, daily buckets, from the rollups
(c) top      ReportService.top_products over the same range, from the rollups
and counts the documents each reads (a PyMongo command listener sums the documents returned).
Prints median seconds and documents read per side. The embedded server is not a database benchmark; the
documents read are what any database would have to return.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import monitoring

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.embedded_mongo import EmbeddedMongo  # noqa: E402
from bench.summary import result  # noqa: E402

DB = "bench_reports"
FIRST = date(2030, 1, 1)


class DocumentsRead(monitoring.CommandListener):
    """Sums the documents returned by find/getMore replies (firstBatch + nextBatch)."""

    def __init__(self) -> None:
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        cursor = event.reply.get("cursor") if isinstance(event.reply, dict) else None
        if cursor:
            self.count += len(cursor.get("firstBatch") or cursor.get("nextBatch") or [])

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


READ = DocumentsRead()
monitoring.register(READ)


def order_doc(i: int, n: int, new_id: Any) -> dict[str, Any]:
    """The ``i``-th of ``n`` orders placed evenly over 2030 (UTC)."""
    at = datetime(2030, 1, 1, 5, tzinfo=UTC) + timedelta(seconds=(i * 365 * 86_400) // n)
    lines = [{"product_id": f"prd_{i % 40:03d}", "product_name": f"Bouquet {i % 40}", "product_slug": "b",
              "size": "standard", "size_name": "Standard", "add_ons": [], "unit_price": 4500, "quantity": 1 + i % 3,
              "line_total": 4500 * (1 + i % 3), "category_id": f"cat_{i % 5}"},
             {"product_id": f"prd_{(i * 7) % 40:03d}", "product_name": "Vase", "product_slug": "v", "size": "standard",
              "size_name": "Standard", "add_ons": [], "unit_price": 1500, "quantity": 1, "line_total": 1500}]
    total = sum(ln["line_total"] for ln in lines) + 1200
    refunded = 1000 if i % 17 == 0 else 0
    return {"_id": new_id("ord"), "number": f"AF-{20000 + i}", "status": "delivered",
            "payment_status": "partially_refunded" if refunded else "paid", "version": 3,
            "amount_paid": total, "amount_refunded": refunded, "lines": lines, "created_at": at,
            "amounts": {"subtotal": total - 1200, "discount": 0, "delivery_fee": 1200, "total": total,
                        "currency": "USD"},
            "contact": {"user_id": f"usr_{i % 500:04d}", "email": f"c{i % 500}@example.com"}}


async def timed(fn: Any) -> tuple[float, int]:
    READ.count = 0
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start, READ.count


async def main(orders: int, rounds: int) -> None:
    from app.config import Settings
    from app.core.ids import new_id
    from app.models.db import connect
    from app.models.order import Order
    from app.schemas.reports import BucketedRange, TopProductsQuery
    from app.services.reports import SETTLED_VALUES, ReportService
    from app.services.sales_rollups import SalesRollups

    server = EmbeddedMongo(None)
    server.start()
    try:
        settings = Settings(_env_file=None, mongodb_db=DB)
        client = await connect(settings, server.url)
        coll = Order.get_pymongo_collection()
        t = time.perf_counter()
        for start in range(0, orders, 1000):
            await coll.insert_many([order_doc(i, orders, new_id) for i in range(start, min(orders, start + 1000))])
        seeded = time.perf_counter() - t
        last = FIRST + timedelta(days=365)
        t = time.perf_counter()
        counted = await SalesRollups(settings).rebuild(FIRST - timedelta(days=1), last)
        rebuilt = time.perf_counter() - t
        assert counted == orders, counted

        service = ReportService(settings)
        span = {"from": FIRST.isoformat(), "to": last.isoformat()}
        q = BucketedRange.model_validate(span)
        top = TopProductsQuery.model_validate(span)
        report = await service.sales(q)
        assert report.totals.orders == orders, report.totals

        async def before() -> None:
            """The sales report as it was: every paid order of the range read and bucketed in Python."""
            query = {"payment_status": {"$in": SETTLED_VALUES}, "created_at": service._utc_range(q.from_, q.to),
                     "amounts.currency": "USD"}
            fields = {"created_at": 1, "amount_paid": 1, "amount_refunded": 1, "lines": 1}
            gross: Counter[date] = Counter()
            async for doc in coll.find(query, fields):
                gross[service._shop_day(doc["created_at"])] += doc["amount_paid"]
            assert sum(gross.values()) == report.totals.gross

        sides = {"before (orders)": before, "sales (rollups)": lambda: service.sales(q),
                 "top (rollups)": lambda: service.top_products(top)}
        results: dict[str, list[tuple[float, int]]] = {k: [] for k in sides}
        for _ in range(rounds):
            for name, fn in sides.items():
                results[name].append(await timed(fn))
        print(f"{orders} paid orders over a year; seeded in {seeded:.0f} s; rollups built (rebuild of 367 days) "
              f"in {rebuilt:.0f} s; yearly report (366 daily buckets), median of {rounds} round(s)")
        base = statistics.median(s for s, _ in results["before (orders)"])
        for name, samples in results.items():
            median = statistics.median(s for s, _ in samples)
            result(f"yearly report over {orders:,} orders, {name}: ms", median * 1000, None, " ms")
            result(f"yearly report over {orders:,} orders, {name}: documents read", samples[0][1], None, " docs")
            print(f"  {name:16s} {median * 1000:9.1f} ms  {samples[0][1]:7d} documents read  "
                  f"{base / median:8.1f}x faster than before" if name != "before (orders)" else
                  f"  {name:16s} {median * 1000:9.1f} ms  {samples[0][1]:7d} documents read")
        await client.close()
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(main(args.orders, args.rounds))
