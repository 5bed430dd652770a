"""Idempotent demo data. Each seeder adds what is missing and leaves existing records alone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from app.core.clock import utcnow
from app.core.security import hash_password
from app.demo.analytics import seed_analytics_history
from app.demo.catalog import seed_catalog
from app.demo.delivery import seed_delivery_and_promos
from app.demo.marketing import seed_marketing
from app.demo.orders import seed_demo_orders, seed_demo_reviews
from app.models.user import Address, Role, User

DEMO_PASSWORD = "Bouquet-Demo-2026"

# Logins must pass the API's email validation: special-use domains such as .test are refused there.
DEMO_USERS = [
    ("admin@amourflorals.com", "Ava", "Admin", Role.admin),
    ("staff@amourflorals.com", "Sam", "Staff", Role.staff),
    ("olivia@example.com", "Olivia", "Bloom", Role.customer),
    ("liam@example.com", "Liam", "Fern", Role.customer),
    ("emma@example.com", "Emma", "Rose", Role.customer),
]


async def seed_users() -> list[str]:
    lines = []
    for email, first, last, role in DEMO_USERS:
        if await User.find_one(User.email == email) is None:
            addresses = [] if role != Role.customer else [Address(
                label="Home", first_name=first, last_name=last, line1="120 Bleecker St", city="New York",
                state="NY", zip="10012", phone="+12125550142", is_default=True)]
            await User(email=email, first_name=first, last_name=last, role=role, addresses=addresses,
                       password_hash=hash_password(DEMO_PASSWORD), email_verified_at=utcnow()).insert()
        lines.append(f"  {role.value:<9} {email:<28} {DEMO_PASSWORD}")
    return ["Demo logins:", *lines]


async def seed_product_images() -> list[str]:
    """Give every product without images one generated placeholder, stored through the configured backend.

    Runs after the catalog seeder; a no-op when there are no products (or all have images).
    """
    from app.config import get_settings
    from app.models.catalog import Product
    from app.services.images import ImageService, placeholder_image
    from app.services.storage import make_storage

    settings = get_settings()
    images = ImageService(make_storage(settings), settings)
    added = 0
    for product in await Product.find({"images": {"$size": 0}}).to_list():
        placeholder = await asyncio.to_thread(placeholder_image, product.name, [c.value for c in product.colors])
        await images.add(product.id, placeholder, alt=product.name)
        added += 1
    return [f"Product images: {added} placeholder(s) added."] if added else []


# Later areas append their seeders here; each returns lines to print.
SEEDERS: list[Callable[[], Awaitable[list[str]]]] = [
    seed_users, seed_catalog, seed_delivery_and_promos, seed_product_images,
    seed_demo_orders, seed_demo_reviews,  # after users, catalog and delivery: they place orders through them
    seed_marketing,  # after users and catalog: subscribers and a draft campaign naming featured products
    seed_analytics_history,  # after the catalog and the customers
]


async def seed_all() -> list[str]:
    out: list[str] = []
    for seeder in SEEDERS:
        out.extend(await seeder())
    return out
