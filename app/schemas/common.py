"""API schemas shared by several resources: the request-body base, the list page and a plain message."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class StrictModel(BaseModel):
    """Base for request bodies: unknown fields are rejected, strings trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(None, description="Pass as `cursor` to get the next page; null on the last.")
    total: int | None = Field(None, description="Number of items matching the list's filters, over all pages "
                                                "(null where the list does not count them).")


class Message(BaseModel):
    detail: str
