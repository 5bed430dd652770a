"""JSON responses with a strong ETag and Cache-Control; ``If-None-Match`` gets 304 Not Modified."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import Header
from pydantic_core import to_json
from starlette.requests import Request
from starlette.responses import Response

from app.core.contract import declares


def cache_control(max_age: int) -> str:
    # max-age 0: clients and CDNs may keep a copy but must revalidate (cheap with the ETag): stock stays exact.
    return "public, no-cache" if max_age <= 0 else f"public, max-age={max_age}, must-revalidate"


def _matches(if_none_match: str, etag: str) -> bool:
    if if_none_match.strip() == "*":
        return True
    tags = (t.strip() for t in if_none_match.split(","))
    return any(t.removeprefix("W/") == etag for t in tags)


def conditional(request: Request, body: bytes, *, media_type: str, max_age: int) -> Response:
    etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
    headers = {"ETag": etag, "Cache-Control": cache_control(max_age)}
    inm = request.headers.get("if-none-match")
    if inm and _matches(inm, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def cached_json(request: Request, payload: Any, *, max_age: int) -> Response:
    return conditional(request, to_json(payload), media_type="application/json", max_age=max_age)


@declares(conditional=True)
def if_none_match(value: Annotated[str | None, Header(
        alias="If-None-Match", max_length=2048,
        description="An `ETag` from an earlier response (or `*`): when it still matches, the answer is 304 "
                    "Not Modified with no body.")] = None) -> str | None:
    """Router dependency of the cached reads: declares ``If-None-Match``, the ETag headers and 304 in the
    OpenAPI document (:func:`conditional` reads the header itself, so the value is only returned)."""
    return value
