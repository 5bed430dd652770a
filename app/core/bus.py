"""The event bus: fan-out of small messages to live streams and to in-process listeners, across API processes.

``publish(channel, event, data)`` never blocks and never raises: it hands the message to this process's
subscribers at once and, with Redis (``REDIS_URL``), queues it for one background writer that sends it
with ``PUBLISH`` (a bounded queue: when Redis is slow or down, messages are dropped and counted, never
buffered without bound). One reader per process listens with a single ``PSUBSCRIBE`` and fans messages
from the other processes out to the local subscribers, so a process holds one Redis connection for any
number of streams. Without Redis the bus is in-memory, for a single-process deployment.

Channels are short strings: ``stock:<product id>``, ``order:<order id>``, ``staff``, ``catalog``.

A ``Subscription`` has a bounded queue. A subscriber that falls that far behind is closed with the reason
``overflow`` (its stream ends and the client reconnects to the current state) rather than buffered. Every
subscription is closed with ``resync`` when the Redis connection is lost and again when it comes back (what
was published meanwhile never arrived), and with ``shutdown`` when the bus stops. In-process listeners
(``on``) get the same ``bus.resync`` signal as a message on the channel ``RESYNC``.

Messages carry an ordering ``key`` and ``seq`` (e.g. a product's stock sequence, an order's version):
messages published by different processes can arrive out of order, and a consumer keeps the highest
``seq`` per ``key`` and drops anything older (see app/services/event_streams.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic_core import from_json, to_json
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.core.clock import utcnow
from app.core.ids import new_id

log = logging.getLogger("app.bus")

RESYNC = "bus.resync"
WRITER_BATCH = 200


@dataclass(frozen=True, slots=True)
class Message:
    """One published message. ``id`` is unique and the same on every process (it becomes the SSE id)."""

    channel: str
    event: str
    data: dict[str, Any]
    id: str
    key: str | None = None
    seq: int | None = None
    origin: str = ""


class Subscription:
    """A bounded queue of the messages of some channels. ``await get()`` returns the next message, or None
    once the subscription is closed (``closed_reason`` says why)."""

    def __init__(self, bus: EventBus, channels: frozenset[str], maxsize: int) -> None:
        self.bus = bus
        self.channels = channels
        self.queue: asyncio.Queue[Message | None] = asyncio.Queue(maxsize)
        self.closed_reason: str | None = None

    def deliver(self, msg: Message) -> None:
        if self.closed_reason is not None:
            return
        try:
            self.queue.put_nowait(msg)
        except asyncio.QueueFull:
            self.bus.overflows += 1
            self.close("overflow")

    def close(self, reason: str) -> None:
        """End the subscription (idempotent): the reader gets None after nothing else."""
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        self.bus._forget(self)
        while not self.queue.empty():  # free the memory and make room for the end marker
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    async def get(self) -> Message | None:
        if self.closed_reason is not None and self.queue.empty():
            return None
        return await self.queue.get()


class EventBus:
    """Publish/subscribe for one process; shared with the other processes through Redis when ``redis_url``
    is set. ``namespace`` keeps apps that share one Redis apart (the database name)."""

    def __init__(self, redis_url: str | None, *, namespace: str, queue_size: int = 64,
                 outbox_size: int = 10_000) -> None:
        self.redis_url = redis_url or None
        self.prefix = f"af:{namespace}:bus:"
        self.queue_size = queue_size
        self.origin = f"{os.getpid()}:{new_id('bus')[-10:]}"
        self._subs: dict[str, set[Subscription]] = {}
        self._listeners: dict[str, list[Callable[[Message], None]]] = {}
        self._outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(outbox_size)
        self._tasks: list[asyncio.Task[None]] = []
        self._publisher: Redis | None = None
        self.state = "memory" if self.redis_url is None else "connecting"
        self.down_since: datetime | None = None
        self.dropped = 0  # messages that could not be sent to Redis
        self.overflows = 0  # subscriptions closed because their reader fell behind
        self._first_attempt = asyncio.Event()

    # --- lifecycle --------------------------------------------------------------------------------
    async def start(self, wait: float = 2.0) -> None:
        """Start the Redis reader and writer; wait up to ``wait`` seconds for the first connection attempt (a
        Redis that is down leaves the bus degraded, not the app unable to start)."""
        if self.redis_url is None:
            return
        self._publisher = _client(self.redis_url)
        self._tasks = [asyncio.create_task(self._reader(), name="bus:reader"),
                       asyncio.create_task(self._writer(), name="bus:writer")]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), timeout=wait)

    async def stop(self) -> None:
        """Close every subscription (``shutdown``), flush what is queued for Redis (briefly), stop the tasks."""
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.close("shutdown")
        if self._tasks and not self._outbox.empty() and self.state == "live":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox.join(), timeout=1.0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks.clear()
        if self._publisher is not None:
            with contextlib.suppress(Exception):
                await self._publisher.aclose()

    @property
    def live(self) -> bool:
        """True when a message published anywhere reaches this process (always, without Redis)."""
        return self.state in ("memory", "live")

    def status(self) -> dict[str, Any]:
        """For /health/ready: transport, state, since when it is down, counters."""
        return {"transport": "memory" if self.redis_url is None else "redis",
                "status": "ok" if self.live else "degraded", "down_since": self.down_since,
                "dropped": self.dropped, "overflows": self.overflows}

    # --- publishing -------------------------------------------------------------------------------
    def publish(self, channel: str, event: str, data: dict[str, Any], *, key: str | None = None,
                seq: int | None = None) -> None:
        """Deliver to this process now and queue for the others; never blocks, never raises."""
        try:
            msg = Message(channel, event, data, new_id("sev"), key, seq, self.origin)
            self._dispatch(msg)
            if self.redis_url is not None:
                try:
                    self._outbox.put_nowait((self.prefix + channel, _encode(msg)))
                except asyncio.QueueFull:
                    self.dropped += 1
        except Exception:  # a bug here must never fail the write that published
            log.exception("event bus: publishing on %s failed", channel)

    def publish_in(self, pipe: Any, channel: str, event: str, data: dict[str, Any]) -> None:
        """Deliver to this process now and add the ``PUBLISH`` to a Redis pipeline the caller executes (so a
        write and its invalidation message go in one round trip, in that order)."""
        msg = Message(channel, event, data, new_id("sev"), None, None, self.origin)
        self._dispatch(msg)
        if self.redis_url is not None:
            pipe.publish(self.prefix + channel, _encode(msg))

    # --- subscribing ------------------------------------------------------------------------------
    def subscribe(self, channels: Iterable[str], maxsize: int | None = None) -> Subscription:
        sub = Subscription(self, frozenset(channels), maxsize or self.queue_size)
        for ch in sub.channels:
            self._subs.setdefault(ch, set()).add(sub)
        return sub

    def on(self, channel: str, callback: Callable[[Message], None]) -> None:
        """Call ``callback(msg)`` (synchronously, must not raise) for every message on ``channel``."""
        self._listeners.setdefault(channel, []).append(callback)

    @property
    def subscriptions(self) -> int:
        return len({id(s) for subs in self._subs.values() for s in subs})

    def _forget(self, sub: Subscription) -> None:
        for ch in sub.channels:
            subs = self._subs.get(ch)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[ch]

    def _dispatch(self, msg: Message) -> None:
        for sub in list(self._subs.get(msg.channel, ())):
            sub.deliver(msg)
        for callback in self._listeners.get(msg.channel, ()):
            try:
                callback(msg)
            except Exception:
                log.exception("event bus: listener on %s failed", msg.channel)

    def _resync(self) -> None:
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.close("resync")
        self._dispatch(Message(RESYNC, RESYNC, {}, new_id("sev"), origin=self.origin))

    # --- Redis ------------------------------------------------------------------------------------
    async def _reader(self) -> None:
        delay = 0.2
        while True:
            client = _client(self.redis_url, health_check_interval=5)
            pubsub = None
            try:
                pubsub = client.pubsub()
                await pubsub.psubscribe(self.prefix + "*")
                if self.state == "down":
                    log.warning("event bus: redis is back; live events flow again")
                    self._resync()  # what was published meanwhile never arrived
                self.state, self.down_since, delay = "live", None, 0.2
                self._first_attempt.set()
                while True:
                    raw = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                    if raw is None or raw.get("type") != "pmessage":
                        continue
                    msg = _decode(raw["data"])
                    if msg is not None and msg.origin != self.origin:
                        self._dispatch(msg)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.state != "down":
                    log.error("event bus: redis unavailable (%s): no live events until it is back", exc)
                    self.state, self.down_since = "down", utcnow()
                    self._resync()
                self._first_attempt.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    if pubsub is not None:
                        await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
                    await client.aclose()

    async def _writer(self) -> None:
        assert self._publisher is not None
        while True:
            batch = [await self._outbox.get()]
            while len(batch) < WRITER_BATCH and not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            try:
                async with self._publisher.pipeline(transaction=False) as pipe:
                    for channel, raw in batch:
                        pipe.publish(channel, raw)
                    await pipe.execute()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.dropped += len(batch)
                log.warning("event bus: %d message(s) not sent to redis: %s", len(batch), exc)
            finally:
                for _ in batch:
                    self._outbox.task_done()


def _client(url: str | None, health_check_interval: int = 0) -> Redis:
    # No retries inside redis-py: a reconnect must be seen here (messages were lost meanwhile: resync).
    return Redis.from_url(url or "", decode_responses=False, socket_timeout=None, socket_connect_timeout=2,
                          health_check_interval=health_check_interval, retry=Retry(NoBackoff(), 0))


def _encode(msg: Message) -> bytes:
    return to_json({"c": msg.channel, "e": msg.event, "d": msg.data, "i": msg.id, "k": msg.key, "s": msg.seq,
                    "o": msg.origin})


def _decode(raw: bytes) -> Message | None:
    try:
        d = from_json(raw)
        return Message(d["c"], d["e"], d["d"], d["i"], d.get("k"), d.get("s"), d.get("o", ""))
    except (ValueError, KeyError, TypeError):
        log.warning("event bus: ignored a malformed message")
        return None


# --- the process's bus ---------------------------------------------------------------------------------
# Beanie binds documents to one database per process, so a process serves one app; its lifespan installs
# the bus here, so that services publish without threading the runtime through every call.
_installed: list[EventBus] = []


def install(bus: EventBus) -> None:
    _installed.append(bus)


def uninstall(bus: EventBus) -> None:
    if bus in _installed:
        _installed.remove(bus)


def current() -> EventBus | None:
    return _installed[-1] if _installed else None


def publish(channel: str, event: str, data: dict[str, Any], *, key: str | None = None,
            seq: int | None = None) -> None:
    """Publish on the process's bus; a no-op when none runs (CLI commands, the seeder)."""
    bus = current()
    if bus is not None:
        bus.publish(channel, event, data, key=key, seq=seq)
