"""The event bus on a real Redis: fan-out between processes (two buses stand for two processes), bounded
subscriber queues, a Redis outage degrading to "no live events" (never failing the publisher) and the resync
after it, and the catalog version kept in memory and invalidated through the bus."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from app.core.bus import RESYNC, EventBus, Message
from app.core.embedded_mongo import free_port
from app.services.catalog_cache import CatalogCache
from tests.events_support import WAIT
from tests.services import RedisProcess
from tests.support import API, new_client


async def next_message(sub, timeout: float = WAIT) -> Message | None:
    try:
        return await asyncio.wait_for(sub.get(), timeout)
    except TimeoutError:
        raise AssertionError(f"no message within {timeout}s") from None


async def eventually(condition, what: str) -> None:
    for _ in range(int(WAIT / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(what)


@pytest.fixture
async def buses(redis_url):
    namespace = f"t_{uuid.uuid4().hex[:8]}"
    a, b = EventBus(redis_url, namespace=namespace), EventBus(redis_url, namespace=namespace)
    await a.start()
    await b.start()
    yield a, b
    await a.stop()
    await b.stop()


async def test_a_message_reaches_every_process_once(buses):
    a, b = buses
    assert a.live and b.live
    on_a, on_b = a.subscribe(["stock:x"]), b.subscribe(["stock:x", "stock:y"])
    a.publish("stock:x", "stock", {"available": 3}, key="x:standard", seq=7)
    got_b = await next_message(on_b)
    got_a = await next_message(on_a)
    assert got_a == got_b  # same id everywhere, no echo of A's own message through Redis
    assert (got_b.event, got_b.data, got_b.key, got_b.seq) == ("stock", {"available": 3}, "x:standard", 7)
    b.publish("stock:y", "stock", {"available": 1})
    assert (await next_message(on_b)).data == {"available": 1}
    assert on_a.queue.empty()  # not subscribed to stock:y


async def test_a_full_subscriber_is_closed_and_others_go_on(buses):
    a, _ = buses
    slow, fine = a.subscribe(["staff"], maxsize=3), a.subscribe(["staff"], maxsize=100)
    for i in range(5):
        a.publish("staff", "order.status", {"i": i})
    assert slow.closed_reason == "overflow" and slow.queue.qsize() == 1  # only the end marker is kept
    assert await slow.get() is None
    assert [(await fine.get()).data["i"] for _ in range(5)] == [0, 1, 2, 3, 4]
    assert a.subscriptions == 1


async def test_without_redis_messages_fan_out_in_memory():
    bus = EventBus(None, namespace="memory")
    await bus.start()
    sub = bus.subscribe(["order:1"])
    bus.publish("order:1", "order", {"status": "paid"})
    assert (await next_message(sub)).data == {"status": "paid"}
    assert bus.status()["transport"] == "memory" and bus.live
    await bus.stop()
    assert sub.closed_reason == "shutdown"


async def test_publishing_never_fails_or_blocks_when_redis_is_down():
    bus = EventBus(f"redis://127.0.0.1:{free_port()}/0", namespace="down")
    await bus.start(wait=0.5)
    assert not bus.live and bus.status()["status"] == "degraded"
    sub = bus.subscribe(["stock:x"])
    for _ in range(20_000):  # more than the outbox holds: dropped and counted, never buffered without bound
        bus.publish("stock:x", "stock", {"available": 1})
    assert bus._outbox.qsize() <= 10_000
    await eventually(lambda: bus.dropped >= 10_000, "messages not counted as dropped")
    assert sub.closed_reason == "overflow"  # this process's own subscriber still got them (and fell behind)
    await bus.stop()


async def test_an_outage_closes_streams_for_a_resync_and_recovery_is_automatic():
    redis = RedisProcess()
    url = redis.start()
    a, b = EventBus(url, namespace="outage"), EventBus(url, namespace="outage")
    resyncs: list[Message] = []
    b.on(RESYNC, resyncs.append)
    await a.start()
    await b.start()
    try:
        sub = b.subscribe(["staff"])
        redis.stop()
        assert await next_message(sub) is None and sub.closed_reason == "resync"  # events may be missed now
        await eventually(lambda: b.state == "down", "the outage was not noticed")
        assert b.status()["down_since"] is not None and len(resyncs) == 1
        a.publish("staff", "order.status", {"lost": True})  # never raises

        again = RedisProcess()
        again.port = redis.port
        again.start()
        redis = again
        await eventually(lambda: a.live and b.live, "the bus did not reconnect")
        assert len(resyncs) == 2  # after the outage too: what was published meanwhile never arrived
        fresh = b.subscribe(["staff"])
        a.publish("staff", "order.status", {"after": True})
        assert (await next_message(fresh)).data == {"after": True}
    finally:
        await a.stop()
        await b.stop()
        redis.stop()


async def test_ready_shows_the_bus(client, make_settings, app_factory, redis_url):
    r = await client.get(f"{API}/health/ready")
    assert r.json()["events"] == {
        "transport": "memory",
        "status": "ok",
        "down_since": None,
        "dropped": 0,
        "overflows": 0,
    }
    async with app_factory(make_settings(redis_url=redis_url)) as application, new_client(application) as c:
        events = (await c.get(f"{API}/health/ready")).json()["events"]
    assert (events["transport"], events["status"]) == ("redis", "ok")


async def test_catalog_version_is_read_once_then_kept_in_memory_until_a_bump_anywhere(buses, settings, redis_url):
    from redis.asyncio import Redis

    a_bus, b_bus = buses
    redis = Redis.from_url(redis_url)
    s = settings.model_copy(update={"mongodb_db": a_bus.prefix.split(":")[1], "catalog_version_ttl_seconds": 60})
    a, b = CatalogCache(s, redis, a_bus), CatalogCache(s, redis, b_bus)
    mgets = lambda info: info.get("cmdstat_mget", {}).get("calls", 0)  # noqa: E731
    before = mgets(await redis.info("commandstats"))
    first = await b.versions()
    for _ in range(20):
        assert await b.versions() == first
    assert mgets(await redis.info("commandstats")) - before == 1  # one Redis read for 21 requests

    await a.bump()  # a catalog write in another process
    await eventually(lambda: b._known is None, "the bump did not reach the other process")
    assert (await b.versions())[0] == first[0] + 1
    await a.bump_stock()
    await eventually(lambda: b._known is None, "the stock bump did not reach the other process")
    assert (await b.versions())[1] == first[1] + 1
    await redis.aclose()
