"""Helpers for catalog tests: seed the demo catalog, create categories/products through the admin API."""

from __future__ import annotations

from typing import Any

import httpx

from app.schemas.catalog.public import ProductDetail, ProductPage

API = "/api/v1"


async def seed(app: Any) -> None:
    from app.demo.catalog import seed_catalog
    from app.services.catalog_cache import notify_catalog_changed

    await seed_catalog()
    await notify_catalog_changed(app.state.runtime)


async def make_category(client: httpx.AsyncClient, headers: dict[str, str], name: str, **fields: Any) -> dict:
    r = await client.post(f"{API}/admin/categories", json={"name": name, **fields}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def product_body(category_id: str, name: str = "Test Bouquet", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name, "category_id": category_id, "description": "A lovely test bouquet.",
        "occasions": ["birthday"], "flower_types": ["roses"], "colors": ["red"], "status": "active",
        "sizes": [{"code": "standard", "name": "Standard", "price": 5000, "stock": 5},
                  {"code": "deluxe", "name": "Deluxe", "price": 7000, "stock": 2}],
        "add_ons": [{"code": "glass-vase", "name": "Glass vase", "kind": "vase", "price": 1500}],
    }
    body.update(fields)
    return body


async def make_product(client: httpx.AsyncClient, headers: dict[str, str], category_id: str, name: str = "Test Bouquet",
                       **fields: Any) -> dict:
    r = await client.post(f"{API}/admin/products", json=product_body(category_id, name, **fields), headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def walk(client: httpx.AsyncClient, params: dict[str, Any] | list[tuple[str, Any]], limit: int = 7) -> list[dict]:
    """Every item of a product list, following cursors; checks each page against the schema."""
    items: list[dict] = []
    cursor = None
    base = list(params.items()) if isinstance(params, dict) else list(params)
    for _ in range(200):
        q = [*base, ("limit", limit)] + ([("cursor", cursor)] if cursor else [])
        r = await client.get(f"{API}/products", params=q)
        assert r.status_code == 200, r.text
        page = ProductPage.model_validate(r.json())
        assert len(page.items) <= limit
        items.extend(i.model_dump(mode="json") for i in page.items)
        cursor = page.next_cursor
        if not cursor:
            return items
    raise AssertionError("pagination did not end")


def detail(r: httpx.Response) -> dict:
    assert r.status_code == 200, r.text
    return ProductDetail.model_validate(r.json()).model_dump(mode="json")
