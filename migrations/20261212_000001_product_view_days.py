"""Product views counted per shop day and product (``analytics_product_views``) instead of stored one by one.

Forward: count the events of every ``product_view`` bucket of ``analytics_events`` into the day documents
(shop days in the environment's SHOP_TIMEZONE, shoppers keyed as the reports key them, expiring
ANALYTICS_RETENTION_DAYS after their day), as the writer does (app/services/analytics_store.py), then delete
those buckets. Backward: turn each day document back into product-view buckets the previous release reads: its
``views`` events at the day's first instant, the first of them carrying one shopper each (``v:`` visitor,
``u:`` user), the rest none — the same figures in every report (views, distinct viewers per day and product),
the times within the day lost — and drop ``analytics_product_views``.
"""

from datetime import date, timedelta

from beanie import free_fall_migration

from app.config import get_settings
from app.models.analytics import AnalyticsBucket, EventKind, ProductViewDay
from app.services.analytics_store import ViewTallies, bucket_documents, store_view_tallies
from app.services.sales_rollups import local_midnight

BUCKET_EVENTS = 500


class Forward:
    @free_fall_migration(document_models=[AnalyticsBucket, ProductViewDay])
    async def count_product_views(self, session):
        settings = get_settings()
        buckets = AnalyticsBucket.get_pymongo_collection()
        query = {"kind": EventKind.product_view.value}
        views = ViewTallies(settings.tz)
        ids = []
        async for bucket in buckets.find(query, {"events": 1}, session=session):
            views.add_events(e for e in bucket["events"] if e.get("product_id"))
            ids.append(bucket["_id"])
        if views.tallies:
            lost = await store_view_tallies(views, timedelta(days=settings.analytics_retention_days), [])
            if lost:
                raise RuntimeError(f"{lost} product views could not be written; the buckets are kept")
        for i in range(0, len(ids), 500):
            await buckets.delete_many({"_id": {"$in": ids[i:i + 500]}}, session=session)


class Backward:
    @free_fall_migration(document_models=[AnalyticsBucket, ProductViewDay])
    async def store_product_view_events(self, session):
        settings = get_settings()
        retention = timedelta(days=settings.analytics_retention_days)
        days = ProductViewDay.get_pymongo_collection()
        buckets = AnalyticsBucket.get_pymongo_collection()
        async for doc in days.find({}, session=session):
            at = local_midnight(date.fromisoformat(doc["day"]), settings.tz)
            events = []
            for n in range(int(doc.get("views") or 0)):
                event = {"kind": EventKind.product_view.value, "at": at, "product_id": doc["product_id"]}
                if n < len(doc.get("viewers") or []):
                    kind, _, who = doc["viewers"][n].partition(":")
                    event["visitor_id" if kind == "v" else "user_id"] = who
                events.append(event)
                if len(events) == BUCKET_EVENTS:
                    await buckets.insert_many(bucket_documents(events, retention, BUCKET_EVENTS), session=session)
                    events = []
            if events:
                await buckets.insert_many(bucket_documents(events, retention, BUCKET_EVENTS), session=session)
        await days.drop(session=session)
