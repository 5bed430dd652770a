"""Report cost: our bucketing and sums against the bare read they need, in process, on one embedded database.

    .venv/bin/python bench/reports.py [--orders 10000] [--rounds 5]

Seeds ``--orders`` paid orders (two lines each) spread over a year, then times, per round:
(a) bare     the raw PyMongo ``find`` the sales report issues (same filter, projection, cap)
(b) sales    ReportService.sales over the 366-day range, daily buckets
(c) top      ReportService.top_products over the same range
Prints the median seconds per side and ours/bare. The embedded server is not a database benchmark:
the ratio shows what the Python side adds to the read, which is what REPORTS_MAX_ROWS bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.embedded_mongo import EmbeddedMongo  # noqa: E402

DB = "bench_reports"
FIRST = date(2030, 1, 1)


def order_doc(i: int, new_id) -> dict:
    at = datetime(2030, 1, 1, 5, tzinfo=UTC) + timedelta(minutes=(i * 52_561) % (365 * 24 * 60))
    lines = [{"product_id": f"prd_{i % 40:03d}", "product_name": f"Bouquet {i % 40}", "product_slug": "b",
              "size": "standard", "size_name": "Standard", "add_ons": [], "unit_price": 4500, "quantity": 1 + i % 3,
              "line_total": 4500 * (1 + i % 3)},
             {"product_id": f"prd_{(i * 7) % 40:03d}", "product_name": "Vase", "product_slug": "v", "size": "standard",
              "size_name": "Standard", "add_ons": [], "unit_price": 1500, "quantity": 1, "line_total": 1500}]
    total = sum(ln["line_total"] for ln in lines) + 1200
    return {"_id": new_id("ord"), "number": f"AF-{20000 + i}", "status": "delivered", "payment_status": "paid",
            "amount_paid": total, "amount_refunded": 0, "lines": lines, "created_at": at,
            "amounts": {"subtotal": total - 1200, "delivery_fee": 1200, "total": total, "currency": "USD"},
            "contact": {"user_id": f"usr_{i % 500:04d}", "email": f"c{i % 500}@example.com"}}


async def timed(fn) -> float:
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


async def main(orders: int, rounds: int) -> None:
    from app.config import Settings
    from app.core.db import connect
    from app.core.ids import new_id
    from app.models.order import Order
    from app.schemas.reports import BucketedRange, TopProductsQuery
    from app.services.reports import ReportService

    server = EmbeddedMongo(None)
    server.start()
    try:
        settings = Settings(_env_file=None, mongodb_db=DB, reports_max_rows=max(orders, 100))
        client = await connect(settings, server.url)
        coll = Order.get_pymongo_collection()
        for start in range(0, orders, 1000):
            await coll.insert_many([order_doc(i, new_id) for i in range(start, min(orders, start + 1000))])
        service = ReportService(settings)
        span = {"from": FIRST.isoformat(), "to": (FIRST + timedelta(days=365)).isoformat()}
        q = BucketedRange.model_validate(span)
        top = TopProductsQuery.model_validate(span)
        bare_query = {"payment_status": {"$in": ["paid", "partially_refunded", "refunded"]},
                      "created_at": service._utc_range(q.from_, q.to), "amounts.currency": "USD"}
        fields = {"created_at": 1, "amount_paid": 1, "amount_refunded": 1, "lines": 1}
        report = await service.sales(q)
        assert report.totals.orders == orders, report.totals

        async def bare() -> None:
            await coll.find(bare_query, fields).limit(settings.reports_max_rows + 1).to_list(None)

        sides = {"bare": bare, "sales": lambda: service.sales(q), "top": lambda: service.top_products(top)}
        results: dict[str, list[float]] = {k: [] for k in sides}
        for _ in range(rounds):
            for name, fn in sides.items():
                results[name].append(await timed(fn))
        base = statistics.median(results["bare"])
        print(f"{orders} orders, 366 daily buckets, median of {rounds} rounds")
        for name, samples in results.items():
            median = statistics.median(samples)
            print(f"  {name:6s} {median * 1000:8.1f} ms   ours/bare {median / base:5.2f}")
        await client.close()
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.orders, args.rounds))
