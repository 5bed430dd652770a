"""Live-event streams (Server-Sent Events through sse-starlette): snapshot first, then the bus's messages.

A stream subscribes to its bus channels *before* reading the current state, sends that state as its first
events, then forwards messages. Every message carries an ordering ``key`` and ``seq`` (a product size's
``stock_seq``, an order's ``version``); the stream remembers the highest ``seq`` it sent per key and drops
anything not newer, so an event published before the snapshot, or by another process out of order, never
shows an older state. A reconnection (with or without ``Last-Event-ID``) simply starts with the current
state again.

Bounds: concurrent streams per IP and per user (``StreamSlots``), a maximum lifetime, a bounded queue per
stream (a client that falls behind is cut off with ``end: overflow``; sse-starlette's ``send_timeout``
closes one whose socket stops accepting bytes), a keep-alive comment every EVENTS_PING_SECONDS. A signed-in
stream re-checks its account and session every EVENTS_RECHECK_SECONDS and ends with ``end: revoked``. On
server shutdown sse-starlette sets the stream's shutdown event: the stream sends ``end: shutdown`` and
closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from beanie import SortDirection
from pydantic_core import to_json
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from app.config import Settings
from app.core.bus import EventBus, Message, Subscription
from app.core.errors import TooManyRequests
from app.core.ids import new_id
from app.models.catalog import Product
from app.models.order import Order, OrderStatus
from app.schemas.events import MAX_STOCK_PRODUCTS
from app.services.inventory import low_stock_report, stock_view
from app.services.order_events import order_view

log = logging.getLogger("app.events")

MAX_KEYS_REMEMBERED = 10_000
BOARD_ROWS = 50
RETRY_MS = {"max-lifetime": 500, "overflow": 1000, "resync": 1000, "shutdown": 3000}


@dataclass(frozen=True, slots=True)
class Out:
    """One event to send: its type, JSON data and (for ordering) key and sequence."""

    event: str
    data: Any
    key: str | None = None
    seq: int | None = None


Snapshot = Callable[[], Awaitable[list[Out]]]
Check = Callable[[], Awaitable[bool]]


# --- snapshots ----------------------------------------------------------------------------------------------
async def stock_snapshot(product_ids: list[str]) -> list[Out]:
    """The current availability of every size of the known products among ``product_ids`` (unknown ids send
    nothing), in the order asked."""
    docs = {d["_id"]: d async for d in Product.get_pymongo_collection().find(
        {"_id": {"$in": product_ids[:MAX_STOCK_PRODUCTS]}}, {"stock": 1, "status": 1, "sizes": 1, "stock_seq": 1})}
    out = []
    for pid in product_ids:
        doc = docs.get(pid)
        if doc is None:
            continue
        for size in doc.get("sizes", []):
            view = stock_view(pid, size["code"], doc.get("stock"), doc.get("status", ""))
            out.append(Out("stock", view, f"{pid}:{size['code']}", int(doc.get("stock_seq") or 0)))
    return out


def order_snapshot(order: Order) -> Snapshot:
    async def load() -> list[Out]:
        current = await Order.get(order.id) or order
        return [Out("order", order_view(current), current.id, current.version)]

    return load


async def board_snapshot() -> list[Out]:
    """Orders waiting to be prepared and low stock; the orders' versions seed the ordering of later events."""
    orders = await Order.find({"status": {"$in": [OrderStatus.paid.value, OrderStatus.confirmed.value]}}) \
        .sort([("created_at", SortDirection.DESCENDING)]).limit(BOARD_ROWS).to_list()
    low = [{k: r[k] for k in ("product_id", "name", "size", "available", "threshold")}
           for r in (await low_stock_report())[:BOARD_ROWS]]
    board = Out("board", {"orders": [order_view(o) for o in orders], "low_stock": low})
    return [board, *(Out("", None, o.id, o.version) for o in orders)]  # event "": remembered, not sent


# --- concurrency limits ----------------------------------------------------------------------------------
ACQUIRE = """
local now, lease, id = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then return i end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + lease, id)
  redis.call('EXPIRE', key, math.ceil(lease) + 1)
end
return 0
"""


class StreamSlots:
    """Open streams per key (``ip:<addr>``, ``user:<id>``), shared by every API process through Redis: a
    sorted set of stream ids scored by the end of their lease, which a running stream renews (so the slot
    of a stream whose process died frees itself). In memory without Redis, or while Redis is down."""

    def __init__(self, redis: Any, namespace: str, lease_seconds: float) -> None:
        self.redis = redis
        self.prefix = f"af:{namespace}:streams:"
        self.lease = lease_seconds
        self._script = redis.register_script(ACQUIRE) if redis is not None else None
        self._local: dict[str, dict[str, float]] = {}

    async def acquire(self, stream_id: str, limits: list[tuple[str, int]]) -> str | None:
        """Take a slot under every key, or none: the key whose limit is reached, or None when taken."""
        now = time.time()
        if self._script is not None:
            try:
                refused = await self._script(keys=[self.prefix + k for k, _ in limits],
                                             args=[now, self.lease, stream_id, *(n for _, n in limits)])
                return limits[int(refused) - 1][0] if int(refused) else None
            except Exception as exc:
                log.warning("stream limits: redis unavailable (%s); counting in this process", exc)
        for key, limit in limits:
            held = {s: t for s, t in self._local.get(key, {}).items() if t > now}
            self._local[key] = held
            if len(held) >= limit:
                return key
        for key, _ in limits:
            self._local[key][stream_id] = now + self.lease
        return None

    async def renew(self, stream_id: str, keys: list[str]) -> None:
        until = time.time() + self.lease
        for key in keys:
            if stream_id in self._local.get(key, {}):
                self._local[key][stream_id] = until
        if self.redis is not None:
            with contextlib.suppress(Exception):
                async with self.redis.pipeline(transaction=False) as pipe:
                    for key in keys:
                        pipe.zadd(self.prefix + key, {stream_id: until}, xx=True)
                    await pipe.execute()

    async def release(self, stream_id: str, keys: list[str]) -> None:
        for key in keys:
            self._local.get(key, {}).pop(stream_id, None)
        if self.redis is not None:
            with contextlib.suppress(Exception):
                async with self.redis.pipeline(transaction=False) as pipe:
                    for key in keys:
                        pipe.zrem(self.prefix + key, stream_id)
                    await pipe.execute()


# --- the streams ------------------------------------------------------------------------------------------
class StreamService:
    """Opens streams for the routers: limits, subscription, snapshot, forwarding, re-checks, lifetime."""

    def __init__(self, settings: Settings, bus: EventBus, slots: StreamSlots) -> None:
        self.settings = settings
        self.bus = bus
        self.slots = slots

    async def open(self, *, channels: list[str], snapshot: Snapshot, ip: str, user_id: str | None = None,
                   still_allowed: Check | None = None) -> EventSourceResponse:
        """A streaming response, or 429 ``too-many-streams`` (nothing is held then)."""
        s = self.settings
        limits = [(f"ip:{ip}", s.events_max_streams_per_ip)]
        if user_id is not None:
            limits.append((f"user:{user_id}", s.events_max_streams_per_user))
        stream_id = new_id("stm")
        refused = await self.slots.acquire(stream_id, limits)
        if refused is not None:
            raise TooManyRequests("Too many open event streams; close one first.", code="too-many-streams",
                                  headers={"Retry-After": "5"})
        keys = [k for k, _ in limits]
        sub = self.bus.subscribe(channels)
        shutdown = _CloseOnShutdown(sub)

        async def cleanup() -> None:  # also runs when the body never started
            sub.close("closed")
            await self.slots.release(stream_id, keys)

        body = self._run(sub, snapshot, still_allowed, stream_id, keys)
        return EventSourceResponse(body, ping=s.events_ping_seconds, send_timeout=s.events_send_timeout_seconds,
                                   shutdown_event=shutdown,  # type: ignore[arg-type]  # only its .set() is called
                                   shutdown_grace_period=1.0,
                                   background=BackgroundTask(cleanup), headers={"Cache-Control": "no-store"})

    async def _run(self, sub: Subscription, snapshot: Snapshot, still_allowed: Check | None,
                   stream_id: str, keys: list[str]) -> AsyncIterator[ServerSentEvent | bytes]:
        s = self.settings
        seen: dict[str, int] = {}
        try:
            for out in await snapshot():
                if out.key is not None and out.seq is not None:
                    seen[out.key] = out.seq
                if out.event:
                    yield _sse(out.event, out.data, new_id("sev"))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + s.events_max_stream_seconds
            next_check = loop.time() + s.events_recheck_seconds
            while True:
                msg: Message | None = None
                try:
                    async with asyncio.timeout_at(min(deadline, next_check)):  # no task per wait (unlike wait_for)
                        msg = await sub.get()
                    if msg is None:
                        yield _end(sub.closed_reason or "shutdown")
                        return
                except TimeoutError:
                    pass
                if msg is not None and _newer(msg, seen):
                    yield _wire(msg)
                now = loop.time()
                if now >= deadline:
                    yield _end("max-lifetime")
                    return
                if now >= next_check:
                    if still_allowed is not None and not await still_allowed():
                        yield _end("revoked")
                        return
                    await self.slots.renew(stream_id, keys)
                    next_check = now + s.events_recheck_seconds
        finally:
            sub.close("closed")
            await self.slots.release(stream_id, keys)


class _CloseOnShutdown:
    """Given to sse-starlette as the stream's ``shutdown_event``: when the server shuts down it calls ``set()``,
    which closes the subscription, so the stream sends ``end: shutdown`` and finishes within the grace period
    (no task per stream waiting on an event)."""

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub

    def set(self) -> None:
        self.sub.close("shutdown")


def _newer(msg: Message, seen: dict[str, int]) -> bool:
    if msg.key is None or msg.seq is None:
        return True
    if msg.seq <= seen.get(msg.key, -1):
        return False
    seen[msg.key] = msg.seq
    if len(seen) > MAX_KEYS_REMEMBERED:
        seen.pop(next(iter(seen)))
    return True


_encoded: OrderedDict[str, bytes] = OrderedDict()


def _wire(msg: Message) -> bytes:
    """The message as SSE bytes, encoded once for all the streams that forward it (a small LRU by id)."""
    raw = _encoded.get(msg.id)
    if raw is None:
        raw = _encoded[msg.id] = _sse(msg.event, msg.data, msg.id).encode()
        if len(_encoded) > 256:
            _encoded.popitem(last=False)
    return raw


def _sse(event: str, data: Any, event_id: str, retry: int | None = None) -> ServerSentEvent:
    return ServerSentEvent(data=to_json(data).decode(), event=event, id=event_id, retry=retry)


def _end(reason: str) -> ServerSentEvent:
    return _sse("end", {"reason": reason}, new_id("sev"), RETRY_MS.get(reason))


class StreamsOwner(Protocol):
    """What holds the app's one stream service (``app.composition.Runtime``, which builds it on first use)."""

    @property
    def streams(self) -> StreamService: ...


def get_stream_service(owner: StreamsOwner) -> StreamService:
    """One per app (its slots remember this process's streams), held by ``owner``."""
    return owner.streams
