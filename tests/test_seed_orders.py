"""Demo orders and reviews from `seed`: placed through the services (stock, slots, promo uses consistent),
shown to the demo customers over the API, no order emails queued, and nothing added by a second run."""

from __future__ import annotations

from collections import Counter

from app.core.clock import shop_today
from app.demo.catalog import _n
from app.demo.seed import DEMO_PASSWORD, seed_all
from app.models.order import Order
from app.models.outbox import OutboxEmail
from app.models.review import Review
from tests.support import API, bearer, login


async def as_user(client, email: str) -> dict[str, str]:
    return bearer((await login(client, email, DEMO_PASSWORD))["access_token"])


async def my_orders(client, headers) -> list[dict]:
    r = await client.get(f"{API}/orders", headers=headers)
    assert r.status_code == 200, r.text
    return [(await client.get(f"{API}/orders/{o['id']}", headers=headers)).json() for o in r.json()["items"]]


async def test_seeded_orders_are_real_orders_and_reviews_are_verified(client, settings, monkeypatch):
    monkeypatch.setattr("app.config.get_settings", lambda: settings)
    await seed_all()
    olivia, liam, emma = [await as_user(client, f"{n}@example.com") for n in ("olivia", "liam", "emma")]
    admin = await as_user(client, "admin@amourflorals.com")
    today = shop_today(settings.tz).isoformat()

    [anniversary] = await my_orders(client, olivia)
    assert (anniversary["status"], anniversary["payment_status"], anniversary["payment_method"]) == (
        "picked_up", "paid", "pay_on_pickup")
    assert anniversary["promo_code"] == "WELCOME10" and anniversary["amounts"]["discount"] > 0
    assert anniversary["delivery"]["method"] == "pickup" and anniversary["delivery"]["date"] < today
    assert anniversary["amount_paid"] == anniversary["amounts"]["total"]
    liams = await my_orders(client, liam)
    assert [(o["status"], o["payment_status"]) for o in liams] == [("preparing", "unpaid"), ("picked_up", "paid")]
    [baby] = await my_orders(client, emma)
    assert (baby["status"], baby["payment_status"], baby["can_cancel"]) == ("confirmed", "unpaid", True)
    assert baby["delivery"]["date"] > today and baby["lines"][0]["quantity"] == 2

    # Bookkeeping: stock taken (and shown), the promo use counted, the pickup slot held.
    r = await client.get(f"{API}/products/pink-tulip-kiss")
    standard = next(s for s in r.json()["sizes"] if s["code"] == "standard")
    assert standard["available"] == _n("pink-tulip-kiss", "standard", 25) - 2
    r = await client.get(f"{API}/admin/promo-codes", headers=admin, params={"q": "WELCOME10"})
    assert r.json()["items"][0]["uses"] == 1
    day = baby["delivery"]["date"]
    held = Counter(o["delivery"]["slot"] for o in [anniversary, *liams, baby] if o["delivery"]["date"] == day)
    r = await client.get(f"{API}/admin/delivery/usage", headers=admin, params={"date": day})
    assert {(u["scope"], u["slot"], u["taken"]) for u in r.json()} == {("pickup", k, n) for k, n in held.items()}

    # Reviews: verified for the customer who picked the bouquet up, not for the one who did not buy it.
    roses = anniversary["lines"][0]["product_id"]
    r = await client.get(f"{API}/products/{roses}/reviews")
    assert sorted((i["author_name"].split()[0], i["verified_purchase"]) for i in r.json()["items"]) == [
        ("Emma", False), ("Olivia", True)]

    # Seeding queues no order emails for these example.com customers.
    assert await OutboxEmail.find({"template": {"$regex": "^order_"}}).count() == 0

    counts = (await Order.count(), await Review.count(), await OutboxEmail.count())
    lines = await seed_all()
    assert (await Order.count(), await Review.count(), await OutboxEmail.count()) == counts == (4, 4, counts[2])
    assert "Demo orders: 4 (0 added" in "\n".join(lines) and "Demo reviews: 4 (0 added" in "\n".join(lines)
    assert [o["status"] for o in await my_orders(client, liam)] == ["preparing", "picked_up"]
