"""Order lists: a customer's own orders and the staff list with filters. Newest first by the time-ordered
``_id`` (sorting by ``created_at`` would give the same order; the cursor stays a plain string)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.core.clock import ensure_utc
from app.core.filters import count_matching
from app.core.pagination import PageParams, paginate
from app.models.order import Order
from app.schemas.orders import AdminOrderFilters

NEWEST = [("_id", -1)]  # for paginate
NEWEST_SORT = "-_id"  # the same order for Beanie's find().sort


async def list_for_user(user_id: str, params: PageParams) -> tuple[list[Order], str | None, int | None]:
    return await paginate(Order, {"contact.user_id": user_id}, NEWEST, params)


def admin_query(f: AdminOrderFilters) -> dict[str, Any]:
    query: dict[str, Any] = {}
    if f.status:
        query["status"] = f.status.value
    created: dict[str, datetime] = {}
    if f.created_from:
        created["$gte"] = ensure_utc(f.created_from)
    if f.created_to:
        created["$lt"] = ensure_utc(f.created_to)
    if created:
        query["created_at"] = created
    if f.delivery_date:
        query["delivery.date"] = f.delivery_date.isoformat()
    if f.zone:
        query["delivery.zone_id"] = f.zone
    if f.email:
        query["contact.email"] = f.email.strip().lower()
    if f.number:
        query["number"] = f.number.upper()
    return query


async def list_for_staff(f: AdminOrderFilters, params: PageParams) -> tuple[list[Order], str | None, int]:
    query = admin_query(f)
    if f.page is not None:
        docs = await Order.find(query).sort(NEWEST_SORT).skip((f.page - 1) * params.limit).limit(params.limit).to_list()
        total = await count_matching(Order.get_pymongo_collection(), query)
        return docs, None, total
    docs, cursor, counted = await paginate(Order, query, NEWEST, params, total=True)
    return docs, cursor, counted or 0

