"""MongoDB filters in the form that costs the database least: flat documents, and counts on the same filter.

``all_of(*clauses)`` combines clauses into one flat filter document (``{"status": "active", "price_min":
{...}}``); only clauses that constrain the same key (two anchored regexes on ``search_words``, two ``$or``)
are combined with ``$and``, and never a single-element one. A flat filter lets the planner pick a compound
index directly; on the embedded development server an ``$and`` also forces its slow per-document path
(measured: a filtered page 34 ms flat against 192 ms wrapped, at 5,000 products).

``count_matching(collection, filter, limit=)`` counts the documents a list query matches, on the same
filter: ``aggregate([{"$match": f}, {"$limit": n}, {"$count": "n"}])`` — MongoDB's ``$count`` stage
rather than PyMongo's ``count_documents``, which appends ``$group: {_id: 1, n: {$sum: 1}}`` (20-30x slower
on the embedded server; equivalent on MongoDB). A filter holding a datetime is counted with the ``count``
command instead: on the embedded server a date range inside ``aggregate`` matches wrongly (``$gte`` matches
everything, ``$lt`` nothing) and ``count_documents`` misses dates written by ``$currentDate``; the ``count``
command is exact on both (with a filter, which such a query always has; a ``count`` with a filter is exact on
sharded clusters too since MongoDB 4.0, SERVER-3645). ``tests/test_db_contract_counts.py``
proves each form the app counts with, against whichever server ``MONGODB_URL`` names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

Filter = dict[str, Any]


def all_of(*clauses: Mapping[str, Any] | None) -> Filter:
    """One filter matching every clause (empty or None clauses are skipped; nested ``$and`` is flattened).

    Clauses whose keys no other clause uses are merged into one document; those sharing a key go, in order,
    into an ``$and`` of two or more. ``all_of()`` is ``{}`` (everything)."""
    flat: list[Mapping[str, Any]] = []

    def add(clause: Mapping[str, Any] | None) -> None:
        if not clause:
            return
        if set(clause) == {"$and"}:
            for inner in clause["$and"]:
                add(inner)
        else:
            flat.append(clause)

    for clause in clauses:
        add(clause)
    uses = Counter(key for clause in flat for key in clause)
    merged: Filter = {}
    shared: list[Mapping[str, Any]] = []
    for clause in flat:
        if any(uses[key] > 1 for key in clause):
            shared.append(clause)
        else:
            merged.update(clause)
    if shared:
        merged["$and"] = shared
    return merged


def _has_dates(value: Any) -> bool:
    if isinstance(value, (datetime, date)):
        return True
    if isinstance(value, Mapping):
        return any(_has_dates(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_dates(v) for v in value)
    return False


async def count_matching(collection: Any, query: Mapping[str, Any], *, limit: int | None = None) -> int:
    """How many documents of ``collection`` (a PyMongo ``AsyncCollection``) match ``query``, counting at
    most ``limit`` when given (the database stops there). ``query`` is the list's own filter (flat, see
    ``all_of``); array membership must be written ``{"field": {"$in": [v]}}``, as everywhere in the app."""
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1")
    if _has_dates(query):
        options = {"limit": limit} if limit else {}
        reply = await collection.database.command("count", collection.name, query=dict(query), **options)
        return int(reply["n"])
    pipeline: list[dict[str, Any]] = [{"$match": dict(query)}]
    if limit:
        pipeline.append({"$limit": limit})
    pipeline.append({"$count": "n"})
    rows = await (await collection.aggregate(pipeline)).to_list(1)
    return int(rows[0]["n"]) if rows else 0


async def capped_count(collection: Any, query: Mapping[str, Any], cap: int) -> tuple[int, bool]:
    """``(total, capped)``: the exact count when at most ``cap`` documents match, else ``(cap, True)``
    ("1,000+"). The database counts at most ``cap + 1`` documents."""
    n = await count_matching(collection, query, limit=cap + 1)
    return (cap, True) if n > cap else (n, False)
