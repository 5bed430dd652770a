"""Demo analytics history: 30 shop days of anonymous visitors browsing, searching, adding to carts, checking
out and paying, so the shopper-behaviour reports have something to show (idempotent: skipped when any event
is stored).

Generated with a fixed random seed over the active demo products. Search result counts are what the catalog
would find (the number of active products with a word starting with the term). Orders of the synthetic
checkouts are ids only: the funnel reads events, while "most bought" reads the real (seeded) orders.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from app.config import get_settings
from app.core.clock import utcnow
from app.core.ids import new_id_at
from app.core.text import normalize
from app.models.analytics import AnalyticsBucket, EventKind, ProductViewDay
from app.models.catalog import Product, ProductStatus
from app.models.user import Role, User
from app.services.analytics_store import ViewTallies, bucket_documents

DAYS = 30
SEARCHES = ["roses", "peonies", "tulips", "sunflowers", "lilies", "orchids", "birthday", "red roses", "white",
            "mothers day", "wedding", "sympathy"]
NO_RESULTS = ["cactus", "bonsai", "gift card", "succulents"]


def _results(term: str, words: list[list[str]]) -> int:
    parts = normalize(term).split()
    return sum(1 for w in words if all(any(x.startswith(p) for x in w) for p in parts))


async def seed_analytics_history() -> list[str]:
    if (await AnalyticsBucket.get_pymongo_collection().find_one({}) is not None
            or await ProductViewDay.get_pymongo_collection().find_one({}) is not None):
        return []
    products = await Product.get_pymongo_collection().find(
        {"status": ProductStatus.active.value}, {"search_words": 1}).to_list(None)
    if not products:
        return []
    customers = [u.id for u in await User.find({"role": Role.customer.value}).to_list()]
    rng = random.Random(2026)
    settings = get_settings()
    retention = timedelta(days=settings.analytics_retention_days)
    now = utcnow()
    ids = [p["_id"] for p in products]
    words = [p.get("search_words") or [] for p in products]
    favourites = rng.sample(ids, k=min(8, len(ids)))  # some bouquets draw more eyes
    events: list[dict[str, Any]] = []

    def add(kind: EventKind, at: datetime, visitor: str, user: str | None, **fields: Any) -> None:
        if at <= now:
            events.append({"kind": kind.value, "at": at, **({"visitor_id": visitor} if visitor else {}),
                           **({"user_id": user} if user else {}), **fields})

    for day in range(DAYS, 0, -1):
        start = now - timedelta(days=day)
        for _ in range(rng.randint(12, 30)):  # visitors that day
            visitor = f"demo-{rng.getrandbits(64):016x}"
            user = rng.choice(customers) if customers and rng.random() < 0.15 else None
            at = start + timedelta(seconds=rng.randint(0, 86_000))
            if rng.random() < 0.5:
                term = rng.choice(NO_RESULTS) if rng.random() < 0.15 else rng.choice(SEARCHES)
                add(EventKind.search, at, visitor, user, query=normalize(term), results=_results(term, words))
            viewed = [rng.choice(favourites) if rng.random() < 0.4 else rng.choice(ids)
                      for _ in range(rng.randint(1, 5))]
            for pid in viewed:
                at += timedelta(seconds=rng.randint(20, 240))
                add(EventKind.product_view, at, visitor, user, product_id=pid)
            if rng.random() < 0.35:
                at += timedelta(seconds=rng.randint(30, 300))
                add(EventKind.cart_add, at, visitor, user, product_id=rng.choice(viewed), quantity=rng.randint(1, 2))
                if rng.random() < 0.5:
                    at += timedelta(seconds=rng.randint(60, 900))
                    order_id = new_id_at("ord", at)
                    add(EventKind.checkout_start, at, visitor, user, order_id=order_id)
                    if rng.random() < 0.8:
                        # As from the payment webhook: no visitor id; the report finds it through the checkout.
                        add(EventKind.order_paid, at + timedelta(seconds=rng.randint(5, 7200)), "", user,
                            order_id=order_id)
    events.sort(key=lambda e: e["at"])
    views = ViewTallies(settings.tz).add_events(e for e in events if e["kind"] == EventKind.product_view.value)
    days = [views.document(doc_id, retention) for doc_id in views.tallies]
    for i in range(0, len(days), 200):
        await ProductViewDay.get_pymongo_collection().insert_many(days[i:i + 200], ordered=False)
    hours: dict[int, list[dict[str, Any]]] = {}
    for e in (e for e in events if e["kind"] != EventKind.product_view.value):
        # one bucket per kind and hour, as a busy writer would leave them
        hours.setdefault(int(e["at"].timestamp()) // 3600, []).append(e)
    buckets = [b for group in hours.values() for b in bucket_documents(group, retention, 500)]
    for i in range(0, len(buckets), 200):
        await AnalyticsBucket.get_pymongo_collection().insert_many(buckets[i:i + 200], ordered=False)
    return [f"Analytics history: {len(events)} events over the last {DAYS} days "
            "(GET /api/v1/admin/reports/funnel?from=…&to=…, dates, at most 366 days)."]
