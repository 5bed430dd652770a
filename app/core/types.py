"""Shared annotated types for API input and output: strict JSON integers and UTC instants.

- ``Int``: a JSON integer and nothing else -- ``"5"``, ``true`` and ``1.0`` are a 422. Every integer in a
  request body (money in cents, quantities, stock deltas, refunds, limits) is an ``Int`` with its bounds
  given beside it (``Annotated[Int, Field(ge=1, le=20)]``); ``tests/test_input_rules.py`` sweeps the request
  models so a new field cannot skip it.
- ``Bool``: a JSON ``true``/``false`` and nothing else, for every boolean in a request body (a consent flag
  must not be set by ``"yes"`` or ``1``); query-string booleans stay lax (``?active=true`` is text).
- ``UtcDateTime``: an instant read as aware UTC (a naive value is taken as UTC, an offset is converted), so
  pydantic serialises it with ``Z``. Every datetime in a response model is one.
- ``RequestDate``: a calendar date from a request, within years 2000–9998, so date arithmetic on it (a
  delivery window, a report range, a time zone shift) can never overflow ``datetime``'s range.
- ``UtcInstant``: a request datetime that must carry an offset (``AwareDatetime``) and is converted to UTC at
  once, so what is stored and echoed is UTC whatever offset the client used.
- ``RequestInstant``: a request datetime where the offset may be left out (taken as UTC), as in query filters
  (``from``/``to``); bounded and converted like ``UtcInstant``.
Every date and datetime a request carries (body, query, path) is a ``RequestDate``, ``UtcInstant`` or
``RequestInstant`` (``tests/test_input_rules.py`` sweeps the routes), so none can overflow later arithmetic.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Strict

from app.core.clock import ensure_utc

Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]  # a JSON true/false in a request body: "yes", "true", 1 and 0 are a 422
UtcDateTime = Annotated[datetime, AfterValidator(ensure_utc)]

EARLIEST_DATE, LATEST_DATE = date(2000, 1, 1), date(9998, 12, 31)


def _bounded_date(value: date) -> date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValueError(f"must be between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()}")
    return value


def _request_instant(value: datetime) -> datetime:
    """Convert to UTC; an instant whose UTC form falls outside the calendar (year 1 or 9999 with an offset)
    is a validation error, not an OverflowError."""
    utc = ensure_utc(value) if EARLIEST_DATE <= value.date() <= LATEST_DATE else None
    if utc is None:
        raise ValueError(f"must be between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()}")
    return utc


RequestDate = Annotated[date, AfterValidator(_bounded_date)]
UtcInstant = Annotated[AwareDatetime, AfterValidator(_request_instant)]
RequestInstant = Annotated[datetime, AfterValidator(_request_instant)]
