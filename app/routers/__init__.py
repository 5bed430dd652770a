"""Every API router, mounted under API_PREFIX by the app factory (order = order in the OpenAPI)."""

from app.routers import admin, admin_orders, admin_users, auth, me, ops, orders, payments

API_PREFIX = "/api/v1"

admin.router.include_router(admin_users.router)
admin.router.include_router(admin_orders.router)

ROUTERS = [auth.router, me.router, orders.router, payments.router, admin.router, ops.router]
