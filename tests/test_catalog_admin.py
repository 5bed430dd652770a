"""Admin catalog over HTTP: categories (tree moves), products (create/update/archive/delete), access."""

from __future__ import annotations

import pytest

from app.models.catalog import Category, Product
from app.models.inventory import StockMovement
from app.schemas.catalog.admin import AdminProduct
from tests.catalog_helpers import API, detail, make_category, make_product, walk


async def test_access_anonymous_401_customer_403(client, customer):
    _, headers = customer
    for method, url in (("get", "/admin/products"), ("post", "/admin/categories"),
                        ("get", "/admin/inventory/low-stock"), ("get", "/admin/categories")):
        assert (await client.request(method.upper(), API + url, json={})).status_code == 401
        r = await client.request(method.upper(), API + url, json={}, headers=headers)
        assert r.status_code == 403, r.text


async def test_category_crud_slugs_and_delete_rules(client, staff, admin):
    _, headers = staff
    root = await make_category(client, headers, "Spring Flowers", seo_title="Spring")
    assert root["slug"] == "spring-flowers" and root["depth"] == 0 and root["ancestors"] == []
    again = await make_category(client, headers, "Spring Flowers!")
    assert again["slug"] == "spring-flowers-2"
    r = await client.post(f"{API}/admin/categories", json={"name": "X y", "slug": "spring-flowers"}, headers=headers)
    assert r.status_code == 409
    child = await make_category(client, headers, "Tulips", parent_id=root["id"])
    assert child["ancestors"] == [root["id"]] and child["depth"] == 1
    r = await client.patch(f"{API}/admin/categories/{child['id']}", json={"name": "Tulipes", "is_active": False},
                           headers=headers)
    assert r.status_code == 200 and r.json()["name"] == "Tulipes" and r.json()["slug"] == "tulips"
    assert (await client.get(f"{API}/categories/tulips")).status_code == 404  # inactive: hidden
    r = await client.patch(f"{API}/admin/categories/{child['id']}", json={"slug": "spring-flowers"}, headers=headers)
    assert r.status_code == 409
    r = await client.patch(f"{API}/admin/categories/{child['id']}", json={"name": None}, headers=headers)
    assert r.status_code == 422
    r = await client.post(f"{API}/admin/categories", json={"name": "Bad", "extra": 1}, headers=headers)
    assert r.status_code == 422
    r = await client.post(f"{API}/admin/categories", json={"name": {"$ne": ""}}, headers=headers)
    assert r.status_code == 422

    assert (await client.delete(f"{API}/admin/categories/{root['id']}", headers=headers)).status_code == 409
    product = await make_product(client, headers, child["id"])
    assert (await client.delete(f"{API}/admin/categories/{child['id']}", headers=headers)).status_code == 409
    assert (await client.delete(f"{API}/admin/products/{product['id']}", headers=headers)).status_code == 204
    assert (await client.delete(f"{API}/admin/categories/{child['id']}", headers=headers)).status_code == 204
    assert (await client.delete(f"{API}/admin/categories/{root['id']}", headers=headers)).status_code == 204
    assert await Category.get(root["id"]) is None
    assert (await client.get(f"{API}/admin/categories/{root['id']}", headers=headers)).status_code == 404


async def test_move_updates_descendants_and_product_paths(client, staff):
    _, headers = staff
    a = await make_category(client, headers, "Aa")
    b = await make_category(client, headers, "Bb")
    a1 = await make_category(client, headers, "A1", parent_id=a["id"])
    a2 = await make_category(client, headers, "A2", parent_id=a1["id"])
    p1 = await make_product(client, headers, a2["id"], "Deep Bouquet")
    p2 = await make_product(client, headers, b["id"], "B Bouquet")
    assert {i["id"] for i in await walk(client, {"category": "aa"})} == {p1["id"]}

    r = await client.post(f"{API}/admin/categories/{a['id']}/move", json={"parent_id": a2["id"]}, headers=headers)
    assert r.status_code == 409 and "cycle" in r.json()["type"]
    r = await client.post(f"{API}/admin/categories/{a['id']}/move", json={"parent_id": a["id"]}, headers=headers)
    assert r.status_code == 409

    r = await client.post(f"{API}/admin/categories/{a1['id']}/move", json={"parent_id": b["id"]}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["ancestors"] == [b["id"]] and r.json()["depth"] == 1
    moved_a2 = await Category.get(a2["id"])
    assert moved_a2.ancestors == [b["id"], a1["id"]] and moved_a2.depth == 2
    assert (await Product.get(p1["id"])).category_path == [a2["id"], a1["id"], b["id"]]
    assert {i["id"] for i in await walk(client, {"category": "aa"})} == set()
    assert {i["id"] for i in await walk(client, {"category": "bb"})} == {p1["id"], p2["id"]}
    assert {i["id"] for i in await walk(client, {"category": "a1"})} == {p1["id"]}
    crumbs = detail(await client.get(f"{API}/products/{p1['id']}"))["breadcrumbs"]
    assert [c["slug"] for c in crumbs] == ["bb", "a1", "a2"]
    tree = (await client.get(f"{API}/categories")).json()["items"]
    node_b = next(n for n in tree if n["slug"] == "bb")
    assert node_b["product_count"] == 2 and node_b["children"][0]["children"][0]["slug"] == "a2"

    # Depth: b > a1 > a2 is 3 levels; putting it under c > d would make 5.
    c = await make_category(client, headers, "Cc")
    d = await make_category(client, headers, "Dd", parent_id=c["id"])
    r = await client.post(f"{API}/admin/categories/{b['id']}/move", json={"parent_id": d["id"]}, headers=headers)
    assert r.status_code == 409 and "deep" in r.json()["type"]
    r = await client.post(f"{API}/admin/categories/{b['id']}/move", json={"parent_id": c["id"]}, headers=headers)
    assert r.status_code == 200 and (await Category.get(a2["id"])).depth == 3
    r = await client.post(f"{API}/admin/categories", json={"name": "Too deep", "parent_id": a2["id"]}, headers=headers)
    assert r.status_code == 409
    r = await client.post(f"{API}/admin/categories/{a1['id']}/move", json={"parent_id": None}, headers=headers)
    assert r.status_code == 200 and (await Product.get(p1["id"])).category_path == [a2["id"], a1["id"]]


async def test_product_create_update_derived_fields(client, staff):
    user, headers = staff
    cat = await make_category(client, headers, "Roses")
    other = await make_category(client, headers, "Tulips")
    p = AdminProduct.model_validate(await make_product(client, headers, cat["id"], "Velvet Rosé"))
    assert p.slug == "velvet-rose" and p.price_min == 5000 and p.stock_total == 7
    assert [s.stock for s in p.sizes] == [5, 2] and p.category_path == [cat["id"]]
    dup = await make_product(client, headers, cat["id"], "Velvet Rosé")
    assert dup["slug"] == "velvet-rose-2"
    moves = await StockMovement.find({"product_id": p.id}).to_list()
    assert sorted((m.size, m.after, m.reason, m.actor_id) for m in moves) == [
        ("deluxe", 2, "initial", user.id), ("standard", 5, "initial", user.id)]

    body = {"name": "Velours", "sizes": [{"code": "standard", "name": "Standard", "price": 4500},
                                         {"code": "grand", "name": "Grand", "price": 9900}],
            "category_id": other["id"], "tags": ["Velvet"], "seo_title": None}
    r = await client.patch(f"{API}/admin/products/{p.id}", json=body, headers=headers)
    assert r.status_code == 409 and "stock" in r.json()["detail"]  # deluxe still has 2
    r = await client.post(f"{API}/admin/products/{p.id}/stock", json={"size": "deluxe", "delta": -2,
                                                                      "reason": "damaged"}, headers=headers)
    assert r.status_code == 201
    r = await client.patch(f"{API}/admin/products/{p.id}", json=body, headers=headers)
    assert r.status_code == 200, r.text
    stored = await Product.get(p.id)
    assert stored.name == "Velours" and stored.slug == "velvet-rose" and stored.price_min == 4500
    assert stored.stock == {"standard": 5, "grand": 0} and stored.stock_total == 5
    assert stored.category_path == [other["id"]] and stored.tags == ["velvet"]
    assert stored.name_keys == ["velours"] and "velvet" in stored.search_words
    assert stored.description == "A lovely test bouquet."  # untouched
    s = (await client.get(f"{API}/search/suggest", params={"q": "velo"})).json()["items"]
    assert [i["label"] for i in s] == ["Velours"]
    for bad in ({"name": None}, {"sizes": []}, {"status": "gone"}, {"price_min": 1}, {"category_id": "cat_x"},
                {"sizes": [{"code": "a", "name": "A", "price": 1}, {"code": "a", "name": "B", "price": 2}]}):
        r = await client.patch(f"{API}/admin/products/{p.id}", json=bad, headers=headers)
        assert r.status_code == 422, (bad, r.text)
    r = await client.patch(f"{API}/admin/products/{p.id}", json={"slug": dup["slug"]}, headers=headers)
    assert r.status_code == 409


async def test_archive_delete_and_admin_list(client, staff):
    _, headers = staff
    cat = await make_category(client, headers, "Lilies")
    a = await make_product(client, headers, cat["id"], "Lily One")
    b = await make_product(client, headers, cat["id"], "Lily Two", status="draft", featured=True)
    c = await make_product(client, headers, cat["id"], "Rose Three")
    await Product.find_one(Product.id == c["id"]).update({"$set": {"ever_ordered": True}})
    r = await client.delete(f"{API}/admin/products/{c['id']}", headers=headers)
    assert r.status_code == 409 and "archive" in r.json()["detail"]
    r = await client.post(f"{API}/admin/products/{c['id']}/archive", headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "archived"
    assert (await client.get(f"{API}/products/{c['id']}")).status_code == 404
    missing = f"{API}/admin/products/prd_01M8BSH7ZH4GN3JBT99GWN40N7"
    assert (await client.delete(missing, headers=headers)).status_code == 404

    async def ids(**params) -> list[str]:
        r = await client.get(f"{API}/admin/products", params=params, headers=headers)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert await ids() == [c["id"], b["id"], a["id"]]
    assert await ids(status="draft") == [b["id"]]
    assert await ids(featured="true") == [b["id"]]
    assert await ids(q="lil") == [b["id"], a["id"]]
    assert await ids(q="thr") == [c["id"]]
    assert await ids(category=cat["slug"], limit=2, page=2) == [a["id"]]
    r = await client.get(f"{API}/admin/products", params={"limit": 2}, headers=headers)
    assert r.json()["total"] == 3 and r.json()["next_cursor"]
    r2 = await client.get(f"{API}/admin/products", params={"limit": 2, "cursor": r.json()["next_cursor"]},
                          headers=headers)
    assert [i["id"] for i in r2.json()["items"]] == [a["id"]]
    assert (await client.get(f"{API}/admin/products/{a['id']}", headers=headers)).json()["name"] == "Lily One"
    assert (await client.delete(f"{API}/admin/products/{a['id']}", headers=headers)).status_code == 204
    assert await Product.get(a["id"]) is None


@pytest.mark.parametrize(("url", "ok"), [
    ("https://images.example.com/spring.jpg", True), ("/media/spring.jpg", True),
    ("https://images.example.com/a\u202ecod.jpg", False), ("https://images.example.com/\u0000.jpg", False),
    ("https:///spring.jpg", False), ("//evil.example.com/x.jpg", False), ("javascript:alert(1)", False)])
async def test_a_category_image_url_is_a_clean_link(client, staff, url, ok):
    """The same link rule as campaign buttons (schemas.common.LinkUrl): https with a host or a storefront path,
    no control or invisible characters."""
    r = await client.post(f"{API}/admin/categories", headers=staff[1], json={"name": "Spring", "image_url": url})
    assert r.status_code == (201 if ok else 422), r.text
