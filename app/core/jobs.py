"""Leased work items, safe with several API processes on one database.

A worker claims one due item with a single atomic ``find_one_and_update`` that sets a lease
``{"owner", "token", "until"}``. Nothing is taken twice while the lease holds, and an item whose process
died mid-work is claimed again once its lease has expired. ``release`` ends the lease (only the claim's
own token can), optionally holding the item for nobody until a retry time.

The lease is a sub-document on purpose: the embedded server stores a datetime written by a scalar
``$set`` as a naive string, which a range filter never matches again (a stranded item); inside a
sub-document it stays a date (tests/test_db_contract.py guards this).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from app.core.clock import utcnow
from app.core.ids import new_id

log = logging.getLogger("app.jobs")

STOP_TIMEOUT_SECONDS = 5.0
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}:{new_id('wrk')[-8:]}"


async def claim(collection: AsyncCollection[dict[str, Any]], due: dict[str, Any], *, lease_seconds: float,
                sort_key: str = "next_attempt_at") -> dict[str, Any] | None:
    """Atomically lease the first due item (in ``sort_key`` order) that nobody holds; None when none is."""
    now = utcnow()
    query = {"$and": [due, {"$or": [{"lease": None}, {"lease.until": {"$lt": now}}]}]}
    lease = {"owner": WORKER_ID, "token": new_id("lse"), "until": now + timedelta(seconds=lease_seconds)}
    return await collection.find_one_and_update(
        query, {"$set": {"lease": lease}}, sort=[(sort_key, 1)], return_document=ReturnDocument.AFTER,
    )


async def release(collection: AsyncCollection[dict[str, Any]], item: dict[str, Any], *,
                  changes: dict[str, Any] | None = None, retry_at: datetime | None = None,
                  where: dict[str, Any] | None = None) -> bool:
    """Apply ``changes`` to a claimed ``item`` and end its lease; with ``retry_at`` nobody may claim it
    before then; with ``where``, only if the item still matches it (e.g. a status someone else may have
    changed meanwhile). False when nothing was written: the lease was lost (it expired and another worker
    claimed the item) or ``where`` no longer holds."""
    lease = None if retry_at is None else {"owner": None, "token": None, "until": retry_at}
    res = await collection.update_one({**(where or {}), "_id": item["_id"], "lease.token": item["lease"]["token"]},
                                      {"$set": {**(changes or {}), "lease": lease}})
    return res.matched_count == 1


def backoff(attempts: int, base: float = 5.0, cap: float = 3600.0) -> timedelta:
    return timedelta(seconds=min(cap, base * (2 ** max(0, attempts - 1))))


Job = Callable[[], Awaitable[int]]


class JobRunner:
    """Runs registered jobs in the API process. A job handles a bounded amount of what is due and returns how
    much it handled: while that is above 0 it runs again at once; at 0 it sleeps its poll interval or until
    it is woken (``wake``)."""

    def __init__(self, poll_seconds: float) -> None:
        self.poll = poll_seconds
        self.jobs: dict[str, Job] = {}
        self.polls: dict[str, float] = {}
        self.wakeups: dict[str, asyncio.Event] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.stopping = False

    def register(self, name: str, job: Job, *, poll_seconds: float | None = None) -> None:
        """Run ``job`` under ``name``; it sleeps ``poll_seconds`` (default: the runner's) when idle."""
        self.jobs[name] = job
        self.polls[name] = poll_seconds if poll_seconds is not None else self.poll
        self.wakeups[name] = asyncio.Event()

    def wake(self, name: str) -> None:
        if name in self.wakeups:
            self.wakeups[name].set()

    def start(self) -> None:
        for name, job in self.jobs.items():
            self.tasks.append(asyncio.create_task(self._loop(name, job), name=f"job:{name}"))

    async def stop(self) -> None:
        """Cancel the jobs and wait for them, but not forever: a job stuck in a call that does not react to
        cancellation must not hang shutdown (its lease expires and another process takes the item)."""
        # The flag ends a loop whose cancellation was swallowed inside a job (a library that turns
        # CancelledError into its own error while a network call is interrupted).
        self.stopping = True
        for t in self.tasks:
            t.cancel()
        if self.tasks:
            _, stuck = await asyncio.wait(self.tasks, timeout=STOP_TIMEOUT_SECONDS)
            for t in stuck:
                log.warning("job task %s did not stop within %ss", t.get_name(), STOP_TIMEOUT_SECONDS)
        self.tasks.clear()

    async def _loop(self, name: str, job: Job) -> None:
        event = self.wakeups[name]
        while not self.stopping:
            event.clear()  # a wake-up arriving while the job runs is kept for the next round
            handled = 0
            try:
                handled = await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job %s failed; retrying after the poll interval", name)
            if handled:
                await asyncio.sleep(0)  # more may be due: go on, letting other tasks run first
                continue
            try:
                await asyncio.wait_for(event.wait(), timeout=self.polls[name])
            except TimeoutError:
                pass
