"""Shared annotated types for API input and output: strict JSON integers and UTC instants.

- ``Int``: a JSON integer and nothing else -- ``"5"``, ``true`` and ``1.0`` are a 422. Every integer in a
  request body (money in cents, quantities, stock deltas, refunds, limits) is an ``Int`` with its bounds
  given beside it (``Annotated[Int, Field(ge=1, le=20)]``); ``tests/test_input_rules.py`` sweeps the request
  models so a new field cannot skip it.
- ``UtcDateTime``: an instant read as aware UTC (a naive value is taken as UTC, an offset is converted), so
  pydantic serialises it with ``Z``. Every datetime in a response model is one.
- ``UtcInstant``: a request datetime that must carry an offset (``AwareDatetime``) and is converted to UTC at
  once, so what is stored and echoed is UTC whatever offset the client used.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Strict

from app.core.clock import ensure_utc

Int = Annotated[int, Strict()]
UtcDateTime = Annotated[datetime, AfterValidator(ensure_utc)]
UtcInstant = Annotated[AwareDatetime, AfterValidator(ensure_utc)]
