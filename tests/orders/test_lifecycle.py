"""Order reads (owner, guest token, others), the staff status machine, cancellation, refunds, emails."""

from __future__ import annotations

import asyncio

from app.models.catalog import Product
from app.models.order import DeliveryMethod, Order, PaymentMethod
from app.models.user import Preferences
from app.services.order_access import order_access_token
from tests.factories import line_for, make_product
from tests.stripe_fixtures import paid_order, place_order, send_webhook

API = "/api/v1"


async def _paid_order(app, client, stripe_double, **kw) -> Order:
    return await paid_order(app, client, stripe_double, [line_for(await make_product(), quantity=2)], **kw)


async def test_customer_reads_own_orders_and_never_anothers(app, client, customer, user_factory, stripe_double):
    user, headers = customer
    product = await make_product()
    mine = [await place_order(app, [line_for(product)], user_id=user.id, email=user.email) for _ in range(3)]
    other_user, other_headers = await user_factory()
    theirs = await place_order(app, [line_for(product)], user_id=other_user.id, email=other_user.email)

    r = await client.get(f"{API}/orders", params={"limit": 2}, headers=headers)
    assert r.status_code == 200
    page1 = r.json()
    assert [o["id"] for o in page1["items"]] == [mine[2].id, mine[1].id]
    r = await client.get(f"{API}/orders", params={"limit": 2, "cursor": page1["next_cursor"]}, headers=headers)
    assert [o["id"] for o in r.json()["items"]] == [mine[0].id] and r.json()["next_cursor"] is None

    r = await client.get(f"{API}/orders/{mine[0].id}", headers=headers)
    assert r.status_code == 200
    body = r.json()
    assert body["number"] == mine[0].number and body["status"] == "pending_payment" and body["can_cancel"]
    assert body["lines"][0]["product_name"] == product.name and body["delivery"]["date"] == "2026-02-14"
    assert "notes" not in body and "payment_intent_id" not in body

    for path in (f"/orders/{theirs.id}", f"/orders/{theirs.id}/tracking"):
        r = await client.get(API + path, headers=headers)
        assert r.status_code == 404, r.text
    r = await client.post(f"{API}/orders/{theirs.id}/cancel", headers=headers)
    assert r.status_code == 404
    assert (await client.get(f"{API}/orders/{theirs.id}", headers=other_headers)).status_code == 200
    assert (await client.get(f"{API}/orders")).status_code == 401
    assert (await client.get(f"{API}/orders/{mine[0].id}")).status_code == 401
    assert (await client.get(f"{API}/orders/not-an-id", headers=headers)).status_code == 422


async def test_guest_reads_and_cancels_with_the_access_token(app, client, stripe_double):
    product = await make_product(stock={"standard": 2})
    order = await place_order(app, [line_for(product, quantity=2)], email="guest@example.com")
    token = order_access_token(app.state.settings, order.id)
    r = await client.get(f"{API}/orders/{order.id}", headers={"X-Order-Token": token})
    assert r.status_code == 200 and r.json()["contact"]["email"] == "guest@example.com"
    r = await client.get(f"{API}/orders/{order.id}", headers={"X-Order-Token": "x" * 43})
    assert r.status_code == 404
    other = await place_order(app, [line_for(await make_product())], email="other@example.com")
    assert (await client.get(f"{API}/orders/{other.id}", headers={"X-Order-Token": token})).status_code == 404

    r = await client.post(f"{API}/orders/{order.id}/cancel", json={"reason": "Wrong date"},
                          headers={"X-Order-Token": token})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert (await Product.get(product.id)).stock["standard"] == 2
    assert stripe_double.intents[order.payment_intent_id]["status"] == "canceled"
    r = await client.get(f"{API}/orders/{order.id}/tracking", headers={"X-Order-Token": token})
    assert [s["status"] for s in r.json()["history"]] == ["pending_payment", "cancelled"]
    assert r.json()["history"][-1]["note"] == "Wrong date"


async def test_staff_moves_delivery_order_to_delivered_with_emails(app, client, staff, customer, stripe_double,
                                                                   mailbox):
    user, headers = customer
    order = await _paid_order(app, client, stripe_double, user_id=user.id, email=user.email)
    _, staff_headers = staff
    url = f"{API}/admin/orders/{order.id}/status"
    r = await client.post(url, json={"status": "delivered"}, headers=staff_headers)
    assert r.status_code == 409 and r.json()["type"].endswith("/illegal-transition")
    r = await client.post(url, json={"status": "ready_for_pickup"}, headers=staff_headers)
    assert r.status_code == 409  # a delivery order never waits at the counter
    r = await client.post(url, json={"status": "paid"}, headers=staff_headers)
    assert r.status_code == 422  # payment states come from payments
    for status in ("preparing", "out_for_delivery", "delivered"):
        r = await client.post(url, json={"status": status, "note": f"now {status}"}, headers=staff_headers)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == status
    body = r.json()
    assert body["next_statuses"] == []
    assert [(h["from_status"], h["to_status"]) for h in body["status_history"]] == [
        (None, "pending_payment"), ("pending_payment", "paid"), ("paid", "preparing"),
        ("preparing", "out_for_delivery"), ("out_for_delivery", "delivered")]
    assert body["status_history"][-1]["by"] == staff[0].id
    r = await client.post(url, json={"status": "preparing"}, headers=staff_headers)
    assert r.status_code == 409  # statuses only move forward
    r = await client.post(f"{API}/orders/{order.id}/cancel", headers=headers)
    assert r.status_code == 409 and r.json()["type"].endswith("/not-cancellable")
    for subject in ("is confirmed", "preparing", "out for delivery", "was delivered"):
        await mailbox.wait_for(user.email, subject)
    r = await client.get(f"{API}/orders/{order.id}/tracking", headers=headers)
    assert [s["status"] for s in r.json()["history"]][-1] == "delivered"


async def test_progress_emails_respect_preferences_but_receipts_do_not(app, client, staff, user_factory,
                                                                        stripe_double, mailbox):
    user, _ = await user_factory(preferences=Preferences(email_notifications=False))
    order = await _paid_order(app, client, stripe_double, user_id=user.id, email=user.email)
    _, staff_headers = staff
    r = await client.post(f"{API}/admin/orders/{order.id}/status", json={"status": "preparing"}, headers=staff_headers)
    assert r.status_code == 200
    r = await client.post(f"{API}/admin/orders/{order.id}/status", json={"status": "cancelled", "note": "No roses"},
                          headers=staff_headers)
    assert r.status_code == 200 and r.json()["payment_status"] == "refunded"
    await mailbox.wait_for(user.email, "cancelled")
    await mailbox.wait_for(user.email, "is confirmed")
    subjects = [m["Subject"] for m in mailbox.to(user.email)]
    assert not any("preparing" in s for s in subjects)


async def test_cancelled_paid_order_is_refunded_once(app, client, customer, stripe_double):
    user, headers = customer
    product = await make_product(stock={"standard": 5})
    order = await place_order(app, [line_for(product, quantity=2)], user_id=user.id, email=user.email)
    await send_webhook(client, "payment_intent.succeeded", stripe_double.succeed(order.payment_intent_id))
    assert (await Product.get(product.id)).units_sold == 2

    results = await asyncio.gather(*(client.post(f"{API}/orders/{order.id}/cancel", headers=headers)
                                     for _ in range(5)))
    assert sorted(r.status_code for r in results) == [200, 409, 409, 409, 409]
    refunds = stripe_double.calls("POST", "/v1/refunds")
    assert len({c.idempotency_key for c in refunds}) == 1 and len(stripe_double.refunds) == 1
    assert refunds[0].form["amount"] == str(order.amounts.total)
    final = await Order.get(order.id)
    assert (final.status, final.payment_status, final.amount_refunded) == ("cancelled", "refunded", order.amounts.total)
    assert [r.status for r in final.refunds] == ["succeeded"]
    fresh = await Product.get(product.id)
    assert (fresh.stock["standard"], fresh.units_sold) == (5, 0)


async def test_staff_refunds_never_exceed_what_was_paid(app, client, staff, stripe_double, mailbox):
    """The app's own limit refuses too much before Stripe is asked (the double, like Stripe, would refuse an
    over-refund too, so the test counts the refund requests that reached it)."""
    order = await _paid_order(app, client, stripe_double, email="refund@example.com")
    _, h = staff
    url = f"{API}/admin/orders/{order.id}/refund"
    total = order.amounts.total
    r = await client.post(url, json={"amount": 1000, "reason": "One stem was broken"}, headers=h)
    assert r.status_code == 200, r.text
    assert (r.json()["payment_status"], r.json()["amount_refunded"], r.json()["status"]) == (
        "partially_refunded", 1000, "paid")
    r = await client.post(url, json={"amount": total, "reason": "Too much"}, headers=h)
    assert r.status_code == 409 and r.json()["refundable"] == total - 1000
    assert r.json()["type"].endswith("/refund-exceeds-paid")
    assert len(stripe_double.calls("POST", "/v1/refunds")) == 1
    concurrent = await asyncio.gather(*(client.post(url, json={"amount": total - 1000, "reason": "Rest"}, headers=h)
                                        for _ in range(4)))
    assert sorted(r.status_code for r in concurrent) == [200, 409, 409, 409]
    assert all(r.json()["type"].endswith("/nothing-to-refund") for r in concurrent if r.status_code != 200)
    assert len(stripe_double.calls("POST", "/v1/refunds")) == 2  # the losers never reached Stripe
    assert sum(ref["amount"] for ref in stripe_double.refunds.values()) == total
    r = await client.post(url, json={"reason": "again"}, headers=h)
    assert r.status_code == 409 and r.json()["type"].endswith("/nothing-to-refund")
    r = await client.post(url, json={"amount": 0, "reason": "zero"}, headers=h)
    assert r.status_code == 422
    r = await client.post(url, json={"amount": {"$gt": 0}, "reason": "x"}, headers=h)
    assert r.status_code == 422
    assert len(stripe_double.calls("POST", "/v1/refunds")) == 2
    final = await Order.get(order.id)
    assert (final.payment_status, final.amount_refunded, final.flags) == ("refunded", total, [])
    await mailbox.wait_for("refund@example.com", "Refund for order", count=2)


async def test_pay_on_pickup_settled_at_the_counter(app, client, staff, stripe_double, mailbox):
    product = await make_product()
    order = await place_order(app, [line_for(product)], method=DeliveryMethod.pickup,
                              payment=PaymentMethod.pay_on_pickup, email="pickup@example.com")
    assert (order.status, order.payment_status, order.payment_intent_id) == ("confirmed", "unpaid", None)
    assert (await Product.get(product.id)).units_sold == 1
    await mailbox.wait_for("pickup@example.com", "is confirmed")
    _, h = staff
    url = f"{API}/admin/orders/{order.id}"
    for status in ("preparing", "ready_for_pickup"):
        assert (await client.post(f"{url}/status", json={"status": status}, headers=h)).status_code == 200
    r = await client.post(f"{url}/status", json={"status": "picked_up"}, headers=h)
    assert r.status_code == 409 and r.json()["type"].endswith("/payment-not-settled")
    r = await client.post(f"{url}/refund", json={"reason": "x"}, headers=h)
    assert r.status_code == 409
    r = await client.post(f"{url}/settle", json={"note": "Cash"}, headers=h)
    assert r.status_code == 200
    assert (r.json()["payment_status"], r.json()["amount_paid"]) == ("paid", order.amounts.total)
    assert (await client.post(f"{url}/settle", headers=h)).status_code == 409
    r = await client.post(f"{url}/status", json={"status": "picked_up"}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "picked_up"
    assert stripe_double.requests == []
    msg = await mailbox.wait_for("pickup@example.com", "ready for pickup")
    assert "at the counter" in msg[0].get_payload()[0].get_payload(decode=True).decode()


async def test_admin_list_filters_notes_and_guards(app, client, staff, customer, stripe_double):
    _, h = staff
    a = await place_order(app, [line_for(await make_product())], email="ann@example.com")
    b = await _paid_order(app, client, stripe_double, email="bob@example.com")
    r = await client.get(f"{API}/admin/orders", headers=h)
    assert r.status_code == 200 and r.json()["total"] == 2
    assert [o["id"] for o in r.json()["items"]] == [b.id, a.id]
    checks = {"status": "paid", "email": "ANN@example.com", "number": b.number.lower(),
              "delivery_date": "2026-02-14", "zone": "zone_manhattan"}
    expected = {"status": [b.id], "email": [a.id], "number": [b.id], "delivery_date": [b.id, a.id],
                "zone": [b.id, a.id]}
    for key, value in checks.items():
        r = await client.get(f"{API}/admin/orders", params={key: value}, headers=h)
        assert [o["id"] for o in r.json()["items"]] == expected[key], key
    r = await client.get(f"{API}/admin/orders", params={"created_from": "2099-01-01T00:00:00Z"}, headers=h)
    assert r.json()["items"] == [] and r.json()["total"] == 0
    r = await client.get(f"{API}/admin/orders", params={"page": 2, "limit": 1}, headers=h)
    assert [o["id"] for o in r.json()["items"]] == [a.id]
    r = await client.get(f"{API}/admin/orders", params={"email[$ne]": "x", "status": "nope"}, headers=h)
    assert r.status_code == 422

    r = await client.post(f"{API}/admin/orders/{a.id}/notes", json={"text": "Customer called about the card"},
                          headers=h)
    assert r.status_code == 200 and r.json()["notes"][0]["text"] == "Customer called about the card"
    assert (await client.post(f"{API}/admin/orders/{a.id}/notes", json={"text": "x", "by": "me"},
                              headers=h)).status_code == 422
    _, customer_headers = customer
    assert (await client.get(f"{API}/admin/orders", headers=customer_headers)).status_code == 403
    assert (await client.get(f"{API}/admin/orders/{a.id}")).status_code == 401
    assert (await client.get(f"{API}/admin/orders/ord_01ARZ3NDEKTSV4RRFFQ69G5FAV", headers=h)).status_code == 404
