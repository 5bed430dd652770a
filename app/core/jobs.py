"""Leased work items, safe with several API processes on one database.

A worker claims one due item with a single atomic ``find_one_and_update`` that sets a lease
(owner + expiry). Nothing is taken twice while the lease holds, and an item whose process died
mid-work is claimed again once its lease has expired.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from pymongo import ReturnDocument

from app.core.clock import utcnow
from app.core.ids import new_id

log = logging.getLogger("app.jobs")

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}:{new_id('wrk')[-8:]}"


async def claim(collection: Any, due: dict[str, Any], *, lease_seconds: float,
                sort_key: str = "next_attempt_at") -> dict[str, Any] | None:
    now = utcnow()
    query = {"$and": [due, {"$or": [{"lease_until": None}, {"lease_until": {"$lt": now}}]}]}
    return await collection.find_one_and_update(
        query,
        {"$set": {"lease_owner": WORKER_ID, "lease_until": now + timedelta(seconds=lease_seconds)}},
        sort=[(sort_key, 1)],
        return_document=ReturnDocument.AFTER,
    )


def backoff(attempts: int, base: float = 5.0, cap: float = 3600.0) -> timedelta:
    return timedelta(seconds=min(cap, base * (2 ** max(0, attempts - 1))))


Job = Callable[[], Awaitable[int]]


class JobRunner:
    """Runs registered jobs in the API process: each job drains what is due, then sleeps or is woken."""

    def __init__(self, poll_seconds: float) -> None:
        self.poll = poll_seconds
        self.jobs: dict[str, Job] = {}
        self.wakeups: dict[str, asyncio.Event] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.stopping = False

    def register(self, name: str, job: Job) -> None:
        self.jobs[name] = job
        self.wakeups[name] = asyncio.Event()

    def wake(self, name: str) -> None:
        if name in self.wakeups:
            self.wakeups[name].set()

    def start(self) -> None:
        for name, job in self.jobs.items():
            self.tasks.append(asyncio.create_task(self._loop(name, job), name=f"job:{name}"))

    async def stop(self) -> None:
        # The flag ends a loop whose cancellation was swallowed inside a job (a library that turns
        # CancelledError into its own error while a network call is interrupted).
        self.stopping = True
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()

    async def _loop(self, name: str, job: Job) -> None:
        event = self.wakeups[name]
        while not self.stopping:
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job %s failed; retrying after the poll interval", name)
            event.clear()
            try:
                await asyncio.wait_for(event.wait(), timeout=self.poll)
            except TimeoutError:
                pass
