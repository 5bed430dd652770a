"""Test data for reviews, favorites and images: products inserted directly, images generated with Pillow."""

from __future__ import annotations

import io
import uuid
from typing import Any

from PIL import Image

from app.models.catalog import Product, ProductStatus, Size


async def make_product(status: ProductStatus = ProductStatus.active, **fields: Any) -> Product:
    tag = uuid.uuid4().hex[:8]
    values: dict[str, Any] = dict(
        name=f"Blush Peony Bouquet {tag}", slug=f"blush-peony-{tag}", category_id="cat_01JD7Z0000000000000000TEST",
        status=status, sizes=[Size(code="standard", name="Standard", price=4500)], stock={"standard": 5},
        price_min=4500, colors=["pink"],
    )
    values.update(fields)
    product = Product(**values)
    await product.insert()
    return product


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (640, 480), color=(200, 120, 150), **save: Any) -> bytes:
    mode = "RGBA" if fmt == "PNG" else "RGB"
    img = Image.new(mode, size, color)
    buf = io.BytesIO()
    img.save(buf, fmt, **save)
    return buf.getvalue()


def jpeg_with_exif(size: tuple[int, int] = (640, 480)) -> bytes:
    """A JPEG carrying camera make, GPS-ish data and a comment, as phones write them."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Pocket Camera 12"  # Model
    exif[0x0131] = "SecretEditor 1.0"  # Software
    exif[0x8825] = {1: "N", 2: (40.0, 44.0, 54.0)}  # GPSInfo
    return image_bytes("JPEG", size, exif=exif.tobytes(), comment=b"shot at home")
