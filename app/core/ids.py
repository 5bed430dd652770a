"""Public ids: a type prefix + "_" + a ULID (time-ordered), e.g. ``usr_01JD7Z...``.

The same string is the MongoDB ``_id`` and the id in URLs and JSON; sorting by it sorts by creation time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from ulid import ULID

_ID_RE = re.compile(r"^[a-z]{2,5}_[0-9A-HJKMNP-TV-Z]{26}$")


def new_id(prefix: str) -> str:
    return f"{prefix}_{ULID()}"


def looks_like_id(value: str, prefix: str | None = None) -> bool:
    if not _ID_RE.match(value):
        return False
    return prefix is None or value.startswith(prefix + "_")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _ms(instant: datetime) -> int:
    """Milliseconds since the epoch, rounded up (an aware instant)."""
    return -((_EPOCH - instant) // _MS)


def new_id_at(prefix: str, instant: datetime) -> str:
    """A new id whose time part is ``instant`` (milliseconds; aware), e.g. the same instant a document stores."""
    return f"{prefix}_{ULID.from_timestamp(_ms(instant))}"


def id_floor(prefix: str, instant: datetime) -> str:
    """The lowest id of ``prefix`` made at or after ``instant``: ``_id >= id_floor(p, t)`` selects documents
    created at or after ``t`` (and ``_id < id_floor(p, t)`` those before), exact to the millisecond on any
    server, because the ULID's first 10 characters are its millisecond timestamp in sortable base32."""
    return f"{prefix}_{str(ULID.from_timestamp(_ms(instant)))[:10]}{'0' * 16}"
