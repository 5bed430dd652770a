"""JSON responses with a strong ETag and Cache-Control; ``If-None-Match`` gets 304 Not Modified."""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic_core import to_json
from starlette.requests import Request
from starlette.responses import Response


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
