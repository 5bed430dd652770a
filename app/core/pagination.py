"""Cursor pagination: opaque cursors over a whitelisted sort key + the string ``_id`` tie-breaker.

A cursor is the base64url JSON list of a *scope tag* then the last item's sort-key values. The tag is a short
digest of the list's identity (its collection and sort order, see ``list_scope``), so a cursor of one list or
sort order given to another is refused rather than silently answering a page of the wrong order. A cursor
comes back from the client, so ``decode_cursor`` checks the tag and every value against its sort key's type and
range (a string id, a 64-bit integer, a finite number) before it reaches a query: anything else is a 422
``invalid-cursor``, never a 500. (The tag is not a signature: a client can still forge a cursor of the right
shape, which only moves where its page starts.)
Every list's query model derives from ``PageParams``, which refuses unknown query parameters (422).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.core.errors import AppError
from app.core.filters import all_of, count_matching

DEFAULT_LIMIT = 24
MAX_LIMIT = 100
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # what BSON can hold (a larger int fails to encode)
MAX_CURSOR_STRING = 64  # ids are 30 characters

# The type of each sort key as it appears in a cursor: ``str`` (ids), ``int`` (int64), ``float`` (finite).
CursorKind = type


class InvalidCursor(AppError):
    status, code, title = 422, "invalid-cursor", "Invalid cursor"


class PageParams(BaseModel):
    """Query parameters of every list: ``limit`` and the opaque ``cursor``. Lists with filters subclass it;
    an unknown query parameter is a 422 (as on ``/products``)."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, max_length=512, description="`next_cursor` of the previous page.")


def list_scope(collection: str, sort: Sequence[tuple[str, int]]) -> str:
    """The scope tag of a list: 8 base64url characters of a SHA-256 over its collection and sort order
    (e.g. ``list_scope("products", [("price_min", 1), ("_id", 1)])``)."""
    identity = collection + "|" + ",".join(f"{field}:{direction}" for field, direction in sort)
    return base64.urlsafe_b64encode(hashlib.sha256(identity.encode()).digest()[:6]).decode()


def encode_cursor(values: list[Any], scope: str) -> str:
    """The opaque cursor after an item whose sort-key values are ``values``, in the list ``scope``
    (``list_scope``)."""
    raw = json.dumps([scope, *values], separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _fits(value: Any, kind: CursorKind) -> bool:
    if kind is str:
        return isinstance(value, str) and 0 < len(value) <= MAX_CURSOR_STRING
    if type(value) is int:  # not bool
        return INT64_MIN <= value <= INT64_MAX
    return kind is float and type(value) is float and math.isfinite(value)


def decode_cursor(cursor: str, kinds: Sequence[CursorKind], scope: str) -> list[Any]:
    """The sort-key values in ``cursor``, one per entry of ``kinds`` (see ``cursor_kinds``), for the list
    ``scope`` (``list_scope``).

    Raises InvalidCursor (422) unless the cursor is base64url JSON holding ``scope`` then exactly that many
    values, each of its key's type and within its range."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, binascii.Error, RecursionError) as exc:
        raise InvalidCursor("The cursor is not one this API issued.") from exc
    if not isinstance(decoded, list) or not decoded or decoded[0] != scope:
        raise InvalidCursor("The cursor does not fit this list or sort order.")
    values = decoded[1:]
    if len(values) != len(kinds):
        raise InvalidCursor("The cursor does not fit this list or sort order.")
    if not all(_fits(v, k) for v, k in zip(values, kinds, strict=True)):
        raise InvalidCursor("The cursor does not fit this list or sort order.")
    return values


def cursor_kinds(document: Any, sort: Sequence[tuple[str, int]], **computed: CursorKind) -> list[CursorKind]:
    """The cursor kind of each sort key: ``_id`` is a string id, other keys take their type from the
    document model's field (``int`` or ``float``; ``str`` fields are strings), or from ``computed`` for
    keys that are not stored (e.g. a relevance score)."""
    kinds: list[CursorKind] = []
    for field, _ in sort:
        if field == "_id":
            kinds.append(str)
        elif field in computed:
            kinds.append(computed[field])
        else:
            annotation = document.model_fields[field].annotation
            if annotation not in (int, float, str):
                raise TypeError(f"{document.__name__}.{field} cannot be a cursor key ({annotation!r})")
            kinds.append(annotation)
    return kinds


def keyset_filter(sort: Sequence[tuple[str, int]], values: list[Any]) -> dict[str, Any]:
    """Filter selecting documents strictly after ``values`` in the order ``sort`` (last key is unique)."""
    ors: list[dict[str, Any]] = []
    for i, (field, direction) in enumerate(sort):
        clause: dict[str, Any] = {f: values[j] for j, (f, _) in enumerate(sort[:i])}
        clause[field] = {"$gt" if direction == 1 else "$lt": values[i]}
        ors.append(clause)
    return ors[0] if len(ors) == 1 else {"$or": ors}


async def paginate(document: Any, query: dict[str, Any], sort: list[tuple[str, int]], params: PageParams,
                   *, total: bool = False) -> tuple[list[Any], str | None, int | None]:
    """Fetch one page of ``document`` matching ``query`` in ``sort`` order (last sort key must be ``_id``).

    Returns (documents, next_cursor, total-or-None). The page and the count use the same flat filter
    (``all_of``); the count is skipped when the first page already holds every match.
    """
    assert sort[-1][0] == "_id", "the last sort key must be the unique _id"
    full = dict(query)
    scope = list_scope(document.get_pymongo_collection().name, sort)
    if params.cursor:
        values = decode_cursor(params.cursor, cursor_kinds(document, sort), scope)
        full = all_of(query, keyset_filter(sort, values))
    docs = await document.find(full).sort(sort).limit(params.limit + 1).to_list()
    next_cursor = None
    if len(docs) > params.limit:
        docs = docs[: params.limit]
        last = docs[-1].model_dump(by_alias=True)
        next_cursor = encode_cursor([_dig(last, f) for f, _ in sort], scope)
    count = None
    if total:
        if params.cursor is None and next_cursor is None:
            count = len(docs)
        else:
            count = await count_matching(document.get_pymongo_collection(), query)
    return docs, next_cursor, count


def _dig(doc: dict[str, Any], path: str) -> Any:
    cur: Any = doc
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur
