"""Stream limits: concurrent streams per IP and per user, maximum lifetime, a bounded queue per slow client,
keep-alive pings, and streams closed cleanly when the server shuts down."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.core import bus
from app.models.order import DeliveryMethod, PaymentMethod
from tests.events_support import WAIT, Stream, serve, ticket
from tests.factories import line_for, make_product
from tests.stripe_fixtures import place_order
from tests.support import API, assert_problem


@pytest.fixture
def settings(make_settings):
    return make_settings(events_max_streams_per_ip=2, events_max_streams_per_user=1, events_recheck_seconds=0.2,
                         events_ping_seconds=0.3, events_queue_size=8)


def stock_url(product) -> str:
    return f"{API}/events/stock?product_id={product.id}"


async def test_concurrent_streams_per_ip_are_limited_and_freed_on_close(live):
    product = await make_product(stock={"standard": 1}, prices={"standard": 4500})
    async with Stream(live, stock_url(product)) as a, Stream(live, stock_url(product)) as b:
        await a.next(), await b.next()
        async with Stream(live, stock_url(product)) as refused:
            body = assert_problem(refused.response, 429, "too-many-streams")
            assert refused.response.headers["Retry-After"] and "close one" in body["detail"]
    for _ in range(int(WAIT / 0.05)):  # the server notices the disconnections and frees both slots
        async with Stream(live, stock_url(product)) as c, Stream(live, stock_url(product)) as d:
            if c.response.status_code == d.response.status_code == 200:
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the slots of closed streams were not freed")


async def test_concurrent_streams_per_user_are_limited(app, client, live, customer):
    user, headers = customer
    product = await make_product(stock={"standard": 5})
    order = await place_order(app, [line_for(product)], user_id=user.id, method=DeliveryMethod.pickup,
                              payment=PaymentMethod.pay_on_pickup)
    first = await ticket(client, headers, stream="order", order_id=order.id)
    second = await ticket(client, headers, stream="order", order_id=order.id)
    async with Stream(live, first["url"]) as s, Stream(live, second["url"]) as refused:
        await s.data("order")
        assert_problem(refused.response, 429, "too-many-streams")


async def test_a_stream_ends_after_its_maximum_lifetime(make_settings, app_factory):
    async with app_factory(make_settings(events_max_stream_seconds=0.5)) as application, serve(application) as live:
        product = await make_product(stock={"standard": 1}, prices={"standard": 4500})
        async with httpx.AsyncClient(base_url=live.base) as c, Stream(c, stock_url(product)) as s:
            await s.data("stock")
            end = await s.next()
            assert (end.event, end.data, end.retry) == ("end", '{"reason":"max-lifetime"}', 500)
            await s.closed()


async def test_a_client_too_far_behind_is_disconnected_not_buffered(live):
    product = await make_product(stock={"standard": 1}, prices={"standard": 4500})
    async with Stream(live, stock_url(product)) as s:
        await s.data("stock")
        current = bus.current()
        before = current.overflows
        for seq in range(1, 1000):  # published without yielding: the stream cannot keep up
            bus.publish(f"stock:{product.id}", "stock", {"n": seq}, key=f"{product.id}:standard", seq=seq)
        assert current.overflows == before + 1
        assert await s.data("end") == {"reason": "overflow"}  # nothing queued is sent after the cut
        await s.closed()


async def test_pings_keep_an_idle_stream_alive(live):
    product = await make_product(stock={"standard": 1}, prices={"standard": 4500})
    async with live.stream("GET", stock_url(product)) as r:
        lines = r.aiter_lines()
        seen: list[str] = []
        while not any(line.startswith(": ping") for line in seen):
            seen.append(await asyncio.wait_for(anext(lines), WAIT))
    assert any(line.startswith("event: stock") for line in seen)


async def test_server_shutdown_closes_streams_with_an_end_event(app):
    product = await make_product(stock={"standard": 1}, prices={"standard": 4500})
    async with serve(app) as live, httpx.AsyncClient(base_url=live.base) as c:
        async with Stream(c, stock_url(product)) as s:
            await s.data("stock")
            live.server.should_exit = True  # what SIGTERM does
            assert await s.data("end") == {"reason": "shutdown"}
            await s.closed()
