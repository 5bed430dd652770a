"""Lifecycle emails through HTTP and the real SMTP server: back in stock after a restock (one email per request,
then spent) and the abandoned-cart reminder (once per cart version, subscribers only, none after an order)."""

from __future__ import annotations

from datetime import timedelta
from email.header import decode_header, make_header
from urllib.parse import unquote

from app.core.clock import utcnow
from app.models.cart import Cart
from app.models.marketing import JobCursor, StockAlert, StockAlertOptOut
from app.models.outbox import OutboxEmail
from app.models.user import User
from tests.checkout_helpers import add_to_cart
from tests.conftest import create_user, login_headers
from tests.factories import build_order, line_for, make_product
from tests.services import body_text
from tests.support import API, assert_problem, eventually, new_client, random_ip, rewrite


def subject(msg) -> str:
    return str(make_header(decode_header(msg["Subject"])))


async def restock(client, headers, product_id: str, size: str, delta: int, reason: str = "restock") -> None:
    r = await client.post(f"{API}/admin/products/{product_id}/stock", headers=headers,
                          json={"size": size, "delta": delta, "reason": reason})
    assert r.status_code == 201, r.text


async def test_back_in_stock_once_per_request(client, mailbox, customer, staff, settings):
    product = await make_product(name="Ranunculus Cloud", stock={"standard": 0, "deluxe": 4})
    alerts = f"{API}/products/{product.id}/stock-alerts"
    guest = {"size": "standard", "email": "Guest@Example.com"}
    for _ in range(2):  # asking twice is the same request
        r = await client.post(alerts, json=guest)
        assert r.status_code == 202, r.text
    assert (await client.post(alerts, headers=customer[1], json={"size": "standard"})).status_code == 202
    assert await StockAlert.find({"product_id": product.id}).count() == 2

    assert_problem(await client.post(alerts, json={"size": "deluxe", "email": "g@example.com"}), 409, "size-in-stock")
    assert_problem(await client.post(alerts, json={"size": "giant", "email": "g@example.com"}), 422, "unknown-size")
    assert_problem(await client.post(alerts, json={"size": "standard"}), 422, "email-required")
    assert_problem(await client.post(alerts, headers=customer[1], json={"size": "standard", "email": "x@example.com"}),
                   422, "email-not-allowed")
    assert_problem(await client.post(f"{API}/products/prd_01JD7Z8K4M2N6P8Q0R2S4T6V8W/stock-alerts", json=guest), 404)
    for bad in ({"size": "standard", "email": {"$ne": ""}}, {"size": 1, "email": "g@example.com"},
                {"size": "standard", "email": "g@example.com", "note": "x"}):
        assert_problem(await client.post(alerts, json=bad), 422)

    await restock(client, staff[1], product.id, "standard", 3)
    msg = (await mailbox.wait_for("guest@example.com", "back in stock"))[0]
    assert subject(msg) == "Ranunculus Cloud is back in stock"
    assert f"{settings.storefront_url}/products/{product.slug}" in body_text(msg) and "(Standard)" in body_text(msg)
    await mailbox.wait_for(customer[0].email, "back in stock")

    async def spent():
        return await StockAlert.find({"product_id": product.id, "status": "sent"}).count() == 2
    await eventually(spent, 15.0, what="both requests spent")

    # Sold out and back again: the requests were spent, nobody is emailed twice.
    await restock(client, staff[1], product.id, "standard", -3, reason="damaged")
    await restock(client, staff[1], product.id, "standard", 1)
    assert await StockAlert.find({"status": {"$in": ["waiting", "due"]}}).count() == 0
    assert await OutboxEmail.find({"template": "stock_alert"}).count() == 2
    assert len(mailbox.to("guest@example.com")) == 1

    # The same shopper may ask again once the size sells out again.
    await restock(client, staff[1], product.id, "standard", -1, reason="damaged")
    assert (await client.post(alerts, json=guest)).status_code == 202
    assert await StockAlert.find({"email": "guest@example.com", "status": "waiting"}).count() == 1


def stop_token(msg) -> str:
    """The token of the one-click stop link (``List-Unsubscribe``) of a back-in-stock email."""
    url = msg["List-Unsubscribe"].strip("<>")
    assert url.split("?")[0].endswith("/api/v1/stock-alerts/stop"), url
    return unquote(url.split("token=", 1)[1])


async def test_an_address_signed_up_by_someone_else_stops_back_in_stock_emails(client, mailbox, staff, user_factory,
                                                                               settings):
    """Anyone may type any address into a guest's request: every email carries a one-click stop (RFC 8058) that
    cancels the address's waiting requests and drops later guest requests for it; its owner, signed in, may ask
    again."""
    rose = await make_product(name="Rose Dome", stock={"standard": 0})
    lily = await make_product(name="Lily Dome", stock={"standard": 0})
    victim = {"size": "standard", "email": "victim@example.com"}
    for product in (rose, lily):
        assert (await client.post(f"{API}/products/{product.id}/stock-alerts", json=victim)).status_code == 202
    await restock(client, staff[1], rose.id, "standard", 2)
    msg = (await mailbox.wait_for("victim@example.com", "back in stock"))[0]
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = stop_token(msg)
    assert f"{settings.storefront_url}/stock-alerts/stop?token=" in body_text(msg)

    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert_problem(await client.post(f"{API}/stock-alerts/stop", params={"token": forged}), 400, "invalid-token")
    for _ in range(2):  # idempotent; mail clients send the RFC 8058 form body
        r = await client.post(f"{API}/stock-alerts/stop", params={"token": token},
                              data={"List-Unsubscribe": "One-Click"})
        assert r.status_code == 200, r.text
    assert await StockAlert.find({"email": "victim@example.com", "status": "cancelled"}).count() == 1  # lily's

    # A later guest request for the address is answered the same and dropped; the lily restock mails nobody.
    assert (await client.post(f"{API}/products/{lily.id}/stock-alerts", json=victim)).status_code == 202
    await restock(client, staff[1], lily.id, "standard", 2)
    await restock(client, staff[1], lily.id, "standard", -2, reason="damaged")
    assert await StockAlert.find({"email": "victim@example.com", "status": {"$in": ["waiting", "due"]}}).count() == 0
    assert await OutboxEmail.find({"to": "victim@example.com"}).count() == 1

    # A mail client without one-click opens the link: the storefront's page, tracking parameters ignored.
    r = await client.get(f"{API}/stock-alerts/stop", params={"token": token, "utm_source": "mail"})
    assert r.status_code == 303
    assert r.headers["location"] == f"{settings.storefront_url}/stock-alerts/stop?token={token}"

    # Anyone can open an account with the address: unverified, it cannot lift the stop.
    _, unverified = await user_factory(email="victim@example.com", email_verified_at=None)
    assert (await client.post(f"{API}/products/{lily.id}/stock-alerts", headers=unverified,
                              json={"size": "standard"})).status_code == 202
    assert await StockAlert.find({"email": "victim@example.com", "status": "waiting"}).count() == 0
    await User.get_pymongo_collection().delete_one({"email": "victim@example.com"})

    # The owner of the address, verified and signed in, asks again: the stop is lifted for them.
    _, headers = await user_factory(email="victim@example.com")
    assert (await client.post(f"{API}/products/{lily.id}/stock-alerts", headers=headers,
                              json={"size": "standard"})).status_code == 202
    assert await StockAlert.find({"email": "victim@example.com", "status": "waiting"}).count() == 1
    assert await StockAlertOptOut.find({"email": "victim@example.com"}).count() == 0


async def test_stock_alerts_are_rate_limited(make_settings, app_factory):
    settings = make_settings(rate_limit_stock_alert_email="2/hour")
    async with app_factory(settings) as application:
        product = await make_product(stock={"standard": 0})
        url = f"{API}/products/{product.id}/stock-alerts"
        for ip in (random_ip(), random_ip()):
            async with new_client(application, ip) as c:
                assert (await c.post(url, json={"size": "standard", "email": "a@example.com"})).status_code == 202
        async with new_client(application, random_ip()) as c:
            r = await c.post(url, json={"size": "standard", "email": "A@example.com"})
            assert_problem(r, 429)
            assert int(r.headers["retry-after"]) >= 1


async def test_abandoned_cart_reminder_once_per_cart_version(make_settings, app_factory, mailbox):
    # The scan runs when woken (here: by the test, standing in for its timer), so nothing moves between steps.
    settings = make_settings(abandoned_cart_after_minutes=60, marketing_poll_seconds=3600)
    async with app_factory(settings) as application, new_client(application) as client:
        jobs = application.state.runtime.jobs

        async def scan() -> None:
            started = utcnow()
            jobs.wake("cart-reminders")

            async def done():
                cursor = await JobCursor.get("cart-reminders")
                return cursor is not None and cursor.lease is None and cursor.mark is not None \
                    and cursor.mark.at > started - timedelta(minutes=60)
            await eventually(done, 15.0, what="a scan of the carts")

        async def abandon(name: str) -> None:
            """61 minutes pass: the cart was last changed then, and the scan has not reached it yet."""
            cart = await Cart.find_one({"user_id": people[name][0].id})
            await rewrite(Cart, cart.id, updated_at=utcnow() - timedelta(minutes=61))
            await rewrite(JobCursor, "cart-reminders", mark={"at": utcnow() - timedelta(minutes=62), "id": ""})

        product = await make_product(name="Garden Party")
        people = {}
        for name in ("keen", "quiet", "buyer", "former"):
            user = await create_user(email=f"{name}@example.com")
            people[name] = (user, await login_headers(client, user.email))
            await add_to_cart(client, product, headers=people[name][1])
        for name, wanted in (("keen", [True]), ("buyer", [True]), ("former", [True, False])):  # "quiet": never
            for value in wanted:
                r = await client.patch(f"{API}/users/me", headers=people[name][1],
                                       json={"preferences": {"newsletter": value}})
                assert r.json()["preferences"]["newsletter"] is value
        assert (await add_to_cart(client, product)).headers["X-Cart-Token"]  # a guest cart: never reminded
        await scan()  # nothing is old enough yet
        assert await OutboxEmail.find({"template": "cart_reminder"}).count() == 0

        for name in people:
            await abandon(name)
        await build_order([line_for(product)], number="AF-77001", user_id=people["buyer"][0].id,
                          email="buyer@example.com").insert()  # "buyer" ordered after leaving the cart
        await scan()
        msg = (await mailbox.wait_for("keen@example.com", "still in your cart"))[0]
        text = body_text(msg)
        assert "Hello Test," in text and "1 × Garden Party (Standard)" in text
        assert f"{settings.storefront_url}/cart" in text
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "/api/v1/newsletter/unsubscribe?token=" in msg["List-Unsubscribe"]
        assert await OutboxEmail.find({"template": "cart_reminder"}).count() == 1  # keen's only

        # The same window scanned again (as after a crash before the scan recorded its progress): the same
        # cart version is not reminded twice.
        await abandon("keen")
        await scan()
        assert await OutboxEmail.find({"template": "cart_reminder"}).count() == 1

        # A changed cart is a new version: one more reminder once it is left again.
        await add_to_cart(client, product, headers=people["keen"][1], size="deluxe")
        await abandon("keen")
        await scan()
        second = (await mailbox.wait_for("keen@example.com", "still in your cart", count=2))[1]
        assert "1 × Garden Party (Deluxe)" in body_text(second)
        assert await OutboxEmail.find({"template": "cart_reminder"}).count() == 2
        for name in ("quiet", "buyer", "former"):
            assert mailbox.to(f"{name}@example.com") == []
    assert len(mailbox.to("keen@example.com")) == 2
