"""Unique slugs: generated from a name with a numeric suffix on collision, or given explicitly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pymongo.errors import DuplicateKeyError

from app.core.errors import Conflict
from app.core.text import slugify


async def insert_with_slug(insert: Callable[[str], Awaitable[Any]], name: str, explicit: str | None) -> Any:
    """Call ``insert(slug)`` until the unique slug index accepts it (explicit slugs are tried once)."""
    if explicit:
        try:
            return await insert(explicit)
        except DuplicateKeyError:
            raise Conflict(f"The slug {explicit!r} is taken.", code="slug-taken") from None
    base = slugify(name)
    for n in range(1, 51):
        try:
            return await insert(base if n == 1 else f"{base}-{n}")
        except DuplicateKeyError:
            continue
    raise Conflict("Could not find a free slug for this name; pass one explicitly.", code="slug-taken")
