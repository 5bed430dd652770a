"""Catalog reads served from the cache, and the health probe (issue 13, items 2 and 4).

* product detail: ours (cached view + stock overlay, by slug) vs a bare ``find_one`` by ``_id`` of the same
  products, 16 of them in turn; target 0.8.
* cached list page: a filtered, sorted page of 24 vs a bare endpoint returning the same bytes; target 0.5.
* health: ``/api/v1/health`` vs ``{"ok": true}``; target 0.5. Ours does what every request of the app does
  (request id, security headers, CORS, JSON access log, metrics, the app-level rate-limit dependency, which
  exempts it) around an endpoint as small as the bare one, so this ratio is the price of that common part.

The data set ``catalog-320`` is the demo catalog (64 bouquets) and four renamed copies of it: 320 products.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException

from bench.cases import Case, Ctx

LIST_QUERY = ("/api/v1/products?category=bouquets&occasion=birthday&occasion=mothers_day&occasion=just_because"
              "&min_price=4000&max_price=30000&sort=price_asc&limit=24")
DETAILS = 16


async def seed_320(ctx: Ctx) -> None:
    from app.core.ids import new_id
    from app.demo.catalog import seed_catalog
    from app.models.catalog import Product

    await seed_catalog()
    coll = Product.get_pymongo_collection()
    originals = await coll.find({}).to_list(None)
    for n in range(1, 5):
        await coll.insert_many([{**d, "_id": new_id("prd"), "slug": f"{d['slug']}-copy-{n}",
                                 "name": f"{d['name']} No. {n}"} for d in originals])


DATASETS = {"catalog-320": seed_320}


async def cases(ctx: Ctx) -> list[Case]:
    import httpx

    if ctx.dataset != "catalog-320":
        return []
    async with httpx.AsyncClient(base_url=ctx.ours) as client:
        listing = await client.get(LIST_QUERY)
        assert listing.status_code == 200 and len(listing.json()["items"]) == 24, listing.text[:300]
        page = await client.get("/api/v1/products?sort=popular&limit=48")
        products = [(p["slug"], p["id"]) for p in page.json()["items"] if p["in_stock"]][:DETAILS]
    await ctx.put_fixed("list", listing.content)
    return [
        Case("product detail", ours=[f"/api/v1/products/{slug}" for slug, _ in products],
             bare=[f"/raw/products/{pid}" for _, pid in products], target=0.8),
        Case(f"cached list page ({len(listing.content):,} B)", ours=LIST_QUERY, bare="/fixed/list", target=0.5),
        Case("health", ours="/api/v1/health", bare="/ok", target=0.5),
    ]


def bare(app: FastAPI, db: Any) -> None:
    products = db["products"]

    @app.get("/raw/products/{product_id}")
    async def raw_product(product_id: str) -> Any:
        doc = await products.find_one({"_id": product_id, "status": "active"})
        if doc is None:
            raise HTTPException(404)
        doc["created_at"] = doc["created_at"].isoformat()
        doc["updated_at"] = doc["updated_at"].isoformat()
        return doc
