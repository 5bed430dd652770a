"""Indexes behind the cart, delivery and promo queries, and the idempotent demo seed."""

from __future__ import annotations

from app.demo.seed import seed_all
from app.models.cart import Cart
from app.models.delivery import DeliveryZone, SlotUsage
from app.models.promo import PromoCode, PromoRedemption


async def test_declared_indexes_exist(app):
    # Compared by keys: the embedded server renames indexes (and does not report partial/TTL options).
    expected = {
        Cart: {("user_id",), ("token_hash",), ("expires_at",)},  # load by user / token hash; guest TTL
        DeliveryZone: {("active", "zip_codes"), ("name",)},  # zone for a ZIP
        SlotUsage: {("holds",), ("date",)},  # release by order id; usage per date
        PromoCode: {("code",), ("active", "created_at")},  # evaluate by code; admin list
        PromoRedemption: {("promo_id", "status")},
    }
    for document, keys in expected.items():
        info = await document.get_pymongo_collection().index_information()
        assert keys <= {tuple(k for k, _ in index["key"]) for index in info.values()}, document.__name__
    unique = {tuple(k for k, _ in index["key"]) for index in
              (await Cart.get_pymongo_collection().index_information()).values() if index.get("unique")}
    assert {("user_id",), ("token_hash",)} <= unique
    unique = {tuple(k for k, _ in index["key"]) for index in
              (await PromoCode.get_pymongo_collection().index_information()).values() if index.get("unique")}
    assert ("code",) in unique


async def test_seed_is_idempotent(app):
    first = await seed_all()
    await seed_all()
    assert any("WELCOME10" in line for line in first)
    assert await DeliveryZone.find_all().count() == 3
    assert await PromoCode.find_all().count() == 3
    welcome = await PromoCode.find_one(PromoCode.code == "WELCOME10")
    assert welcome.percent_bps == 1000 and welcome.per_customer_limit == 1
