"""The order stream and the staff board over HTTP, their single-use tickets, and a revoked session or a
deactivated account losing its streams."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from app.core.clock import utcnow
from app.models.events import StreamTicket
from app.models.order import DeliveryMethod, PaymentMethod
from app.models.user import Role
from app.services.order_access import order_access_token
from tests.events_support import Stream, ticket
from tests.factories import line_for, make_product
from tests.stripe_fixtures import place_order, send_webhook
from tests.support import API, assert_problem, rewrite

TICKETS = f"{API}/events/tickets"


@pytest.fixture
def settings(make_settings, stripe_settings):
    return make_settings(events_recheck_seconds=0.2, **stripe_settings)


async def test_owner_gets_the_current_status_then_every_change(app, client, live, customer, staff, stripe_double):
    user, headers = customer
    _, staff_headers = staff
    product = await make_product(stock={"standard": 5})
    order = await place_order(app, [line_for(product)], user_id=user.id)
    t = await ticket(client, headers, stream="order", order_id=order.id)
    assert t["url"] == f"/api/v1/events/orders/{order.id}?ticket={t['ticket']}" and t["ticket"] not in str(headers)
    async with Stream(live, t["url"]) as s:
        first = await s.data("order")
        assert (first["order_id"], first["number"], first["status"], first["payment_status"]) == (
            order.id, order.number, "pending_payment", "unpaid")

        intent = stripe_double.succeed(order.payment_intent_id)
        assert (await send_webhook(client, "payment_intent.succeeded", intent)).status_code == 200
        paid = await s.data("order")
        assert (paid["status"], paid["payment_status"], paid["total"]) == ("paid", "paid", order.amounts.total)

        for step in ("preparing", "out_for_delivery"):
            r = await client.post(f"{API}/admin/orders/{order.id}/status", headers=staff_headers, json={"status": step})
            assert r.status_code == 200, r.text
            assert (await s.data("order"))["status"] == step

        r = await client.post(f"{API}/admin/orders/{order.id}/refund", headers=staff_headers,
                              json={"amount": 500, "reason": "A stem was broken"})
        assert r.status_code == 200, r.text
        assert (await s.data("order"))["payment_status"] == "partially_refunded"  # a payment-only change


async def test_a_guest_opens_the_stream_with_the_order_token(app, client, live):
    product = await make_product(stock={"standard": 5})
    order = await place_order(app, [line_for(product)], method=DeliveryMethod.pickup,
                              payment=PaymentMethod.pay_on_pickup)
    token = order_access_token(app.state.settings, order.id)
    assert_problem(await client.post(TICKETS, json={"stream": "order", "order_id": order.id}), 401)
    assert_problem(await client.post(TICKETS, json={"stream": "order", "order_id": order.id},
                                     headers={"X-Order-Token": "x" * 43}), 404)
    t = await ticket(client, {"X-Order-Token": token}, stream="order", order_id=order.id)
    async with Stream(live, t["url"]) as s:
        assert (await s.data("order"))["status"] == "confirmed"


async def test_tickets_are_single_use_scoped_and_short_lived(app, client, live, customer, user_factory):
    user, headers = customer
    _, other_headers = await user_factory()
    product = await make_product(stock={"standard": 5})
    order = await place_order(app, [line_for(product)], user_id=user.id, method=DeliveryMethod.pickup,
                              payment=PaymentMethod.pay_on_pickup)
    other = await place_order(app, [line_for(product)], user_id=user.id, method=DeliveryMethod.pickup,
                              payment=PaymentMethod.pay_on_pickup)

    assert_problem(await client.post(TICKETS, json={"stream": "order", "order_id": order.id},
                                     headers=other_headers), 404)  # another customer's order
    assert_problem(await client.post(TICKETS, json={"stream": "staff"}, headers=headers), 403)
    assert_problem(await client.post(TICKETS, json={"stream": "staff"}), 401)
    assert_problem(await client.post(TICKETS, json={"stream": "order"}, headers=headers), 422)
    assert_problem(await client.post(TICKETS, json={"stream": "staff", "order_id": order.id}, headers=headers), 422)

    t = await ticket(client, headers, stream="order", order_id=order.id)
    assert_problem(await live.get(f"{API}/events/orders/{other.id}?ticket={t['ticket']}"), 401, "invalid-ticket")
    assert_problem(await live.get(f"{API}/events/staff?ticket={t['ticket']}"), 401, "invalid-ticket")
    async with Stream(live, t["url"]) as s:  # a refused attempt does not use it up
        assert (await s.data("order"))["order_id"] == order.id
    assert_problem(await live.get(t["url"]), 401, "invalid-ticket")  # used

    late = await ticket(client, headers, stream="order", order_id=order.id)
    lifetime = datetime.fromisoformat(late["expires_at"]) - utcnow()
    assert timedelta(0) < lifetime <= timedelta(seconds=app.state.settings.events_ticket_seconds) <= timedelta(
        seconds=60)
    (stored,) = await StreamTicket.find({"order_id": order.id}).to_list()  # the used ones are gone
    await rewrite(StreamTicket, stored.id, expires_at=utcnow() - timedelta(seconds=1))
    assert_problem(await live.get(late["url"]), 401, "invalid-ticket")

async def test_staff_board_shows_waiting_orders_then_new_orders_changes_and_low_stock(
        app, client, live, staff, stripe_double):
    _, staff_headers = staff
    product = await make_product(stock={"standard": 6}, prices={"standard": 4500}, low_stock_threshold=2)
    waiting = await place_order(app, [line_for(product)], method=DeliveryMethod.pickup,
                                payment=PaymentMethod.pay_on_pickup)
    t = await ticket(client, staff_headers, stream="staff")
    async with Stream(live, t["url"]) as s:
        board = await s.data("board")
        assert [o["order_id"] for o in board["orders"]] == [waiting.id] and board["low_stock"] == []

        card = await place_order(app, [line_for(product, quantity=3)])  # 2 left: at the threshold
        low = await s.data("stock.low")
        assert (low["product_id"], low["size"], low["available"], low["threshold"]) == (product.id, "standard", 2, 2)
        intent = stripe_double.succeed(card.payment_intent_id)
        assert (await send_webhook(client, "payment_intent.succeeded", intent)).status_code == 200
        new = await s.data("order.new")
        assert (new["order_id"], new["status"], new["payment_status"]) == (card.id, "paid", "paid")

        r = await client.post(f"{API}/admin/orders/{waiting.id}/status", headers=staff_headers,
                              json={"status": "preparing"})
        assert r.status_code == 200, r.text
        assert (await s.data("order.status"))["status"] == "preparing"


@pytest.mark.parametrize("how", ["logout-all", "logout", "deactivated"])
async def test_a_revoked_session_or_deactivated_account_loses_its_stream(app, client, live, user_factory, admin, how):
    user, headers = await user_factory()
    _, admin_headers = admin
    product = await make_product(stock={"standard": 5})
    order = await place_order(app, [line_for(product)], user_id=user.id, method=DeliveryMethod.pickup,
                              payment=PaymentMethod.pay_on_pickup)
    t = await ticket(client, headers, stream="order", order_id=order.id)
    async with Stream(live, t["url"]) as s:
        await s.data("order")
        if how == "deactivated":
            r = await client.patch(f"{API}/admin/users/{user.id}", headers=admin_headers, json={"is_active": False})
        else:
            r = await client.post(f"{API}/auth/{how}", headers=headers)
        assert r.status_code == (200 if how == "deactivated" else 204), r.text
        assert await s.data("end") == {"reason": "revoked"}
        await s.closed()


@pytest.mark.parametrize("how", ["logout", "deactivated", "demoted"])
async def test_a_ticket_asked_for_before_a_sign_out_does_not_open_a_stream(app, client, live, user_factory, admin,
                                                                         how):
    user, headers = await user_factory(Role.staff)
    _, admin_headers = admin
    t = await ticket(client, headers, stream="staff")
    if how == "logout":
        r = await client.post(f"{API}/auth/logout", headers=headers)
    else:
        change = {"is_active": False} if how == "deactivated" else {"role": "customer"}
        r = await client.patch(f"{API}/admin/users/{user.id}", headers=admin_headers, json=change)
    assert r.status_code == (204 if how == "logout" else 200), r.text
    body = assert_problem(await live.get(t["url"]), 401, "invalid-ticket")
    assert "sign in again" in body["detail"]
