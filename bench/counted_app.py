"""The app under bench/checkout.py: ``app.main:app_factory`` (of whichever tree is first on ``sys.path``)
wrapped so that every response says how many MongoDB commands its request sent.

A PyMongo command listener (registered before the app connects) counts the commands started inside each
request's context and the wrapper adds ``X-Bench-Db-Commands: <n>``. Work outside a request (background
jobs, the event bus) is not counted. Used only by the benchmark, never by the app.

``BENCH_PROFILE=/path/file-%p.prof`` also profiles the process with cProfile (``%p``: its process id; CPU
time, not wall time: a send on a loopback socket to a busy database otherwise looks like our cost) and writes
the stats at lifespan shutdown (uvicorn re-raises SIGTERM after shutdown, so ``atexit`` never runs). Read them
with ``python -m pstats``. Note that cProfile counts each resumption of a coroutine as a call.
"""

from __future__ import annotations

import cProfile
import os
import time
from contextvars import ContextVar
from typing import Any

from pymongo import monitoring

_count: ContextVar[list[int] | None] = ContextVar("bench_db_commands", default=None)
HEADER = b"x-bench-db-commands"


class _Listener(monitoring.CommandListener):
    def started(self, event: monitoring.CommandStartedEvent) -> None:
        box = _count.get()
        if box is not None:
            box[0] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


monitoring.register(_Listener())


def create() -> Any:
    from app.main import app_factory

    # A cProfile of the process, written at lifespan shutdown; "%p" in the path becomes the process id, so that
    # both sides of bench/checkout.py (ours and the baseline) keep their own file.
    profile_path = os.environ.get("BENCH_PROFILE", "").replace("%p", str(os.getpid()))
    profile = cProfile.Profile(time.process_time) if profile_path else None  # CPU, not wall time
    if profile is not None:
        profile.enable()

    inner = app_factory()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" and profile is not None:
            async def dumping_send(message: dict[str, Any]) -> None:
                if message["type"] == "lifespan.shutdown.complete":
                    profile.disable()
                    profile.dump_stats(profile_path)
                await send(message)

            await inner(scope, receive, dumping_send)
            return
        if scope["type"] != "http":
            await inner(scope, receive, send)
            return
        box = [0]
        token = _count.set(box)
        body_started = False

        async def counted_send(message: dict[str, Any]) -> None:
            nonlocal body_started
            if message["type"] == "http.response.start" and not body_started:
                body_started = True
                message = {**message, "headers": [*message.get("headers", []), (HEADER, str(box[0]).encode())]}
            await send(message)

        try:
            await inner(scope, receive, counted_send)
        finally:
            _count.reset(token)

    return app
