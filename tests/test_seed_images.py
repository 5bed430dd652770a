"""The image seeder: one generated placeholder per product without images, idempotent, a no-op without products."""

from __future__ import annotations

import io
from urllib.parse import urlsplit

import pytest
from PIL import Image

from app.demo import seed
from app.models.catalog import Product, ProductStatus
from tests.catalog_fixtures import make_product


@pytest.fixture
def seed_settings(settings, monkeypatch):
    monkeypatch.setattr("app.config.get_settings", lambda: settings)
    return settings


async def test_runs_after_the_catalog_and_is_a_noop_without_products(app, seed_settings):
    assert seed.SEEDERS.index(seed.seed_product_images) > seed.SEEDERS.index(seed.seed_catalog)
    assert await seed.seed_product_images() == []
    assert not seed_settings.media_dir.exists() or not any(seed_settings.media_dir.rglob("*.*"))


async def test_placeholder_per_product_without_images(app, client, seed_settings):
    bare = await make_product(name="Scarlet Rose Romance", colors=["red", "pink"])
    draft = await make_product(name="Winter White", colors=["white"], status=ProductStatus.draft)
    pictured = await make_product(images=[{"id": "img_01JD7Z00000000000000000000", "storage_key": "k.jpg",
                                           "url": "http://x/k.jpg", "width": 300, "height": 300}])

    assert await seed.seed_product_images() == ["Product images: 2 placeholder(s) added."]
    for product in (bare, draft):
        [image] = (await Product.get(product.id)).images
        assert image.alt == product.name and image.backend == "local" and (image.width, image.height) == (800, 800)
        r = await client.get(urlsplit(image.url).path)
        assert r.status_code == 200
        with Image.open(io.BytesIO(r.content)) as img:
            assert img.format == "JPEG" and img.size == (800, 800)
            assert len(set(img.getdata())) > 50  # a gradient with lettering, not a flat fill
    assert [i.id for i in (await Product.get(pictured.id)).images] == ["img_01JD7Z00000000000000000000"]

    files = sorted(seed_settings.media_dir.rglob("*.jpg"))
    assert await seed.seed_product_images() == []
    assert sorted(seed_settings.media_dir.rglob("*.jpg")) == files and len(files) == 2
