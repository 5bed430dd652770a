"""Benchmark cases for ``bench/run.py``: one module per area, found automatically (no list to edit).

A case module in this package may define any of these (all optional):

``DATASETS: dict[str, Seed]``
    Named data sets, ``async def seed(ctx: Ctx) -> None`` each. ``ctx.db`` is a fresh, empty database on
    ``ctx.mongo_url``; Beanie is initialised on it (documents and raw PyMongo both work). The runner seeds each
    data set once and runs every module's cases on it; the default data set is ``catalog-320``
    (``bench/cases/catalog.py``: the demo catalog and four copies, 320 products).

``async def cases(ctx: Ctx) -> list[Case]``
    Called once per data set and Redis mode, after both servers answer: ``ctx.dataset`` names the data set
    (return ``[]`` for those a module does not use), ``ctx.ours`` / ``ctx.bare`` are base URLs, ``ctx.redis_url``
    is our app's REDIS_URL (None in the local mode). Use ``await ctx.put_fixed(name, body)`` to make the bare
    app answer ``GET /fixed/<name>`` with exactly those bytes.

``def around(ctx: Ctx) -> ContextManager[dict[str, str]]``
    Entered before the two servers start (per data set and Redis mode) and left after they stop: start what
    our app needs beside the database (e.g. a local Stripe double) and yield the environment variables to add
    to our app's (e.g. ``{"STRIPE_API_BASE": ...}``).

``def bare(app: FastAPI, db: AsyncDatabase) -> None``
    Adds this module's routes to the bare FastAPI app (``bench/bare_app.py``): the minimal equivalent of our
    endpoint on the same database, written the way the framework's documentation shows (raw PyMongo).

A ``Case`` names what to load on each side and the least acceptable ratio of our requests/s to the bare app's::

    Case("product detail", ours=[f"/api/v1/products/{s}" for s in slugs], bare=[f"/raw/products/{i}" ...],
         target=0.8)

``ours`` and ``bare`` are a path, a ``Req`` (method, headers, body) or a list of them; wrk cycles through a
list, one request after the other on each connection. ``lua`` replaces the generated wrk script of a side
entirely (for requests that depend on earlier answers). ``report`` is awaited after the case's rounds and its
text printed under the row (e.g. database round trips counted during the case).

Our app keeps every catalog answer ready (bytes and ETag, by path and query string) and its cached views by
normalized query: a list of requests that wrk cycles through is cached after the first cycle. To measure
misses, make every request different (e.g. a ``ours_lua`` script drawing bounds with ``math.random``). The bare
app's own routes are ``/ok``, ``/fixed/<name>`` and, from ``catalog.py``, ``/raw/products/<id>``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import ModuleType

import httpx


@dataclass(frozen=True)
class Req:
    """One HTTP request of a case (wrk sends it as is)."""

    path: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


Side = str | Req | list[str | Req]


@dataclass
class Case:
    """One comparison: ``ours`` against ``bare``, both under wrk with ``connections`` connections."""

    name: str
    ours: Side
    bare: Side
    target: float | None  # least acceptable ours/bare requests/s; None: reported only
    connections: int = 16
    ours_lua: str | None = None
    bare_lua: str | None = None
    report: Callable[[], Awaitable[str | None]] | None = None

    @staticmethod
    def requests(side: Side) -> list[Req]:
        items = side if isinstance(side, list) else [side]
        return [i if isinstance(i, Req) else Req(i) for i in items]


@dataclass
class Ctx:
    """What the runner knows when it seeds a data set or asks a module for its cases."""

    dataset: str
    mongo_url: str
    db: str
    mode: str = "local"  # "local" (no REDIS_URL) or "redis"
    redis_url: str | None = None
    ours: str = ""
    bare: str = ""

    async def put_fixed(self, name: str, body: bytes) -> None:
        """Make the bare app answer ``GET /fixed/<name>`` with ``body`` (application/json)."""
        async with httpx.AsyncClient(base_url=self.bare) as client:
            r = await client.put(f"/fixed/{name}", content=body)
            r.raise_for_status()


Seed = Callable[[Ctx], Awaitable[None]]


def modules() -> list[ModuleType]:
    """Every case module of this package, in name order."""
    return [importlib.import_module(f"{__name__}.{m.name}") for m in sorted(pkgutil.iter_modules(__path__),
                                                                          key=lambda m: m.name)]
