"""Route matching that skips the routers a path cannot reach.

FastAPI (0.16x) matches a request by asking every included router in turn, and each of them tries every
route it holds, with some bookkeeping per route: with about 110 routes in 15 routers that was 38 % of the
py-spy samples of ``/api/v1/health`` (the last router) under ``wrk``. ``guard_included_routers`` gives each
included router of the app a check that runs first: the literal start of each of its paths (the text
before the first ``{``), tested with one ``str.startswith``. A path that starts with none of them cannot
match any route of that router, so the router is skipped; anything else is matched by FastAPI as before.
The answer for every path is the same with and without the guards (tests/test_routing.py proves it route by
route); only the work differs.

It relies on FastAPI's internal ``_IncludedRouter``; when that is missing (another FastAPI version) or a
router holds a route whose path is unknown, that router (or the app) is left unguarded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.routing import Match
from starlette.types import Scope

log = logging.getLogger("app.routing")

try:
    from fastapi.routing import _IncludedRouter
except ImportError:  # pragma: no cover - another FastAPI version: no guards
    _IncludedRouter = None  # type: ignore[assignment,misc]  # the class is absent there

try:
    from starlette._utils import get_route_path
except ImportError:  # pragma: no cover - an older Starlette: the path as it came
    def get_route_path(scope: Scope) -> str:
        path: str = scope["path"]
        return path


class PrefixGuard:
    """``matches`` of one included router: NONE at once for an HTTP path outside ``prefixes``, else the
    router's own ``matches`` (kept as ``inner``)."""

    __slots__ = ("inner", "prefixes")

    def __init__(self, inner: Callable[[Scope], tuple[Match, Scope]], prefixes: tuple[str, ...]) -> None:
        self.inner = inner
        self.prefixes = prefixes

    def __call__(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and not get_route_path(scope).startswith(self.prefixes):
            return Match.NONE, {}
        return self.inner(scope)


def _paths(router: Any, context: Any) -> list[str] | None:
    """The full path of every route ``router`` reaches through ``context`` (its include prefix), read from the
    routes themselves: asking FastAPI for the effective routes would build every route's dependencies and
    models at once (~0.4 s of CPU per app), which it otherwise does lazily, per route, on first use."""
    if getattr(router, "_low_priority_routes", None):
        return None
    paths: list[str] = []
    for route in router.routes:
        if isinstance(route, _IncludedRouter):
            inner = _paths(route.original_router, context.combine(route.include_context))
            if inner is None:
                return None
            paths.extend(inner)
        elif isinstance(getattr(route, "path", None), str):
            paths.append(context.path_for(route))
        else:
            return None
    return paths


def _prefixes(router: Any) -> tuple[str, ...] | None:
    paths = _paths(router.original_router, router.include_context)
    if paths is None:
        return None
    found: set[str] = set()
    for path in paths:
        if not path.startswith("/"):
            return None
        found.add(path.split("{", 1)[0])
    # A prefix that starts with another adds nothing to startswith.
    return tuple(p for p in sorted(found) if not any(p != q and p.startswith(q) for q in found))


def guard_included_routers(app: FastAPI) -> int:
    """Install a ``PrefixGuard`` on every router included in ``app`` (call once all routes are added).
    Returns how many routers were guarded."""
    if _IncludedRouter is None:
        return 0
    guarded = 0
    for route in app.router.routes:
        if not isinstance(route, _IncludedRouter) or isinstance(route.__dict__.get("matches"), PrefixGuard):
            continue
        try:
            prefixes = _prefixes(route)
        except Exception:  # pragma: no cover - internals changed: leave this router as it is
            log.warning("routing: router %r left unguarded", route, exc_info=True)
            continue
        if prefixes:
            # An instance attribute on purpose: it shadows the method.
            route.matches = PrefixGuard(route.matches, prefixes)  # type: ignore[method-assign]  # see above
            guarded += 1
    return guarded
