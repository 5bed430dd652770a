"""The baseline of ``bench/run.py``: a bare FastAPI app (no middleware, cache, models or limits) on the same
database, with the routes each case module adds (``bare(app, db)`` in ``bench/cases/*.py``).

Its own routes: ``GET /ok`` returns ``{"ok": true}``; ``PUT /fixed/<name>`` stores a body that
``GET /fixed/<name>`` then returns as is (``Ctx.put_fixed``).
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from pymongo import AsyncMongoClient

from bench.cases import modules


def create() -> FastAPI:
    client: AsyncMongoClient = AsyncMongoClient(os.environ["BENCH_MONGO_URL"], tz_aware=True)
    fixed: dict[str, bytes] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await client.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/fixed/{name}")
    async def fixed_body(name: str) -> Response:
        return Response(fixed[name], media_type="application/json")

    @app.put("/fixed/{name}")
    async def put_fixed(name: str, request: Request) -> Response:
        fixed[name] = await request.body()
        return Response(status_code=204)

    db = client[os.environ["BENCH_DB"]]
    for module in modules():
        if hasattr(module, "bare"):
            module.bare(app, db)
    return app
