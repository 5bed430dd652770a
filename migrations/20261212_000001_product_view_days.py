"""Product views counted per shop day and product (``analytics_product_views``) instead of stored one by one.

Forward: count the events of every ``product_view`` bucket of ``analytics_events`` into the day documents
(shop days in the environment's SHOP_TIMEZONE, shoppers keyed as the reports key them, expiring
ANALYTICS_RETENTION_DAYS after their day), as the writer does (app/services/analytics_store.py), then delete
those buckets. A crash anywhere, and running it again, counts each bucket exactly once: a bucket's views are
first *set* under its id on each day document (``migrated.<bucket id>``; shoppers are added to a set), and the
bucket is deleted; a last pass adds each document's ``migrated`` figures to ``views`` and removes them in one
update. The writer of a running app only ``$inc``s ``views`` meanwhile, which this never overwrites.

Backward: turn each day document back into product-view buckets the previous release reads: its
``views`` events at the day's first instant, the first of them carrying one shopper each (``v:`` visitor,
``u:`` user), the rest none — the same figures in every report (views, distinct viewers per day and product),
the times within the day lost — and drop ``analytics_product_views``.
"""

from datetime import date, timedelta

from beanie import free_fall_migration
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from app.config import get_settings
from app.models.analytics import AnalyticsBucket, EventKind, ProductViewDay
from app.services.analytics_store import ViewTallies, bucket_documents
from app.services.sales_rollups import local_midnight

BUCKET_EVENTS = 500


class Forward:
    @free_fall_migration(document_models=[AnalyticsBucket, ProductViewDay])
    async def count_product_views(self, session):
        settings = get_settings()
        retention = timedelta(days=settings.analytics_retention_days)
        buckets = AnalyticsBucket.get_pymongo_collection()
        days = ProductViewDay.get_pymongo_collection()
        async for bucket in buckets.find({"kind": EventKind.product_view.value}, {"events": 1}, session=session):
            views = ViewTallies(settings.tz).add_events(e for e in bucket["events"] if e.get("product_id"))
            ops = [_set_bucket_views(views, doc_id, bucket["_id"], retention) for doc_id in views.tallies]
            for attempt in (1, 2):  # every write is idempotent: a lost race to create a day is simply run again
                try:
                    if ops:
                        await days.bulk_write(ops, ordered=False, session=session)
                    break
                except BulkWriteError:
                    if attempt == 2:
                        raise
            await buckets.delete_one({"_id": bucket["_id"]}, session=session)
        async for doc in days.find({"migrated": {"$exists": True}}, {"migrated": 1}, session=session):
            added = sum(int(n) for n in (doc.get("migrated") or {}).values())
            await days.update_one({"_id": doc["_id"]}, {"$inc": {"views": added}, "$unset": {"migrated": ""}},
                                  session=session)


def _set_bucket_views(views: ViewTallies, doc_id: str, bucket_id: str, retention: timedelta) -> UpdateOne:
    """The upsert recording bucket ``bucket_id``'s views of ``doc_id`` under ``migrated.<bucket_id>`` (a
    ``$set``: writing it twice changes nothing) and adding its shoppers, creating the day document when
    missing."""
    doc = views.document(doc_id, retention)
    update = {"$setOnInsert": {"day": doc["day"], "product_id": doc["product_id"], "expires_at": doc["expires_at"],
                               "views": 0},
              "$set": {f"migrated.{bucket_id}": doc["views"]}}
    if doc["viewers"]:
        update["$addToSet"] = {"viewers": {"$each": doc["viewers"]}}
    else:
        update["$setOnInsert"]["viewers"] = []
    return UpdateOne({"_id": doc_id}, update, upsert=True)


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
