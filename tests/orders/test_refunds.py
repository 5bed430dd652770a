"""Refunds from one source of truth: refunds made through the API, in Stripe's dashboard (straight in the
double, as a person at the dashboard would) and reported by webhooks, in several orders and interleavings,
always add up to what Stripe holds; and the app's own refund limit, not Stripe's, refuses what is too much."""

from __future__ import annotations

from typing import Any

import pytest

from app.models.order import Order
from app.models.outbox import OutboxEmail
from tests.factories import line_for, make_product
from tests.stripe_fixtures import paid_order, send_webhook
from tests.support import API, assert_problem

# Each step: ("dash", cents) a refund in Stripe's dashboard (its webhook not delivered yet); ("api", cents or
# None for all that is left) a refund through POST /admin/orders/{id}/refund; ("hook", i) the charge.refunded
# event of the i-th dashboard refund delivered now (possibly long after, with its old snapshot of the charge);
# ("own-hook", None) the event of the latest refund of ours.
INTERLEAVINGS = {
    "dashboard-then-api-then-late-hook": [("dash", 1000), ("api", 500), ("hook", 0), ("api", None)],
    "hook-first-then-api-then-unseen-dashboard": [("dash", 1000), ("hook", 0), ("api", 500), ("dash", 700),
                                                  ("api", None), ("hook", 1)],
    "api-own-hook-then-dashboard-rest": [("api", 500), ("own-hook", None), ("dash", None), ("hook", 0)],
    "two-dashboards-hooks-reversed": [("dash", 300), ("dash", 400), ("hook", 1), ("api", 100), ("hook", 0),
                                      ("api", None)],
}


async def _refund(client, headers, order_id: str, amount: int | None):
    body: dict[str, Any] = {"reason": "Wilted on arrival"}
    if amount is not None:
        body["amount"] = amount
    return await client.post(f"{API}/admin/orders/{order_id}/refund", json=body, headers=headers)


@pytest.mark.parametrize("steps", INTERLEAVINGS.values(), ids=INTERLEAVINGS.keys())
async def test_api_dashboard_and_webhook_refunds_add_up_to_what_stripe_holds(app, client, staff, stripe_double,
                                                                            steps):
    order = await paid_order(app, client, stripe_double, [line_for(await make_product(), quantity=2)])
    pi, total, h = order.payment_intent_id, order.amounts.total, staff[1]
    snapshots: list[dict[str, Any]] = []
    for kind, amount in steps:
        if kind == "dash":
            snapshots.append(stripe_double.dashboard_refund(pi, amount))
            continue  # nothing told us yet: the order may lag behind Stripe until the next read
        if kind == "api":
            r = await _refund(client, h, order.id, amount)
            assert r.status_code == 200, r.text
        else:
            body = snapshots[amount] if kind == "hook" else stripe_double.charge_of(pi)
            assert (await send_webhook(client, "charge.refunded", body)).status_code == 200
        held = stripe_double.charge_of(pi)["amount_refunded"]
        stored = await Order.get(order.id)
        assert stored.amount_refunded == held, (kind, amount)
        assert stored.payment_status == ("refunded" if held == total else "partially_refunded")
    assert stripe_double.charge_of(pi)["amount_refunded"] == total
    final = await Order.get(order.id)
    assert (final.amount_refunded, final.payment_status, final.refunds_pending, final.flags) == (
        total, "refunded", 0, [])
    assert all(r.status == "succeeded" for r in final.refunds)
    # Everything is refunded now: the next request is refused by the app, before Stripe is asked.
    asked = len(stripe_double.calls("POST", "/v1/refunds"))
    assert_problem(await _refund(client, h, order.id, None), 409, "nothing-to-refund")
    assert len(stripe_double.calls("POST", "/v1/refunds")) == asked


async def test_a_dashboard_refund_not_yet_reported_bounds_the_next_api_refund(app, client, staff, stripe_double):
    order = await paid_order(app, client, stripe_double, [line_for(await make_product())])
    total, h = order.amounts.total, staff[1]
    stripe_double.dashboard_refund(order.payment_intent_id, 2000)
    asked = len(stripe_double.calls("POST", "/v1/refunds"))
    body = assert_problem(await _refund(client, h, order.id, total - 1000), 409, "refund-exceeds-paid")
    assert body["refundable"] == total - 2000
    assert len(stripe_double.calls("POST", "/v1/refunds")) == asked  # refused by the app, not by Stripe
    stored = await Order.get(order.id)
    assert (stored.amount_refunded, stored.payment_status, stored.flags) == (2000, "partially_refunded", [])
    r = await _refund(client, h, order.id, total - 2000)
    assert r.status_code == 200 and (r.json()["amount_refunded"], r.json()["payment_status"]) == (total, "refunded")


async def test_cancelling_after_a_dashboard_refund_refunds_only_the_rest(app, client, customer, stripe_double):
    user, headers = customer
    order = await paid_order(app, client, stripe_double, [line_for(await make_product())], user_id=user.id,
                             email=user.email)
    stripe_double.dashboard_refund(order.payment_intent_id, 1500)
    r = await client.post(f"{API}/orders/{order.id}/cancel", headers=headers)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["payment_status"], r.json()["amount_refunded"]) == (
        "cancelled", "refunded", order.amounts.total)
    assert [c.form["amount"] for c in stripe_double.calls("POST", "/v1/refunds")] == [str(order.amounts.total - 1500)]
    assert stripe_double.charge_of(order.payment_intent_id)["amount_refunded"] == order.amounts.total


async def test_a_dashboard_refund_tells_the_customer_once(app, client, stripe_double, mailbox):
    order = await paid_order(app, client, stripe_double, [line_for(await make_product())], email="ivy@example.com")
    charge = stripe_double.dashboard_refund(order.payment_intent_id, 1200)
    for _ in range(2):  # Stripe may deliver the event twice (two event ids)
        assert (await send_webhook(client, "charge.refunded", charge)).status_code == 200
    msg = (await mailbox.wait_for("ivy@example.com", "Refund for order"))[0]
    assert "$12.00" in str(msg)
    assert await OutboxEmail.find({"template": "order_refunded"}).count() == 1


async def test_a_refund_stripe_refuses_is_marked_failed_and_flagged(app, client, staff, stripe_double):
    order = await paid_order(app, client, stripe_double, [line_for(await make_product())])
    stripe_double.fail_next("/v1/refunds", status=400, kind="invalid_request_error", code="charge_disputed",
                            message="Charge ch_123 has been charged back; cannot issue a refund.")
    body = assert_problem(await _refund(client, staff[1], order.id, 700), 409, "refund-refused")
    assert body["provider_code"] == "charge_disputed" and "ch_123" not in body["detail"]
    stored = await Order.get(order.id)
    assert [(r.amount, r.status) for r in stored.refunds] == [(700, "failed")]
    assert (stored.amount_refunded, stored.payment_status, stored.refunds_pending) == (0, "paid", 0)
    assert [f.code for f in stored.flags] == ["refund-failed"]
    assert stripe_double.charge_of(order.payment_intent_id)["amount_refunded"] == 0
    # The failed refund holds nothing back: the whole amount can still be refunded.
    r = await _refund(client, staff[1], order.id, None)
    assert r.status_code == 200 and r.json()["amount_refunded"] == order.amounts.total
