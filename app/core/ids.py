"""Public ids: a type prefix + "_" + a ULID (time-ordered), e.g. ``usr_01JD7Z...``.

The same string is the MongoDB ``_id`` and the id in URLs and JSON; sorting by it sorts by creation time.
"""

from __future__ import annotations

import re

from ulid import ULID

_ID_RE = re.compile(r"^[a-z]{2,5}_[0-9A-HJKMNP-TV-Z]{26}$")


def new_id(prefix: str) -> str:
    return f"{prefix}_{ULID()}"


def looks_like_id(value: str, prefix: str | None = None) -> bool:
    if not _ID_RE.match(value):
        return False
    return prefix is None or value.startswith(prefix + "_")
