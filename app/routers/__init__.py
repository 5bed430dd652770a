"""Every API router, mounted under API_PREFIX by the app factory (order = order in the OpenAPI)."""

from app.routers import admin, admin_users, auth, me, ops

API_PREFIX = "/api/v1"

admin.router.include_router(admin_users.router)

ROUTERS = [auth.router, me.router, admin.router, ops.router]
