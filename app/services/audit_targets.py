"""What the audit log records: each target's view and fields, and the action of every admin write route.

A **target** is a kind of document staff change. Its state is read through the admin API's own response
schema (``view``), so an entry can only hold what an admin already sees through the API (never a password
hash, a token or a storage key) — and ``app/core/audit_diff.public_dump`` drops secret-named fields on top
(never the keys of dict fields, which are data: a size may be called anything).
``only``/``ignore`` are ``fnmatch`` patterns over the flattened paths: derived, cached or churning fields
(timestamps, ratings, units sold, stock moved by checkouts) are left out so a diff shows the staff member's
change, not the shop's activity in the same instant.

An **action** names one write route: ``<target>.<verb>``, where the target's id comes from (a path
parameter, a fixed id, or — for creates — the ``Location`` of the 201), and which fields it concerns.
``ROUTE_ACTIONS`` maps every non-GET route under ``/admin`` (method, path below ``/api/v1``) to its action;
``tests/test_audit.py`` fails when a new admin write route has none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from app.config import Settings
from app.core.audit_diff import flatten, public_dump, select
from app.models.catalog import Category, Product
from app.models.delivery import CONFIG_ID, DeliveryConfig, DeliveryZone
from app.models.marketing import Campaign
from app.models.order import Order
from app.models.promo import PromoCode
from app.models.review import Review
from app.models.user import User
from app.schemas.campaigns import CampaignStats, campaign_out
from app.schemas.catalog.admin import admin_category_out, admin_product_out
from app.schemas.delivery import config_out, zone_out
from app.schemas.orders import admin_order_out
from app.schemas.promo import promo_out
from app.schemas.reviews import review_admin_out
from app.schemas.users import user_out


@dataclass(frozen=True)
class AuditTarget:
    """A kind of audited document: its collection, its admin view and the view's paths worth recording."""

    name: str
    document: Any
    view: Callable[[Any, Settings], BaseModel]
    only: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    async def snapshot(self, target_id: str, settings: Settings, only: tuple[str, ...] = ()) -> dict[str, Any]:
        """The target's recorded paths now (``{}`` when it does not exist): one ``_id`` read."""
        if self.document is None:
            return {}
        raw = await self.document.get_pymongo_collection().find_one({"_id": target_id})
        if raw is None:
            return {}
        data = public_dump(self.view(self.document.model_validate(raw), settings))
        return select(flatten(data), only or self.only, self.ignore)


@dataclass(frozen=True)
class AuditAction:
    """One audited write: ``name`` (``product.update``), its target, and where the target id comes from —
    ``id_param`` (a path parameter), ``fixed_id`` (a singleton), or neither (a create: the 201's
    ``Location``). ``only`` narrows the target's fields (a stock change records only stock)."""

    name: str
    target: AuditTarget
    id_param: str | None = None
    fixed_id: str | None = None
    only: tuple[str, ...] = ()


STAMPS = ("id", "created_at", "updated_at")

PRODUCT = AuditTarget(
    "product", Product, lambda p, s: admin_product_out(p, s.currency),
    # Derived from what staff edit (category_path, price_min, canonical_path), moved by shoppers (stock,
    # ratings, units sold), or shown for convenience (currency, image size variants).
    ignore=(*STAMPS, "canonical_path", "category_path", "price_min", "currency", "stock_total", "rating.*",
            "units_sold", "ever_ordered", "sizes.*.stock", "images.*.variants.*"))
CATEGORY = AuditTarget("category", Category, lambda c, s: admin_category_out(c),
                       ignore=(*STAMPS, "canonical_path"))
# The newsletter preference is the address's subscription (its own record, app/services/newsletter.py): not read.
USER = AuditTarget("user", User, lambda u, s: user_out(u, None),
                   ignore=("id", "created_at", "preferences.newsletter", "preferences.newsletter_status"))
ORDER = AuditTarget(
    "order", Order, lambda o, s: admin_order_out(o),
    # What staff change; lines, amounts, contact and delivery details never change after checkout.
    only=("status", "payment_status", "amount_paid", "amount_refunded", "paid_at", "refunds*", "notes*",
          "flags*", "status_history.*"))
REVIEW = AuditTarget("review", Review, lambda r, s: review_admin_out(r, {}),
                     only=("hidden", "hidden_at", "hidden_by"))
PROMO = AuditTarget("promo_code", PromoCode, lambda p, s: promo_out(p),
                    ignore=(*STAMPS, "uses", "remaining_uses"))
ZONE = AuditTarget("delivery_zone", DeliveryZone, lambda z, s: zone_out(z), ignore=STAMPS)
DELIVERY_CONFIG = AuditTarget("delivery_config", DeliveryConfig, lambda c, s: config_out(c, s.shop_timezone),
                              ignore=("updated_at", "timezone"))

NO_STATS = CampaignStats(recipients=0, queued=0, sent=0, failed=0, cancelled=0, unsubscribed=0)
CAMPAIGN = AuditTarget("campaign", Campaign, lambda c, s: campaign_out(c, NO_STATS),
                       # Sending progress is the job's, not the admin's (counted in stats, read elsewhere).
                       ignore=(*STAMPS, "stats.*", "started_at", "finished_at"))

TARGETS: dict[str, AuditTarget] = {t.name: t for t in (PRODUCT, CATEGORY, USER, ORDER, REVIEW, PROMO, ZONE,
                                                       DELIVERY_CONFIG, CAMPAIGN)}

IMAGES = ("images", "images.*")

ROUTE_ACTIONS: dict[tuple[str, str], AuditAction] = {
    # catalog
    ("POST", "/admin/categories"): AuditAction("category.create", CATEGORY),
    ("PATCH", "/admin/categories/{category_id}"): AuditAction("category.update", CATEGORY, "category_id"),
    ("POST", "/admin/categories/{category_id}/move"): AuditAction("category.move", CATEGORY, "category_id"),
    ("DELETE", "/admin/categories/{category_id}"): AuditAction("category.delete", CATEGORY, "category_id"),
    ("POST", "/admin/products"): AuditAction("product.create", PRODUCT),
    ("PATCH", "/admin/products/{product_id}"): AuditAction("product.update", PRODUCT, "product_id"),
    ("POST", "/admin/products/{product_id}/archive"): AuditAction("product.archive", PRODUCT, "product_id"),
    ("DELETE", "/admin/products/{product_id}"): AuditAction("product.delete", PRODUCT, "product_id"),
    # stock and images (recorded on their product)
    ("POST", "/admin/products/{product_id}/stock"): AuditAction("product.stock_adjust", PRODUCT, "product_id",
                                                                only=("sizes.*.stock",)),
    ("POST", "/admin/products/{product_id}/images"): AuditAction("product.image_upload", PRODUCT, "product_id",
                                                                 only=IMAGES),
    ("PATCH", "/admin/products/{product_id}/images/{image_id}"): AuditAction("product.image_update", PRODUCT,
                                                                             "product_id", only=IMAGES),
    ("PUT", "/admin/products/{product_id}/images/order"): AuditAction("product.image_reorder", PRODUCT,
                                                                      "product_id", only=IMAGES),
    ("DELETE", "/admin/products/{product_id}/images/{image_id}"): AuditAction("product.image_delete", PRODUCT,
                                                                              "product_id", only=IMAGES),
    # reviews moderation
    ("POST", "/admin/reviews/{review_id}/hide"): AuditAction("review.hide", REVIEW, "review_id"),
    ("POST", "/admin/reviews/{review_id}/unhide"): AuditAction("review.unhide", REVIEW, "review_id"),
    # orders
    ("POST", "/admin/orders/{order_id}/status"): AuditAction("order.status_change", ORDER, "order_id"),
    ("POST", "/admin/orders/{order_id}/refund"): AuditAction("order.refund", ORDER, "order_id"),
    ("POST", "/admin/orders/{order_id}/settle"): AuditAction("order.settle", ORDER, "order_id"),
    ("POST", "/admin/orders/{order_id}/notes"): AuditAction("order.note", ORDER, "order_id"),
    # delivery settings
    ("POST", "/admin/delivery/zones"): AuditAction("delivery_zone.create", ZONE),
    ("PATCH", "/admin/delivery/zones/{zone_id}"): AuditAction("delivery_zone.update", ZONE, "zone_id"),
    ("DELETE", "/admin/delivery/zones/{zone_id}"): AuditAction("delivery_zone.delete", ZONE, "zone_id"),
    ("PATCH", "/admin/delivery/config"): AuditAction("delivery_config.update", DELIVERY_CONFIG, fixed_id=CONFIG_ID),
    # promo codes
    ("POST", "/admin/promo-codes"): AuditAction("promo_code.create", PROMO),
    ("PATCH", "/admin/promo-codes/{promo_id}"): AuditAction("promo_code.update", PROMO, "promo_id"),
    ("DELETE", "/admin/promo-codes/{promo_id}"): AuditAction("promo_code.delete", PROMO, "promo_id"),
    # users and roles
    ("PATCH", "/admin/users/{user_id}"): AuditAction("user.update", USER, "user_id"),
    # newsletter campaigns (a test send changes nothing: its entry records who sent one, and where: the
    # service notes the address as the change `test_send.to`)
    ("POST", "/admin/campaigns"): AuditAction("campaign.create", CAMPAIGN),
    ("PATCH", "/admin/campaigns/{campaign_id}"): AuditAction("campaign.update", CAMPAIGN, "campaign_id"),
    ("POST", "/admin/campaigns/{campaign_id}/test-send"): AuditAction("campaign.test_send", CAMPAIGN, "campaign_id"),
    ("POST", "/admin/campaigns/{campaign_id}/schedule"): AuditAction("campaign.schedule", CAMPAIGN, "campaign_id"),
    ("POST", "/admin/campaigns/{campaign_id}/cancel"): AuditAction("campaign.cancel", CAMPAIGN, "campaign_id"),
}

# Audited changes made outside the admin API (app/cli.py create-admin).
OTHER_ACTIONS = (AuditAction("user.create_admin", USER), AuditAction("user.promote_admin", USER))

ACTIONS: dict[str, AuditAction] = {a.name: a for a in (*ROUTE_ACTIONS.values(), *OTHER_ACTIONS)}
