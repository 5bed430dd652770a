"""API schemas shared by several resources: the request-body base, the list page, a plain message and the
link type of admin content (``LinkUrl``)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Annotated, Any, Generic, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from app.core.text import clean_token

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


# Never in a link: whitespace, controls (C0, DEL, C1), the usual invisible format characters, and characters
# that end a URL in HTML or text. The pattern (declared in OpenAPI) lists the common ones; ``_link`` refuses
# every Unicode Cc/Cf character (``clean_token``). Written without escapes a JavaScript regex (OpenAPI's
# dialect, unicode mode) refuses, such as \".
_NOT_IN_LINK = r"""\s\u0000-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff<>"'{}|\\^`"""


def _link(value: Any) -> Any:
    """A URL an admin puts into content (a campaign button, a category image): trimmed of surrounding ASCII
    spaces, tabs and line breaks (as pasted); then no whitespace, control or invisible format character at all
    (``clean_token``); an https URL must name a host (``https:///x`` does not)."""
    if not isinstance(value, str):
        return value
    value = clean_token(value.strip(" \t\r\n"))
    if value.startswith("https://"):
        try:
            host = urlsplit(value).hostname
        except ValueError:  # e.g. an unclosed IPv6 bracket
            host = None
        if not host or not host.strip("."):
            raise ValueError("must name a host: https://host/…")
    return value


# An https URL with a host, or a storefront path ("/…" but not "//host", which browsers read as another site).
LinkUrl = Annotated[str, StringConstraints(
    strip_whitespace=True, max_length=500,
    pattern=rf"""^(https://[^/?#{_NOT_IN_LINK}][^{_NOT_IN_LINK}]*|/([^/{_NOT_IN_LINK}][^{_NOT_IN_LINK}]*)?)$"""),
    BeforeValidator(_link)]
