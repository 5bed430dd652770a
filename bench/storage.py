"""Document sizes of the demo shop: the per-document figures the capacity plan in docs/system-design.md uses.

    .venv/bin/python bench/storage.py

Seeds the demo data (`amour-florals seed`: catalog, users, delivery, demo orders placed through the real
checkout, reviews, plus each demo order's confirmation email) into a throwaway in-memory embedded
database and prints, per collection, the number
of documents and their mean and largest BSON size (``bson.encode`` of each stored document, which is what
MongoDB stores before compression). Index sizes depend on the server and are not measured here.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.embedded_mongo import EmbeddedMongo  # noqa: E402


async def measure(url: str) -> list[tuple[str, int, float, int]]:
    import bson

    from app.config import get_settings
    from app.demo.seed import seed_all
    from app.models import DOCUMENT_MODELS
    from app.models.db import connect
    from app.models.order import Order
    from app.services.email import EmailService
    from app.services.order_notify import OrderNotifier

    settings = get_settings()
    client = await connect(settings, url)
    try:
        await seed_all()
        # Seeding queues no email: queue the order confirmation of each demo order, the outbox's usual item.
        notifier = OrderNotifier(settings, EmailService(settings))
        for order in await Order.find({}).to_list():
            await notifier.send(order, "order_confirmation")
        rows = []
        for model in DOCUMENT_MODELS:
            docs = await model.get_pymongo_collection().find({}).to_list(None)
            sizes = [len(bson.encode(d)) for d in docs]
            mean = statistics.mean(sizes) if sizes else 0.0
            rows.append((model.Settings.name, len(sizes), mean, max(sizes, default=0)))
        return rows
    finally:
        await client.close()


def main() -> None:
    server = EmbeddedMongo(None)
    url = server.start()
    try:
        with tempfile.TemporaryDirectory() as media:
            os.environ.update(MONGODB_URL=url, MONGODB_DB="bench_storage", MEDIA_DIR=media, CLOUDINARY_URL="",
                              WORKERS_ENABLED="false")
            rows = asyncio.run(measure(url))
    finally:
        server.stop()
    print(f"{'collection':<22}{'documents':>10}{'mean bytes':>12}{'max bytes':>11}")
    for name, count, mean, largest in rows:
        print(f"{name:<22}{count:>10}{mean:>12.0f}{largest:>11}")


if __name__ == "__main__":
    main()
