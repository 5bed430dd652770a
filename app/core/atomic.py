"""Small helpers for counters kept in documents of their own (slot capacity, per-customer promo uses)."""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError


async def ensure_document(collection: Any, doc_id: str, defaults: dict[str, Any]) -> None:
    """Create ``doc_id`` with ``defaults`` unless it exists; safe when many callers race to create it.

    Conditional takes then run as plain updates (no upsert): an upsert whose filter misses because the
    counter is full would try to insert a second document with the same ``_id``.
    """
    try:
        await collection.update_one({"_id": doc_id}, {"$setOnInsert": defaults}, upsert=True)
    except DuplicateKeyError:
        pass  # a concurrent caller created it
