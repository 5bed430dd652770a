"""Live streams in tests: the app served by a real uvicorn server (httpx's ASGI transport buffers whole
responses, so it cannot read a stream), and a reader that collects a stream's events with bounded waits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from httpx_sse import ServerSentEvent, aconnect_sse

from app.core.embedded_mongo import free_port

WAIT = 10.0  # the longest any test waits for one event (a bound, not a measured speed)


@dataclass
class Served:
    base: str
    server: uvicorn.Server


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[Served]:
    """Serve ``app`` (its lifespan already running) on a free port; yields its base URL and the server."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None,
                                           access_log=False, timeout_graceful_shutdown=5))
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield Served(f"http://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=15)


class Stream:
    """An open event stream: ``await next()`` returns the next event (AssertionError after WAIT seconds)."""

    def __init__(self, client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None) -> None:
        self.client, self.url, self.headers = client, url, headers or {}
        self.events: asyncio.Queue[ServerSentEvent | None] = asyncio.Queue()
        self.response: httpx.Response | None = None
        self._cm: Any = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Stream:
        self._cm = aconnect_sse(self.client, "GET", self.url, headers=self.headers)
        source = await self._cm.__aenter__()
        self.response = source.response
        if self.response.status_code == 200:
            self._task = asyncio.create_task(self._read(source))
        else:
            await self.response.aread()
        return self

    async def _read(self, source: Any) -> None:
        try:
            async for sse in source.aiter_sse():
                if sse.event == "message" and not sse.data:
                    continue  # httpx-sse turns a keep-alive comment into an empty message
                await self.events.put(sse)
        except (httpx.HTTPError, asyncio.CancelledError):
            pass
        finally:
            await self.events.put(None)  # the server closed the stream

    async def __aexit__(self, *exc: Any) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._cm.__aexit__(*exc)

    async def next(self, timeout: float = WAIT) -> ServerSentEvent:
        try:
            sse = await asyncio.wait_for(self.events.get(), timeout)
        except TimeoutError:
            raise AssertionError(f"no event within {timeout}s on {self.url}") from None
        assert sse is not None, "the stream ended"
        return sse

    async def data(self, event: str, timeout: float = WAIT) -> dict[str, Any]:
        """The next event, which must be of type ``event``: its JSON data."""
        sse = await self.next(timeout)
        assert sse.event == event, (sse.event, sse.data)
        assert sse.id, "every event has an id"
        return json.loads(sse.data)

    async def closed(self, timeout: float = WAIT) -> None:
        """The server ends the stream (after any events still queued, which must be none)."""
        try:
            sse = await asyncio.wait_for(self.events.get(), timeout)
        except TimeoutError:
            raise AssertionError(f"the stream stayed open for {timeout}s") from None
        assert sse is None, (sse.event, sse.data)


async def ticket(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/events/tickets", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
async def live(app) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the test's app served by uvicorn (for streams; the ASGI ``client`` works beside it)."""
    async with serve(app) as served, httpx.AsyncClient(base_url=served.base, timeout=WAIT) as c:
        yield c
