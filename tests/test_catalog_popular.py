"""Best sellers: the "popular" order follows units sold, which orders make (placed through the order
service, counted when the sale is final), compared with the known sales, not with another endpoint."""

from __future__ import annotations

from app.models.catalog import Product
from app.models.order import DeliveryMethod, PaymentMethod
from tests.factories import line_for, make_product
from tests.stripe_fixtures import place_order
from tests.support import API


async def test_popular_follows_units_sold_most_first_ties_by_age(app, client):
    sales = {"Amber Tulips": 3, "Blue Iris": 0, "Coral Peonies": 5, "Dusk Lilies": 1, "Ember Roses": 3}
    products = {name: await make_product(name=name, stock={"standard": 10, "deluxe": 10}) for name in sales}
    for name, units in sales.items():
        for size, quantity in (("standard", units - units // 2), ("deluxe", units // 2)):  # sizes add up
            if quantity:
                await place_order(app, [line_for(products[name], size, quantity=quantity)],
                                  payment=PaymentMethod.pay_on_pickup, method=DeliveryMethod.pickup)
    assert {p.name: p.units_sold for p in await Product.find_all().to_list()} == sales
    # Most sold first; equal sales (Amber and Ember, 3 each) by age, the older first.
    expected = [products[n].id for n in ("Coral Peonies", "Amber Tulips", "Ember Roses", "Dusk Lilies", "Blue Iris")]

    r = await client.get(f"{API}/products/popular", params={"limit": 5})
    assert r.status_code == 200, r.text
    assert [p["id"] for p in r.json()["items"]] == expected
    r = await client.get(f"{API}/products/popular", params={"limit": 2})
    assert [p["id"] for p in r.json()["items"]] == expected[:2]
    listed = []
    cursor = None
    while True:
        r = await client.get(f"{API}/products", params={"sort": "popular", "limit": 2,
                                                        **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        listed += [p["id"] for p in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert listed == expected
