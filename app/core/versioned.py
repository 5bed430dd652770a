"""Whole-array writes under an integer ``version`` guard, retried on conflict.

The embedded server silently ignores positional updates inside arrays of sub-documents, so arrays
such as addresses or cart lines are rewritten whole: ``$set`` filtered on ``{_id, version}`` with
``$inc: {version: 1}``. A concurrent writer makes the filter miss; we reload and apply again.

``replace=True`` rewrites the whole document instead (``replace_one`` on ``{_id, version}``). Use it for
collections whose every writer bumps ``version`` (otherwise a concurrent ``$inc`` would be overwritten).
It is also the way to write top-level datetimes: the embedded server stores a datetime given directly
to ``$set`` as a naive string (tests/test_db_contract_delivery.py), while a replaced document keeps it.
Alternatively a top-level field set to ``NOW`` is written with ``$currentDate`` (a real date either way).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from app.core.clock import utcnow
from app.core.errors import Conflict, NotFound

NOW: Any = object()  # sentinel: "stamp this field with the current time" ($currentDate)

Mutation = Callable[[Any], Awaitable[dict[str, Any]] | dict[str, Any]]


async def update_versioned(document: Any, doc_id: str, mutate: Mutation, *, base_filter: dict[str, Any] | None = None,
                           attempts: int = 20, replace: bool = False, current: Any = None) -> Any:
    """Load ``doc_id``, let ``mutate(doc)`` return the fields to ``$set`` (it may raise to refuse),
    and write them only if nobody changed the document meanwhile. Returns the document as written.

    ``current``: the document as the caller just read it (the stored dict, or the model), used for the
    first attempt instead of reading it again; if it is stale the guarded write misses and the document
    is read afresh. ``base_filter`` must already hold for it. A field set to ``NOW`` is stamped with the
    server's time (``$currentDate``): the embedded server stores a top-level datetime given to ``$set``
    as a naive string (see tests/test_db_contract_reviews.py)."""
    coll = document.get_pymongo_collection()
    for _ in range(attempts):
        raw, doc = _snapshot(current)
        current = None
        if raw is None:
            raw = await coll.find_one({"_id": doc_id, **(base_filter or {})})
            if raw is None:
                raise NotFound()
        if doc is None:
            doc = document.model_validate(raw)
        changes = mutate(doc)
        if isinstance(changes, Awaitable):
            changes = await changes
        if not changes:
            return doc
        version = raw.get("version", 0)
        # A document written before the field existed (e.g. imported) has none: {"version": 0} would never match.
        guard = {"version": version} if "version" in raw else {"version": {"$exists": False}}
        now = utcnow()
        stamps = {k: True for k, v in changes.items() if v is NOW}
        changes = {k: (now if v is NOW else v) for k, v in changes.items()}
        if replace:
            replacement = {**raw, **changes, "version": version + 1}
            replacement.pop("_id")
            res = await coll.replace_one({"_id": doc_id, **guard}, replacement)
        else:
            update: dict[str, Any] = {"$set": {k: v for k, v in changes.items() if k not in stamps},
                                      "$inc": {"version": 1}}
            if stamps:
                update["$currentDate"] = stamps
            res = await coll.update_one({"_id": doc_id, **guard}, update)
        if res.matched_count == 1:
            return document.model_validate({**raw, **changes, "version": version + 1})
    raise Conflict("The resource is being changed by another request; try again.", code="concurrent-update")


def _snapshot(current: Any) -> tuple[dict[str, Any] | None, Any]:
    """(stored dict, model) of a caller's snapshot; (None, None) when there is none."""
    if current is None:
        return None, None
    if isinstance(current, dict):
        return current, None
    raw = current.model_dump(by_alias=True)
    return raw, current
