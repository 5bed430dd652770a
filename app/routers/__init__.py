"""Every API router, mounted under API_PREFIX by the app factory (order = order in the OpenAPI)."""

from app.routers import (
    admin,
    admin_audit,
    admin_campaigns,
    admin_catalog,
    admin_delivery,
    admin_orders,
    admin_product_images,
    admin_promo,
    admin_reports,
    admin_reviews,
    admin_users,
    auth,
    cart,
    catalog,
    checkout,
    delivery,
    events,
    favorites,
    me,
    newsletter,
    ops,
    orders,
    payments,
    reviews,
    stock_alerts,
)
from app.routers.params import API_PREFIX as API_PREFIX

admin.router.include_router(admin_users.router)
admin.router.include_router(admin_catalog.categories)
admin.router.include_router(admin_catalog.products)
admin.router.include_router(admin_product_images.router)
admin.router.include_router(admin_catalog.inventory)
admin.router.include_router(admin_reviews.router)
admin.router.include_router(admin_delivery.router)
admin.router.include_router(admin_promo.router)
admin.router.include_router(admin_orders.router)
admin.router.include_router(admin_reports.router)
admin.router.include_router(admin_audit.router)
admin.router.include_router(admin_campaigns.router)

ROUTERS = [auth.router, me.router, favorites.router, catalog.router, stock_alerts.router, reviews.router, cart.router,
           delivery.router, checkout.router, orders.router, payments.router, newsletter.router, events.router,
           admin.router, ops.router]
