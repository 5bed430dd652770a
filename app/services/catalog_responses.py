"""Ready responses of the public catalog, the part of ``CatalogCache`` (app/services/catalog_cache.py) that
keeps whole answers.

A catalog GET's encoded body and ETag are kept (``render``), keyed by path and query
string, with the versions they were built from, whether they used stock, and the earliest expiry among
what they were built from. ``find`` gives one back while all of that holds (stale within the stale window,
re-rendered once in the background), and ``app.core.http_cache.ResponseCacheMiddleware`` sends it without
routing, validation or serialisation.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from typing import Any

from pydantic_core import to_json
from starlette.requests import Request

from app.core.http_cache import OnServe, StoredResponse, response_key

pinned_versions_var: ContextVar[tuple[int, int] | None] = ContextVar("catalog_versions", default=None)
# While a response is rendered: what it is built from (earliest expiry, whether it read stock).
built_from_var: ContextVar[Ingredients | None] = ContextVar("catalog_built_from", default=None)
# In a background re-render: never serve a stale entry, load it (or join the load in flight).
fresh_only_var: ContextVar[bool] = ContextVar("catalog_fresh_only", default=False)


class Ingredients:
    """What a rendered response was built from: the earliest ``fresh_until`` and whether stock was read."""

    __slots__ = ("fresh_until", "stock")

    def __init__(self) -> None:
        self.fresh_until = float("inf")
        self.stock = False

    def add(self, fresh_until: float, stock: bool) -> None:
        if fresh_until < self.fresh_until:
            self.fresh_until = fresh_until
        self.stock = self.stock or stock


class Rendered(StoredResponse):
    """A stored catalog response and what it depends on."""

    __slots__ = ("versions", "uses_stock", "fresh_until", "produce", "refreshing")

    def __init__(self, body: bytes, *, media_type: str, max_age: int, route: Any, endpoint: Any,
                 versions: tuple[int, int], built_from: Ingredients,
                 produce: Callable[[], Awaitable[Any]], on_serve: OnServe | None = None) -> None:
        super().__init__(body, media_type=media_type, max_age=max_age, route=route, endpoint=endpoint,
                         on_serve=on_serve)
        self.versions = versions
        self.uses_stock = built_from.stock
        self.fresh_until = built_from.fresh_until
        self.produce = produce
        self.refreshing = False


class ReadyResponses:
    """Keeps rendered catalog responses (``render``) and gives them back while current (``find``). Mixed into
    ``CatalogCache``, which provides the versions, the pinning and the background tasks used here."""

    stale: float
    max_entries: int
    max_response_bytes: int
    _response_bytes: int
    _responses: OrderedDict[str, Rendered]

    async def versions(self) -> tuple[int, int] | None:
        raise NotImplementedError

    def pinned(self) -> AbstractAsyncContextManager[None]:
        raise NotImplementedError

    def _keep(self, task: asyncio.Task[Any]) -> None:
        raise NotImplementedError

    def _monotonic(self) -> float:
        raise NotImplementedError

    async def render(self, request: Request, produce: Callable[[], Awaitable[Any]], *, max_age: int,
                     media_type: str = "application/json",
                     on_serve: Callable[[Any], OnServe | None] | None = None) -> StoredResponse:
        """Build the response of a catalog GET with ``produce()`` (a JSON-compatible payload, or a str for
        other media types) and keep it for ``find`` when the versions were pinned for the request.
        ``on_serve(payload)`` may return a hook run on every answer of this response, this one included
        (a stale refresh keeps the hook: it depends on the request, e.g. the product id, not on stock)."""
        versions = pinned_versions_var.get()
        built_from = Ingredients()
        token = built_from_var.set(built_from)
        try:
            payload = await produce()
        finally:
            built_from_var.reset(token)
        body = payload.encode() if isinstance(payload, str) else to_json(payload)
        hook = on_serve(payload) if on_serve is not None else None
        scope = request.scope
        if versions is None:  # Redis unreachable: nothing is cached
            return StoredResponse(body, media_type=media_type, max_age=max_age, on_serve=hook)
        rendered = Rendered(body, media_type=media_type, max_age=max_age, route=scope.get("route"),
                            endpoint=scope.get("endpoint"), versions=versions, built_from=built_from,
                            produce=produce, on_serve=hook)
        self._keep_response(response_key(scope), rendered)
        return rendered

    def _keep_response(self, key: str, rendered: Rendered) -> None:
        self._drop_response(key)
        self._responses[key] = rendered
        self._response_bytes += len(rendered.body)
        while len(self._responses) > self.max_entries or self._response_bytes > self.max_response_bytes:
            self._drop_response(next(iter(self._responses)))

    def _drop_response(self, key: str, only: Rendered | None = None) -> None:
        old = self._responses.get(key)
        if old is not None and (only is None or old is only):
            del self._responses[key]
            self._response_bytes -= len(old.body)

    async def find(self, key: str) -> Rendered | None:
        """The stored response for ``key`` while the versions it was built from are current (the stock version
        only if it used stock) and it is fresh, or stale within CATALOG_STALE_SECONDS (then it is re-rendered
        once in the background). None: the request goes through the router."""
        rendered = self._responses.get(key)
        if rendered is None:
            return None
        versions = await self.versions()
        if versions is None or versions[0] != rendered.versions[0] or (
                rendered.uses_stock and versions[1] != rendered.versions[1]):
            self._drop_response(key, rendered)  # versions only grow: it will never be current again
            return None
        now = self._monotonic()
        if now >= rendered.fresh_until:
            if now >= rendered.fresh_until + self.stale:
                return None
            if not rendered.refreshing:
                rendered.refreshing = True
                self._keep(asyncio.ensure_future(self._rerender(key, rendered)))
        self._responses.move_to_end(key)
        return rendered

    async def _rerender(self, key: str, old: Rendered) -> None:
        fresh = fresh_only_var.set(True)
        built_from = Ingredients()
        token = built_from_var.set(built_from)
        try:
            async with self.pinned():
                versions = pinned_versions_var.get()
                payload = await old.produce()
        except Exception:
            self._drop_response(key, old)  # e.g. the product is gone: the router answers the next request
            raise
        finally:
            built_from_var.reset(token)
            fresh_only_var.reset(fresh)
            old.refreshing = False
        if versions is None:
            return
        body = payload.encode() if isinstance(payload, str) else to_json(payload)
        if self._responses.get(key) is old:
            self._keep_response(key, Rendered(body, media_type=old.media_type, max_age=old.max_age, route=old.route,
                                              endpoint=old.endpoint, versions=versions, built_from=built_from,
                                              produce=old.produce, on_serve=old.on_serve))
