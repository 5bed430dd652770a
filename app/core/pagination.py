"""Cursor pagination: opaque cursors over a whitelisted sort key + the string ``_id`` tie-breaker."""

from __future__ import annotations

import base64
import json
from typing import Any

from pydantic import BaseModel, Field

from app.core.errors import AppError

DEFAULT_LIMIT = 24
MAX_LIMIT = 100


class InvalidCursor(AppError):
    status, code, title = 422, "invalid-cursor", "Invalid cursor"


class PageParams(BaseModel):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, max_length=512)


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, expected_len: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError) as exc:
        raise InvalidCursor("The cursor is not one this API issued.") from exc
    if not isinstance(values, list) or len(values) != expected_len:
        raise InvalidCursor("The cursor does not fit this list or sort order.")
    for v in values:
        if not isinstance(v, (str, int, float, type(None))):
            raise InvalidCursor("The cursor is not one this API issued.")
    return values


def keyset_filter(sort: list[tuple[str, int]], values: list[Any]) -> dict[str, Any]:
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

    Returns (documents, next_cursor, total-or-None).
    """
    assert sort[-1][0] == "_id", "the last sort key must be the unique _id"
    full = dict(query)
    if params.cursor:
        after = keyset_filter(sort, decode_cursor(params.cursor, len(sort)))
        full = {"$and": [query, after]} if query else after
    docs = await document.find(full).sort(sort).limit(params.limit + 1).to_list()
    next_cursor = None
    if len(docs) > params.limit:
        docs = docs[: params.limit]
        last = docs[-1].model_dump(by_alias=True)
        next_cursor = encode_cursor([_dig(last, f) for f, _ in sort])
    count = await document.find(query).count() if total else None
    return docs, next_cursor, count


def _dig(doc: dict[str, Any], path: str) -> Any:
    cur: Any = doc
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur
