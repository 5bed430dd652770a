"""API schemas shared by several resources: the request-body base, the list page and a plain message."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

T = TypeVar("T")


class StrictModel(BaseModel):
    """Base for request bodies: unknown fields are rejected, strings trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(None, description="Pass as `cursor` to get the next page; null on the last.")
    total: int | None = Field(None, description="Number of items matching the list's filters, over all pages "
                                                "(null where the list does not count them).")


def unique_items(what: str, *, key: Callable[[Any], Hashable] | None = None, sort: bool = False) -> AfterValidator:
    """Validator for a list field (put it in the field's ``Annotated``): a 422 ``"<what> must be unique"`` when
    two items (or their ``key``, e.g. ``lambda s: s.code``) are equal; ``sort=True`` also sorts the list, so
    equal sets store and compare equal."""

    def check(items: list[Any]) -> list[Any]:
        keys = [key(i) for i in items] if key else items
        if len(set(keys)) != len(keys):
            raise ValueError(f"{what} must be unique")
        return sorted(items) if sort else items

    return AfterValidator(check)


class Message(BaseModel):
    detail: str
