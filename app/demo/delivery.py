"""Demo delivery zones, the delivery config and a few promo codes (idempotent)."""

from __future__ import annotations

from datetime import timedelta

from app.config import get_settings
from app.core.clock import utcnow
from app.models.delivery import DeliveryZone
from app.models.promo import PromoCode, PromoKind
from app.services.delivery import DeliveryService

DEMO_ZONES = [
    ("Manhattan", ["100", "101", "102"], 999, True),
    ("Brooklyn", ["112"], 1299, True),
    ("Queens", ["113", "114", "116"], 1499, False),
]


async def seed_delivery_and_promos() -> list[str]:
    await DeliveryService(get_settings()).config()  # the default config, from settings
    for name, prefixes, fee, same_day in DEMO_ZONES:
        if await DeliveryZone.find_one(DeliveryZone.name == name) is None:
            await DeliveryZone(name=name, zip_prefixes=prefixes, fee=fee, same_day_allowed=same_day).insert()
    codes = [
        PromoCode(code="WELCOME10", kind=PromoKind.percentage, percent_bps=1000, per_customer_limit=1,
                  description="10 % off your first order"),
        PromoCode(code="FREESHIP", kind=PromoKind.free_delivery, min_subtotal=7500,
                  description="Free delivery from $75"),
        PromoCode(code="SPRING15", kind=PromoKind.percentage, percent_bps=1500, max_discount=2000,
                  valid_until=utcnow() + timedelta(days=90), usage_limit=500, description="Spring: 15 % off"),
    ]
    for promo in codes:
        if await PromoCode.find_one(PromoCode.code == promo.code) is None:
            await promo.insert()
    return ["Delivery zones: " + ", ".join(f"{n} ({'/'.join(p)}xx)" for n, p, _, _ in DEMO_ZONES),
            "Promo codes: " + ", ".join(p.code for p in codes)]
