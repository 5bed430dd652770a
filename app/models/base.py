"""Shared pieces of storage documents: prefixed string ids, timestamps, the version guard."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from app.core.clock import utcnow
from app.core.ids import new_id


def id_field(prefix: str) -> Any:
    return Field(default_factory=lambda: new_id(prefix))


def now_field() -> Any:
    return Field(default_factory=utcnow)

