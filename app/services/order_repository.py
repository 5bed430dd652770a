"""Raw writes of the order domain that are not version-guarded: atomic counters, one-way markers and claims.

Each is a single conditional update whose outcome says whether this caller won (a claim) or that is safe
to repeat (a marker); everything else about an order changes through ``order_events.update_versioned``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.core.jobs import WORKER_ID
from app.models.cart import Cart
from app.models.counter import Counter
from app.models.order import Order
from app.models.stripe_event import Event

ORDER_NUMBER_BASE = 10000


async def next_order_number() -> str:
    """The next human order number (``AF-10001``, …) from the atomic ``order_number`` counter."""
    raw = await Counter.get_pymongo_collection().find_one_and_update(
        {"_id": "order_number"}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER)
    if raw is None:  # an upsert that returns the document after the update always has one
        raise RuntimeError("the order number counter was not returned")
    return f"AF-{ORDER_NUMBER_BASE + int(raw['value'])}"


async def set_payment_intent(order_id: str, intent_id: str) -> None:
    """Remember the order's PaymentIntent id (the same id again on a repeat: the intent's key is the order's)."""
    await Order.get_pymongo_collection().update_one({"_id": order_id}, {"$set": {"payment_intent_id": intent_id}})


async def claim_release(order_id: str) -> Order | None:
    """Set the order's ``reservation.released`` marker; the order as it was before when this call set it,
    None when it was already set (someone else gives the stock back)."""
    before = await Order.get_pymongo_collection().find_one_and_update(
        {"_id": order_id, "reservation.released": False},
        {"$set": {"reservation.released": True}, "$currentDate": {"reservation.released_at": True}},
        return_document=ReturnDocument.BEFORE)
    return Order.model_validate(before) if before is not None else None


async def free_cart_version(cart_id: str, version: int | None) -> None:
    """Move the cart past ``version`` (if it is still at it), so the cart can be checked out again."""
    await Cart.get_pymongo_collection().update_one({"_id": cart_id, "version": version}, {"$inc": {"version": 1}})


async def lease_next_due(due: dict[str, Any], sort_key: str, leased_before: datetime) -> Order | None:
    """Lease the first order (by ``sort_key``) matching ``due`` whose lease started before ``leased_before``
    (``leased_at`` and ``lease_owner`` set); None when there is none."""
    raw = await Order.get_pymongo_collection().find_one_and_update(
        {**due, "leased_at": {"$lt": leased_before}},
        {"$set": {"lease_owner": WORKER_ID}, "$currentDate": {"leased_at": True}},
        sort=[(sort_key, 1)], return_document=ReturnDocument.AFTER)
    return Order.model_validate(raw) if raw is not None else None


async def mark_reconciled(order_id: str) -> None:
    """Stamp the order's ``reconciled_at`` (the reconciliation looks at it again after RECONCILE_AFTER_MINUTES)."""
    await Order.get_pymongo_collection().update_one({"_id": order_id}, {"$currentDate": {"reconciled_at": True}})


async def touch(order_id: str) -> None:
    """Stamp the order's ``updated_at`` (jobs that wait after an update wait again)."""
    await Order.get_pymongo_collection().update_one({"_id": order_id}, {"$currentDate": {"updated_at": True}})


async def record_event(key: str, kind: str, object_id: str | None) -> bool:
    """Store an external event once under ``key``; False when it was stored before and already processed
    (True also for one stored before whose processing was interrupted: it is processed again)."""
    try:
        await Event(id=key, kind=kind, payload={"object_id": object_id}).insert()
    except DuplicateKeyError:
        stored = await Event.get(key)
        return stored is None or stored.processed_at is None
    return True


async def mark_event_processed(key: str, outcome: str) -> None:
    """Mark the stored event processed, with its outcome (``processed`` or ``ignored: <why>``)."""
    await Event.get_pymongo_collection().update_one(
        {"_id": key}, {"$set": {"outcome": outcome}, "$currentDate": {"processed_at": True}})
