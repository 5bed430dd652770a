"""Image uploads through the real Cloudinary SDK, pointed at a local double that verifies the signature."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image

from app.models.catalog import Product
from tests.catalog_fixtures import jpeg_with_exif, make_product
from tests.cloudinary_double import CloudinaryDouble

API = "/api/v1/admin/products"
CLOUD, KEY, SECRET = "amour-test", "481516234200", "s3cr3t-Api-Secret-value"


@pytest.fixture
def cloudinary_double():
    double = CloudinaryDouble(api_key=KEY, api_secret=SECRET).start()
    yield double
    double.stop()


@pytest.fixture
def settings(make_settings, cloudinary_double):
    return make_settings(cloudinary_url=f"cloudinary://{KEY}:{SECRET}@{CLOUD}",
                         cloudinary_upload_prefix=cloudinary_double.url)


async def upload(client, headers, product_id, data):
    return await client.post(f"{API}/{product_id}/images", headers=headers, data={"alt": "Roses"},
                             files={"file": ("roses.jpg", data, "image/jpeg")})


async def test_signed_upload_and_destroy(client, staff, cloudinary_double, settings):
    product = await make_product()
    r = await upload(client, staff[1], product.id, jpeg_with_exif((1200, 800)))
    assert r.status_code == 201, r.text
    image = r.json()

    [call] = cloudinary_double.calls
    assert call.action == "upload" and call.cloud == CLOUD and call.signature_ok
    assert len(call.params["signature"]) == 64  # SHA-256
    public_id = call.params["public_id"]
    assert public_id.startswith(f"amour-florals/products/{product.id}/{image['id'].lower()}-")
    # The bytes arrived intact: the name carries the hash of exactly what was sent.
    assert public_id.endswith("-" + hashlib.sha256(call.file).hexdigest()[:20])
    with Image.open(io.BytesIO(call.file)) as sent:
        assert sent.format == "JPEG" and sent.size == (1200, 800) and dict(sent.getexif()) == {}
    assert b"PhoneMaker" not in call.file

    base = f"https://res.cloudinary.com/{CLOUD}/image/upload"
    assert image["url"] == f"{base}/f_auto,q_auto/v1764000000/{public_id}"
    assert image["variants"] == {str(w): f"{base}/c_limit,f_auto,q_auto,w_{w}/v1764000000/{public_id}"
                                 for w in (320, 640, 960, 1280, 1920)}
    stored = (await Product.get(product.id)).images[0]
    assert (stored.backend, stored.storage_key, stored.alt) == ("cloudinary", public_id, "Roses")

    r = await client.delete(f"{API}/{product.id}/images/{image['id']}", headers=staff[1])
    assert r.status_code == 204
    destroy = cloudinary_double.calls[-1]
    assert destroy.action == "destroy" and destroy.signature_ok and destroy.params["public_id"] == public_id
    assert cloudinary_double.assets == {} and (await Product.get(product.id)).images == []


async def test_rejected_signature_is_503_and_nothing_is_attached(client, staff, cloudinary_double):
    cloudinary_double.api_secret = "a-different-secret"  # the account's secret no longer matches ours
    product = await make_product()
    r = await upload(client, staff[1], product.id, jpeg_with_exif())
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert [c.signature_ok for c in cloudinary_double.calls] == [False]
    assert (await Product.get(product.id)).images == []


async def test_local_media_is_not_served_with_cloudinary(client):
    r = await client.get("/media/products/x.jpg")
    assert r.status_code == 404 and "cache-control" not in r.headers
