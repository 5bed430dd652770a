"""Forwarding shopper-behaviour events to an external collector (``ANALYTICS_FORWARD_URL``): each writer flush
is one batch of events, POSTed as JSON in order, retried with exponential backoff, dropped after a bound."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

import httpx

from app.config import Settings
from app.core.ids import new_id_at
from app.core.metrics import ANALYTICS_FORWARD

log = logging.getLogger("app.analytics")

RETRY_STATUSES = frozenset({408, 425, 429})


def events_json(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events (``event_dict``, in time order) as the collector receives them: ``id`` (``<batch id>.<n>``, the
    batch id made from the first event's instant; stable across retries), ``kind``, ``at`` (ISO 8601 UTC with
    Z) and the ids and figures each carries (absent when empty)."""
    if not events:
        return []
    batch = new_id_at("anf", events[0]["at"])
    out = []
    for n, e in enumerate(events):
        item = {"id": f"{batch}.{n}", **{k: v for k, v in e.items() if k != "at"}}
        item["at"] = e["at"].isoformat().replace("+00:00", "Z")
        out.append(item)
    return out


class Forwarder:
    """Sends batches to ``ANALYTICS_FORWARD_URL`` one at a time, in order, with retries (see the module
    docstring). A batch is retried on a network error, a 5xx, 408, 425 or 429, and dropped on another 4xx."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.analytics_forward_url or ""
        self.batches: deque[list[dict[str, Any]]] = deque()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.client: httpx.AsyncClient | None = None

    def offer(self, events: list[dict[str, Any]]) -> None:
        """Queue one flush's events (``event_dict``, in time order) as one batch (the oldest batch is dropped
        when full)."""
        if not events:
            return
        if len(self.batches) >= self.settings.analytics_forward_queue_batches:
            dropped = self.batches.popleft()
            ANALYTICS_FORWARD.labels("dropped").inc(len(dropped))
        self.batches.append(events_json(events))
        self.wake.set()

    def start(self) -> None:
        headers = {"User-Agent": "amour-florals-analytics"}
        if self.settings.analytics_forward_token:
            headers["Authorization"] = f"Bearer {self.settings.analytics_forward_token.get_secret_value()}"
        self.client = httpx.AsyncClient(timeout=self.settings.analytics_forward_timeout_seconds, headers=headers)
        self.task = asyncio.create_task(self._run(), name="analytics-forwarder")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        for batch in self.batches:  # not retried after shutdown
            ANALYTICS_FORWARD.labels("dropped").inc(len(batch))
        self.batches.clear()
        if self.client is not None:
            await self.client.aclose()

    async def _run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.batches:
                await self._send(self.batches.popleft())

    async def _send(self, batch: list[dict[str, Any]]) -> None:
        s = self.settings
        assert self.client is not None
        for attempt in range(1, s.analytics_forward_max_attempts + 1):
            try:
                r = await self.client.post(self.url, json={"events": batch})
                if r.is_success:
                    ANALYTICS_FORWARD.labels("sent").inc(len(batch))
                    return
                if r.status_code < 500 and r.status_code not in RETRY_STATUSES:
                    log.warning("analytics collector refused a batch of %s events: HTTP %s", len(batch),
                                r.status_code)
                    break
                error = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            if attempt < s.analytics_forward_max_attempts:
                ANALYTICS_FORWARD.labels("retry").inc(len(batch))
                log.info("analytics collector failed (%s); retry %s of %s", error, attempt,
                         s.analytics_forward_max_attempts - 1)
                await asyncio.sleep(s.analytics_forward_backoff_seconds * 2 ** (attempt - 1))
        ANALYTICS_FORWARD.labels("dropped").inc(len(batch))
        log.warning("analytics batch of %s events dropped: the collector did not take it", len(batch))
