"""Every API router, mounted under API_PREFIX by the app factory (order = order in the OpenAPI)."""

from app.routers import (
    admin,
    admin_product_images,
    admin_reviews,
    admin_users,
    auth,
    favorites,
    me,
    ops,
    reviews,
)

API_PREFIX = "/api/v1"

admin.router.include_router(admin_users.router)
admin.router.include_router(admin_reviews.router)
admin.router.include_router(admin_product_images.router)

ROUTERS = [auth.router, me.router, favorites.router, reviews.router, admin.router, ops.router]
