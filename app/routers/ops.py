"""Health checks and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.core.errors import Unauthorized
from app.core.metrics import render
from app.core.security import tokens_equal
from app.core.types import UtcDateTime

router = APIRouter(tags=["health"])
metrics_router = APIRouter(include_in_schema=False)


class Health(BaseModel):
    status: str


class EventsStatus(BaseModel):
    """The live-event bus (app/core/bus.py): ``degraded`` while Redis is unreachable (streams only get this
    process's events then); counters of messages not sent and of slow streams disconnected."""

    transport: Literal["memory", "redis"]
    status: Literal["ok", "degraded"]
    down_since: UtcDateTime | None = None
    dropped: int
    overflows: int


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]
    events: EventsStatus | None = None


@router.get("/health", response_model=Health, summary="Liveness")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready", response_model=Readiness, summary="Readiness: MongoDB and Redis reachable; the "
            "live-event bus's state in `events`",
            responses={503: {"model": Readiness}})
async def ready(request: Request) -> JSONResponse:
    rt = request.app.state.runtime
    checks: dict[str, str] = {}

    async def probe(name: str, coro: Awaitable[object]) -> None:
        try:
            await asyncio.wait_for(coro, timeout=2)
            checks[name] = "ok"
        except Exception:
            checks[name] = "down"

    await probe("mongodb", rt.mongo.admin.command("ping"))
    if rt.redis is not None:
        await probe("redis", rt.redis.ping())
    ok = all(v == "ok" for v in checks.values())
    body = Readiness(status="ok" if ok else "unavailable", checks=checks,
                     events=rt.bus.status() if rt.bus is not None else None)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ok else 503)


@metrics_router.get("/metrics")
async def metrics(request: Request) -> Response:
    token = request.app.state.settings.metrics_token
    if token is not None:
        sent = request.headers.get("authorization", "")
        if not tokens_equal(sent, f"Bearer {token.get_secret_value()}"):
            raise Unauthorized("Metrics need the METRICS_TOKEN bearer token.")
    body, media = render()
    return Response(body, media_type=media)
