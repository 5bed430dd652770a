"""Every API router, mounted under API_PREFIX by the app factory (order = order in the OpenAPI)."""

from app.routers import admin, admin_delivery, admin_promo, admin_users, auth, cart, delivery, me, ops

API_PREFIX = "/api/v1"

admin.router.include_router(admin_users.router)
admin.router.include_router(admin_delivery.router)
admin.router.include_router(admin_promo.router)

ROUTERS = [auth.router, me.router, cart.router, delivery.router, admin.router, ops.router]
