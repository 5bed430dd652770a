"""The public stock stream: the current availability per size first, then one event per change (sale,
release, restock, staff adjustment, archive), each equal to what the product endpoint shows at that moment."""

from __future__ import annotations

from app.core import bus
from app.models.order import DeliveryMethod, PaymentMethod
from tests.events_support import Stream
from tests.factories import line_for, make_product
from tests.stripe_fixtures import order_service, place_order
from tests.support import API, assert_problem

STOCK = f"{API}/events/stock"


async def shown(client, product_id: str, size: str) -> dict:
    """What GET /products/{id} shows for one size, in the stock event's shape."""
    r = await client.get(f"{API}/products/{product_id}")
    if r.status_code == 404:
        return {"product_id": product_id, "size": size, "available": 0, "in_stock": False}
    s = next(s for s in r.json()["sizes"] if s["code"] == size)
    return {"product_id": product_id, "size": size, "available": s["available"], "in_stock": s["in_stock"]}


async def test_snapshot_then_every_kind_of_change_matches_the_product_endpoint(app, client, live, staff):
    _, staff_headers = staff
    product = await make_product(stock={"standard": 2, "deluxe": 0})
    async with Stream(live, f"{STOCK}?product_id={product.id}") as s:
        assert s.response.headers["content-type"].startswith("text/event-stream")
        first = [await s.data("stock"), await s.data("stock")]
        assert first == [await shown(client, product.id, "standard"), await shown(client, product.id, "deluxe")]
        assert first[0]["available"] == 2 and first[1] == {"product_id": product.id, "size": "deluxe",
                                                            "available": 0, "in_stock": False}

        r = await client.post(f"{API}/admin/products/{product.id}/stock", headers=staff_headers,
                              json={"size": "deluxe", "delta": 3, "reason": "restock"})
        assert r.status_code == 201, r.text
        assert await s.data("stock") == await shown(client, product.id, "deluxe") == {
            "product_id": product.id, "size": "deluxe", "available": 3, "in_stock": True}

        order = await place_order(app, [line_for(product, "standard", 2)], method=DeliveryMethod.pickup,
                                  payment=PaymentMethod.pay_on_pickup)  # checkout holds both units
        assert await s.data("stock") == await shown(client, product.id, "standard") == {
            "product_id": product.id, "size": "standard", "available": 0, "in_stock": False}

        await order_service(app).cancel(order, by="test", staff=True)  # the hold is released
        assert (await s.data("stock"))["available"] == 2 == (await shown(client, product.id, "standard"))["available"]

        r = await client.post(f"{API}/admin/products/{product.id}/stock", headers=staff_headers,
                              json={"size": "standard", "delta": -1, "reason": "damaged"})
        assert r.status_code == 201
        assert await s.data("stock") == await shown(client, product.id, "standard")

        r = await client.post(f"{API}/admin/products/{product.id}/archive", headers=staff_headers)
        assert r.status_code == 200, r.text
        archived = [await s.data("stock"), await s.data("stock")]
        assert archived == [{"product_id": product.id, "size": "standard", "available": 0, "in_stock": False},
                            {"product_id": product.id, "size": "deluxe", "available": 0, "in_stock": False}]
        assert archived[0] == await shown(client, product.id, "standard")


async def test_product_ids_are_validated_and_unknown_ones_send_nothing(live):
    assert_problem(await live.get(STOCK), 422)
    assert_problem(await live.get(f"{STOCK}?product_id=nope"), 422, "invalid-product-id")
    many = "&".join(f"product_id=prd_{i:026d}" for i in range(51))
    assert_problem(await live.get(f"{STOCK}?{many}"), 422)
    known = await make_product(stock={"standard": 1}, prices={"standard": 4500})
    async with Stream(live, f"{STOCK}?product_id=prd_01J0000000000000000000000Z&product_id={known.id}") as s:
        assert (await s.data("stock"))["product_id"] == known.id  # nothing for the unknown id


async def test_an_older_state_arriving_late_is_dropped(app, live, staff, client):
    """Processes publish concurrently, so a stale event can arrive after a newer state: the stream keeps the
    highest stock sequence it sent per size and drops anything not newer."""
    _, staff_headers = staff
    product = await make_product(stock={"standard": 4}, prices={"standard": 4500})
    async with Stream(live, f"{STOCK}?product_id={product.id}") as s:
        assert (await s.data("stock"))["available"] == 4
        stale = {"product_id": product.id, "size": "standard", "available": 99, "in_stock": True}
        bus.publish(f"stock:{product.id}", "stock", stale, key=f"{product.id}:standard", seq=0)
        await client.post(f"{API}/admin/products/{product.id}/stock", headers=staff_headers,
                          json={"size": "standard", "delta": 1, "reason": "restock"})
        assert (await s.data("stock"))["available"] == 5


async def test_reconnecting_with_last_event_id_starts_with_the_current_state(app, live, staff, client):
    _, staff_headers = staff
    product = await make_product(stock={"standard": 3}, prices={"standard": 4500})
    url = f"{STOCK}?product_id={product.id}"
    async with Stream(live, url) as s:
        last_id = (await s.next()).id
    await client.post(f"{API}/admin/products/{product.id}/stock", headers=staff_headers,
                      json={"size": "standard", "delta": 2, "reason": "restock"})
    async with Stream(live, url, headers={"Last-Event-ID": last_id}) as again:
        assert (await again.data("stock"))["available"] == 5
