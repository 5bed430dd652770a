"""Checkout in tests over HTTP: a fixed shop clock, a delivery zone, carts filled through the cart API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import httpx

API = "/api/v1"
NY = ZoneInfo("America/New_York")
DELIVERY_DAY = dt.date(2030, 4, 10)  # a Wednesday; the shop clock says Tuesday morning
NOW = dt.datetime(2030, 4, 9, 9, 0, tzinfo=NY).astimezone(dt.UTC)


async def open_shop(app, client: httpx.AsyncClient, admin_headers: dict[str, str], fee: int = 999) -> dict[str, Any]:
    app.state.clock = lambda: NOW
    r = await client.post(f"{API}/admin/delivery/zones", headers=admin_headers,
                          json={"name": "Manhattan South", "zip_codes": ["10012"], "fee": fee})
    assert r.status_code == 201, r.text
    return r.json()


async def add_to_cart(client: httpx.AsyncClient, product, *, headers: dict[str, str] | None = None, quantity: int = 1,
                      size: str = "standard", **extra: Any) -> httpx.Response:
    r = await client.post(f"{API}/cart/items", headers=headers or {},
                          json={"product_id": product.id, "size": size, "quantity": quantity, **extra})
    assert r.status_code == 200, r.text
    return r


async def guest_cart(client: httpx.AsyncClient, product, **kw: Any) -> dict[str, str]:
    r = await add_to_cart(client, product, **kw)
    return {"X-Cart-Token": r.headers["X-Cart-Token"]}


def delivery_body(method: str = "delivery", slot: str = "afternoon", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"method": method, "date": DELIVERY_DAY.isoformat(), "slot": slot,
                            "recipient_name": "Mia Rose", "recipient_phone": "+1 212 555 0199",
                            "card_message": "Happy birthday!", **extra}
    if method == "delivery":
        body["address"] = {"line1": "1 Bleecker St", "city": "New York", "state": "NY", "zip": "10012"}
    return body


def checkout_body(payment: str = "card", *, guest: bool = False, method: str = "delivery", **extra: Any,
                  ) -> dict[str, Any]:
    body: dict[str, Any] = {"payment_method": payment, "delivery": delivery_body(method), **extra}
    if guest:
        body["contact"] = {"email": "guest@example.com", "phone": "+12125550100", "name": "Gia Guest"}
    return body


async def checkout(client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any],
                   key: str | None = None) -> httpx.Response:
    return await client.post(f"{API}/checkout", json=body,
                             headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex})
