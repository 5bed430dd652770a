"""Responses with a strong ETag and Cache-Control; ``If-None-Match`` gets 304 Not Modified.

Ready responses (``StoredResponse``: the encoded body, its ETag and headers) can be answered again without the
router: ``ResponseCacheMiddleware`` looks each GET up in a store by path and query string and, on a hit, sends
the stored bytes (or a 304) after the app's request guard (the default rate limit). Anything else — a miss, a
guard that refuses, an ``If-None-Match`` over its bound — goes through the app as usual, which answers exactly
as before (429, 422, ...). The store decides what a hit is (see app/services/catalog_cache.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol

from fastapi import Header
from pydantic_core import to_json
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.contract import declares

IF_NONE_MATCH_MAX = 2048


def cache_control(max_age: int) -> str:
    # max-age 0: clients and CDNs may keep a copy but must revalidate (cheap with the ETag): stock stays exact.
    return "public, no-cache" if max_age <= 0 else f"public, max-age={max_age}, must-revalidate"


def _matches(if_none_match: str, etag: str) -> bool:
    if if_none_match.strip() == "*":
        return True
    tags = (t.strip() for t in if_none_match.split(","))
    return any(t.removeprefix("W/") == etag for t in tags)


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


OnServe = Callable[[Request], None]


class StoredResponse:
    """A 200 response ready to send again: body, ETag, Cache-Control and media type, with its raw ASGI headers
    for 200 and for 304 computed once. ``route``/``endpoint`` are those the router matched (for the access log,
    metrics and the rate-limit key). ``on_serve(request)``, when set, runs each time it is answered (200 or
    304, by the route or from the store), e.g. to record a product view for shop analytics; it must not block."""

    __slots__ = ("body", "etag", "media_type", "max_age", "cache_control", "route", "endpoint", "ok_headers",
                 "nm_headers", "on_serve")

    def __init__(self, body: bytes, *, media_type: str, max_age: int, route: Any = None,
                 endpoint: Any = None, on_serve: OnServe | None = None) -> None:
        self.on_serve = on_serve
        self.body = body
        self.etag = etag_of(body)
        self.media_type = media_type
        self.max_age = max_age
        self.cache_control = cache_control(max_age)
        self.route = route
        self.endpoint = endpoint
        self.nm_headers = [(b"etag", self.etag.encode()), (b"cache-control", self.cache_control.encode())]
        self.ok_headers = [*self.nm_headers, (b"content-length", str(len(body)).encode()),
                           (b"content-type", media_type.encode())]

    def response(self, request: Request) -> Response:
        """The Starlette response for ``request``: 304 when its If-None-Match matches, else 200 with the body."""
        if self.on_serve is not None:
            self.on_serve(request)
        headers = {"ETag": self.etag, "Cache-Control": self.cache_control}
        inm = request.headers.get("if-none-match")
        if inm and _matches(inm, self.etag):
            return Response(status_code=304, headers=headers)
        return Response(self.body, media_type=self.media_type, headers=headers)


def conditional(request: Request, body: bytes, *, media_type: str, max_age: int) -> Response:
    return StoredResponse(body, media_type=media_type, max_age=max_age).response(request)


def cached_json(request: Request, payload: Any, *, max_age: int) -> Response:
    return conditional(request, to_json(payload), media_type="application/json", max_age=max_age)


@declares(conditional=True)
async def if_none_match(value: Annotated[str | None, Header(
        alias="If-None-Match", max_length=IF_NONE_MATCH_MAX,
        description="An `ETag` from an earlier response (or `*`): when it still matches, the answer is 304 "
                    "Not Modified with no body.")] = None) -> str | None:
    """Router dependency of the cached reads: declares ``If-None-Match``, the ETag headers and 304 in the
    OpenAPI document (:func:`conditional` reads the header itself, so the value is only returned)."""
    return value


def response_key(scope: Scope) -> str:
    """What identifies a GET in a response store: the path and the raw query string."""
    path: str = scope["path"]
    query: bytes = scope.get("query_string", b"")
    return path + "?" + query.decode("latin-1") if query else path


class ResponseStore(Protocol):
    async def find(self, key: str) -> StoredResponse | None:
        """The stored response for ``key`` when it may be sent as is, else None."""
        ...


class ResponseCacheMiddleware:
    """Answers a GET from ``store_of(app)`` when it holds a ready response for it (see the module docstring).

    ``guard(request)`` runs first with ``request.scope["endpoint"]`` set to the stored endpoint (the app's
    default rate limit); if it raises, the request goes through the app, whose answer is then authoritative.
    """

    def __init__(self, app: ASGIApp, *, store_of: Callable[[Any], ResponseStore | None],
                 guard: Callable[[Request], Awaitable[None]]) -> None:
        self.app = app
        self.store_of = store_of
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        store = self.store_of(scope["app"])
        stored = await store.find(response_key(scope)) if store is not None else None
        if stored is None:
            await self.app(scope, receive, send)
            return
        inm = None
        for k, v in scope["headers"]:
            if k == b"if-none-match":
                inm = v
                break
        if inm is not None and len(inm) > IF_NONE_MATCH_MAX:  # the route answers 422
            await self.app(scope, receive, send)
            return
        scope["route"], scope["endpoint"] = stored.route, stored.endpoint
        request = Request(scope, receive)  # one for the guard and the hook (its headers are parsed once)
        try:
            await self.guard(request)
        except Exception:
            await self.app(scope, receive, send)
            return
        if stored.on_serve is not None:
            stored.on_serve(request)
        if inm is not None and _matches(inm.decode("latin-1"), stored.etag):
            await send({"type": "http.response.start", "status": 304, "headers": list(stored.nm_headers)})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": list(stored.ok_headers)})
        await send({"type": "http.response.body", "body": stored.body})
