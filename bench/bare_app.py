"""The baseline for bench/catalog.py: a bare FastAPI app with no middleware, cache or models."""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Response
from pymongo import AsyncMongoClient


def create() -> FastAPI:
    fixed = Path(os.environ["BENCH_FIXED_FILE"]).read_bytes()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state["client"] = AsyncMongoClient(os.environ["BENCH_MONGO_URL"], tz_aware=True)
        state["products"] = state["client"][os.environ["BENCH_DB"]]["products"]
        yield
        await state["client"].close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/raw/{product_id}")
    async def raw(product_id: str) -> Any:
        doc = await state["products"].find_one({"_id": product_id})
        doc["created_at"] = doc["created_at"].isoformat()
        doc["updated_at"] = doc["updated_at"].isoformat()
        return doc

    @app.get("/fixed")
    async def fixed_body() -> Response:
        return Response(fixed, media_type="application/json")

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    return app
