"""Two API processes behave as one service: live events cross processes, rate limits and the catalog cache
are shared, each email and each background job item is handled once, and concurrent checkouts split across
both processes never sell more than the stock."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from app.core.clock import utcnow
from app.models.catalog import Product
from app.models.inventory import StockMovement, StockReason
from app.models.order import Order
from app.models.outbox import OutboxEmail
from app.models.user import Role
from tests.conftest import create_user, login_headers
from tests.events_support import Stream, ticket
from tests.factories import make_product
from tests.stripe_fixtures import send_webhook
from tests.support import API, rewrite

pytestmark = pytest.mark.multiprocess


async def signed_in(client: httpx.AsyncClient, role: Role = Role.customer) -> tuple[Any, dict[str, str]]:
    user = await create_user(role)
    return user, await login_headers(client, user.email)


async def pickup_slot(client: httpx.AsyncClient) -> tuple[str, str]:
    options = (await client.get(f"{API}/delivery/options", params={"method": "pickup"})).json()
    for day in reversed(options["dates"]):  # a later day: no slot starts while the test runs
        for slot in day["slots"]:
            if day["available"] and slot["available"] and slot["remaining"] > 0:
                return day["date"], slot["code"]
    raise AssertionError(f"no pickup slot: {options}")


async def guest_cart(client: httpx.AsyncClient, product: Product, quantity: int = 1) -> dict[str, str]:
    r = await client.post(f"{API}/cart/items", json={"product_id": product.id, "size": "standard",
                                                     "quantity": quantity})
    assert r.status_code == 200, r.text
    return {"X-Cart-Token": r.headers["X-Cart-Token"]}


async def guest_checkout(client: httpx.AsyncClient, cart: dict[str, str], slot: tuple[str, str], payment: str,
                         email: str) -> httpx.Response:
    body = {"payment_method": payment,
            "delivery": {"method": "pickup", "date": slot[0], "slot": slot[1], "recipient_name": "Mia Rose",
                         "recipient_phone": "+1 212 555 0199"},
            "contact": {"email": email, "phone": "+12125550100", "name": "Gia Guest"}}
    return await client.post(f"{API}/checkout", json=body, headers={**cart, "Idempotency-Key": uuid.uuid4().hex})


async def until(condition, what: str, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.1)):
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(what)


def emails() -> str:
    return f"guest-{uuid.uuid4().hex[:10]}@example.com"


async def test_a_stock_change_on_a_reaches_a_stream_on_b(cluster):
    async with cluster.client(0) as a, cluster.client(1) as b:
        _, staff = await signed_in(a, Role.staff)
        product = await make_product(stock={"standard": 3}, prices={"standard": 4500})
        async with Stream(b, f"{API}/events/stock?product_id={product.id}") as s:
            assert (await s.data("stock"))["available"] == 3
            r = await a.post(f"{API}/admin/products/{product.id}/stock", headers=staff,
                             json={"size": "standard", "delta": 4, "reason": "restock"})
            assert r.status_code == 201, r.text
            assert await s.data("stock", timeout=1.0) == {"product_id": product.id, "size": "standard",
                                                          "available": 7, "in_stock": True}


async def test_an_order_paid_by_a_webhook_on_a_reaches_its_stream_and_the_staff_board_on_b(cluster, stripe_double):
    async with cluster.client(0) as a, cluster.client(1) as b:
        user, customer = await signed_in(a)
        _, staff = await signed_in(b, Role.staff)
        product = await make_product(stock={"standard": 5}, prices={"standard": 4500})
        cart = await a.post(f"{API}/cart/items", headers=customer,
                            json={"product_id": product.id, "size": "standard", "quantity": 1})
        assert cart.status_code == 200, cart.text
        date, slot = await pickup_slot(a)
        r = await a.post(f"{API}/checkout", headers={**customer, "Idempotency-Key": uuid.uuid4().hex},
                         json={"payment_method": "card", "delivery": {"method": "pickup", "date": date, "slot": slot,
                               "recipient_name": "Mia Rose", "recipient_phone": "+1 212 555 0199"}})
        assert r.status_code == 201, r.text
        order, intent_id = r.json()["order"], r.json()["payment"]["payment_intent_id"]

        mine = await ticket(b, customer, stream="order", order_id=order["id"])
        board = await ticket(b, staff, stream="staff")
        async with Stream(b, mine["url"]) as order_stream, Stream(b, board["url"]) as board_stream:
            assert (await order_stream.data("order"))["status"] == "pending_payment"
            await board_stream.data("board")
            intent = stripe_double.succeed(intent_id)
            assert (await send_webhook(a, "payment_intent.succeeded", intent)).status_code == 200
            paid = await order_stream.data("order")
            assert (paid["order_id"], paid["status"], paid["payment_status"]) == (order["id"], "paid", "paid")
            new = await board_stream.data("order.new")
            assert (new["order_id"], new["number"], new["status"]) == (order["id"], order["number"], "paid")


async def test_rate_limit_counters_are_shared(cluster):
    email = emails()
    async with cluster.client(0) as a, cluster.client(1) as b:
        statuses = []
        for i in range(10):  # RATE_LIMIT_LOGIN_EMAIL is 5/minute: 5 in total, not 5 on each process
            r = await (a, b)[i % 2].post(f"{API}/auth/login", json={"email": email, "password": "Not-Right-123"})
            statuses.append(r.status_code)
    assert statuses == [401] * 5 + [429] * 5


async def test_a_catalog_write_on_a_is_seen_by_cached_reads_on_b_at_once(cluster):
    async with cluster.client(0) as a, cluster.client(1) as b:
        _, staff = await signed_in(a, Role.staff)
        product = await make_product(stock={"standard": 3}, prices={"standard": 4500})
        for round_ in range(5):
            for _ in range(2):  # warm B's cache (Redis and its own memory)
                assert (await b.get(f"{API}/products/{product.id}")).status_code == 200
            name = f"Peony Cloud {round_}"
            r = await a.patch(f"{API}/admin/products/{product.id}", headers=staff, json={"name": name})
            assert r.status_code == 200, r.text
            assert (await b.get(f"{API}/products/{product.id}")).json()["name"] == name


async def test_forty_checkouts_across_both_for_five_units_sell_five_and_each_email_goes_once(cluster, mailbox):
    product = await make_product(stock={"standard": 5}, prices={"standard": 4500}, stock_total=5,
                                 low_stock_threshold=2)
    async with cluster.client(0) as a, cluster.client(1) as b:
        slot = await pickup_slot(a)
        buyers = [((a, b)[i % 2], emails()) for i in range(40)]
        carts = await asyncio.gather(*(guest_cart(c, product) for c, _ in buyers))
        results = await asyncio.gather(*(guest_checkout(c, cart, slot, "pay_on_pickup", email)
                                         for (c, email), cart in zip(buyers, carts, strict=True)))
    codes = sorted(r.status_code for r in results)
    assert codes == [201] * 5 + [409] * 35, [r.text for r in results if r.status_code not in (201, 409)]
    assert all(r.json()["type"].endswith("/out-of-stock") for r in results if r.status_code == 409)
    raw = await Product.get_pymongo_collection().find_one({"_id": product.id})
    assert (raw["stock"]["standard"], raw["stock_total"]) == (0, 0)
    sales = await StockMovement.find({"product_id": product.id, "reason": StockReason.sale}).to_list()
    releases = await StockMovement.find({"product_id": product.id, "reason": StockReason.release}).to_list()
    assert sum(-m.delta for m in sales) - sum(m.delta for m in releases) == 5

    winners = [email for (_, email), r in zip(buyers, results, strict=True) if r.status_code == 201]

    async def all_sent() -> bool:
        return all(mailbox.to(w) for w in winners) and bool(mailbox.to("florist@amourflorals.test"))

    await until(all_sent, "the emails were not all sent")
    await asyncio.sleep(1.0)  # a duplicate sent by the other process would arrive now
    assert all(len(mailbox.to(w)) == 1 for w in winners), [(w, len(mailbox.to(w))) for w in winners]
    low = [m for m in mailbox.to("florist@amourflorals.test") if product.id in m.as_string()]
    assert len(low) == 1  # one low-stock alert per product, size and day, whichever process saw it
    for address in [*winners, "florist@amourflorals.test"]:  # each outbox email was delivered exactly once
        queued = await OutboxEmail.find({"to": address, "status": "sent"}).to_list()
        assert len(mailbox.to(address)) == len(queued) >= 1, address

async def test_each_expired_or_reconciled_order_is_handled_once_across_both(cluster, stripe_double, mailbox):
    product = await make_product(stock={"standard": 20}, prices={"standard": 4500}, stock_total=20)
    async with cluster.client(0) as a, cluster.client(1) as b:
        slot = await pickup_slot(a)
        placed = []
        for i in range(6):
            c = (a, b)[i % 2]
            email = emails()
            r = await guest_checkout(c, await guest_cart(c, product, 2), slot, "card", email)
            assert r.status_code == 201, r.text
            placed.append((r.json()["order"]["id"], r.json()["payment"]["payment_intent_id"], email))
    expiring, paid_without_webhook = placed[:3], placed[3:]
    past = utcnow() - timedelta(minutes=10)
    for order_id, intent_id, _ in paid_without_webhook:  # the webhook was lost: reconciliation settles it
        stripe_double.succeed(intent_id)
        await rewrite(Order, order_id, created_at=past, reconciled_at=past)
    for order_id, _, _ in expiring:
        await rewrite(Order, order_id, expires_at=past)

    async def settled() -> bool:
        statuses = [(await Order.get(o)).status for o, _, _ in placed]
        return statuses == ["expired"] * 3 + ["paid"] * 3

    await until(settled, "the jobs did not expire and reconcile every order")
    await asyncio.sleep(1.0)  # a second run by the other process would show now
    for order_id, _, _ in expiring:
        order = await Order.get(order_id)
        assert [h.to_status for h in order.status_history] == ["pending_payment", "expired"]
        releases = await StockMovement.find({"ref": order_id, "reason": StockReason.release}).to_list()
        assert [m.delta for m in releases] == [2]  # given back once
    for order_id, _, email in paid_without_webhook:
        order = await Order.get(order_id)
        assert [h.to_status for h in order.status_history] == ["pending_payment", "paid"]
        await until(lambda e=email: _has_mail(mailbox, e), f"no confirmation to {email}")
    await asyncio.sleep(1.0)
    assert [len(mailbox.to(e)) for _, _, e in paid_without_webhook] == [1, 1, 1]
    assert (await Product.get(product.id)).stock["standard"] == 20 - 2 * 3


async def _has_mail(mailbox, email: str) -> bool:
    return bool(mailbox.to(email))
