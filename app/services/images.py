"""Product images: validate by content, re-encode without metadata, store, keep ``Product.images`` in order.

``Product.images`` is an array of sub-documents, so it is only ever rewritten whole under the
product's ``version`` guard (``update_versioned``). Each image's asset name is unique to that image and
carries a hash of its bytes, so deleting one image can never remove a file another one uses.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from app.config import Settings
from app.core.errors import AppError, Conflict, NotFound, Unprocessable
from app.core.ids import new_id
from app.core.versioned import NOW, update_versioned
from app.models.catalog import Product, ProductImage
from app.services.catalog_cache import CatalogCache, notify_catalog_changed
from app.services.product_lookup import load_product
from app.services.storage import Storage

log = logging.getLogger("app.images")

MIN_SIDE = 200
MAX_SIDE = 6000
MAX_PIXELS = 24_000_000  # decoded size is bounded before any pixel is decoded (decompression bombs)
STORED_MAX_SIDE = 2400  # larger uploads are scaled down: nobody needs 6000 px on a product page
MAX_IMAGES = 12
FORMATS = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"), "WEBP": ("webp", "image/webp")}
DECODERS = ["JPEG", "PNG", "WEBP"]  # no other Pillow decoder ever sees an upload


class PayloadTooLarge(AppError):
    status, code, title = 413, "request-body-too-large", "Request body too large"


@dataclass(frozen=True)
class ProcessedImage:
    data: bytes
    ext: str
    width: int
    height: int
    digest: str


def process_image(data: bytes) -> ProcessedImage:
    """Judge ``data`` by its content (JPEG, PNG or WebP within the size bounds) and re-encode it.

    Re-encoding drops EXIF, XMP, comments and text chunks (camera, GPS, software); the orientation is
    applied to the pixels first, and the ICC colour profile is kept so colours stay right. CPU-bound:
    call it in a worker thread.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=DECODERS)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning, OSError,
            ValueError, SyntaxError) as exc:
        raise Unprocessable("The file is not a JPEG, PNG or WebP image.", code="unsupported-image") from exc
    with img:
        # Phones write multi-picture JPEGs, which Pillow names MPO; the first picture is the photo.
        fmt = "JPEG" if img.format == "MPO" else img.format
        if fmt not in FORMATS:
            raise Unprocessable("The file is not a JPEG, PNG or WebP image.", code="unsupported-image")
        w, h = img.size
        if min(w, h) < MIN_SIDE or max(w, h) > MAX_SIDE or w * h > MAX_PIXELS:
            raise Unprocessable(f"Images must be {MIN_SIDE}–{MAX_SIDE} px on each side and at most "
                                f"{MAX_PIXELS // 1_000_000} megapixels; this one is {w}×{h}.", code="image-dimensions")
        try:
            if fmt == "JPEG" and max(w, h) > STORED_MAX_SIDE:
                k = STORED_MAX_SIDE / max(w, h)  # let libjpeg decode at 1/2, 1/4 … when that still suffices
                img.draft(None, (math.ceil(w * k), math.ceil(h * k)))
            img.load()
            icc = img.info.get("icc_profile")
            out = ImageOps.exif_transpose(img)
        except (OSError, ValueError, SyntaxError) as exc:
            raise Unprocessable("The image is damaged or truncated.", code="unsupported-image") from exc
    out = _normalize_mode(out, fmt)
    if max(out.size) > STORED_MAX_SIDE:
        out.thumbnail((STORED_MAX_SIDE, STORED_MAX_SIDE), Image.Resampling.LANCZOS)
    out.info = {}  # nothing from the upload's metadata travels on
    buf = io.BytesIO()
    options: dict[str, Any] = {"icc_profile": icc} if icc else {}
    if fmt == "JPEG":
        out.save(buf, "JPEG", quality=85, optimize=True, progressive=True, **options)
    elif fmt == "PNG":
        out.save(buf, "PNG", compress_level=6, **options)
    else:
        out.save(buf, "WEBP", quality=85, method=4, **options)
    encoded = buf.getvalue()
    return ProcessedImage(data=encoded, ext=FORMATS[fmt][0], width=out.width, height=out.height,
                          digest=hashlib.sha256(encoded).hexdigest())


def _normalize_mode(img: Image.Image, fmt: str) -> Image.Image:
    if fmt == "JPEG":
        return img if img.mode in ("RGB", "L") else img.convert("RGB")
    if img.mode in ("RGB", "RGBA", "L", "LA") and not (fmt == "WEBP" and img.mode in ("L", "LA")):
        return img
    has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    return img.convert("RGBA" if has_alpha else "RGB")


class ImageService:
    def __init__(self, storage: Storage, settings: Settings, cache: CatalogCache | None = None) -> None:
        """``cache``: the catalog cache bumped after each image change (None: nothing is cached, e.g. seeding)."""
        self.storage = storage
        self.settings = settings
        self.cache = cache

    async def upload(self, product_id: str, data: bytes, alt: str) -> ProductImage:
        if len(data) > self.settings.max_upload_bytes:
            raise PayloadTooLarge(f"Images can be at most {self.settings.max_upload_bytes} bytes.")
        if not data:
            raise Unprocessable("The file is empty.", code="unsupported-image")
        product = await load_product(product_id, active_only=False)
        _check_room(product)
        processed = await asyncio.to_thread(process_image, data)
        return await self.add(product_id, processed, alt)

    async def add(self, product_id: str, processed: ProcessedImage, alt: str) -> ProductImage:
        """Store the asset, then append it to the product; the asset is removed again if that fails."""
        image_id = new_id("img")
        asset = await self.storage.save(f"products/{product_id}/{image_id.lower()}-{processed.digest[:20]}",
                                        processed.data, processed.ext)
        image = ProductImage(id=image_id, storage_key=asset.key, backend=self.storage.name, url=asset.url, alt=alt,
                             width=processed.width, height=processed.height, variants=asset.variants)

        def mutate(doc: Product) -> dict[str, Any]:
            _check_room(doc)
            return _images_changes([*doc.images, image])

        try:
            await update_versioned(Product, product_id, mutate)
        except BaseException:
            await self._delete_asset(image)
            raise
        await self._changed()
        return image

    async def set_alt(self, product_id: str, image_id: str, alt: str) -> ProductImage:
        def mutate(doc: Product) -> dict[str, Any]:
            _find(doc, image_id)
            return _images_changes([i.model_copy(update={"alt": alt}) if i.id == image_id else i for i in doc.images])

        product = await update_versioned(Product, product_id, mutate)
        await self._changed()
        return _find(product, image_id)

    async def reorder(self, product_id: str, image_ids: list[str]) -> list[ProductImage]:
        def mutate(doc: Product) -> dict[str, Any]:
            by_id = {i.id: i for i in doc.images}
            if sorted(image_ids) != sorted(by_id):
                raise Conflict("The order must list every image of the product exactly once; reload and retry.",
                               code="image-set-changed")
            return _images_changes([by_id[i] for i in image_ids])

        product: Product = await update_versioned(Product, product_id, mutate)
        await self._changed()
        return product.images

    async def delete(self, product_id: str, image_id: str) -> None:
        removed: list[ProductImage] = []

        def mutate(doc: Product) -> dict[str, Any]:
            removed[:] = [_find(doc, image_id)]
            return _images_changes([i for i in doc.images if i.id != image_id])

        await update_versioned(Product, product_id, mutate)
        await self._changed()
        await self._delete_asset(removed[0])

    async def list(self, product_id: str) -> list[ProductImage]:
        return (await load_product(product_id, active_only=False)).images

    async def _delete_asset(self, image: ProductImage) -> None:
        if image.backend != self.storage.name:
            log.warning("image %s lives in %s storage, not %s: asset %s left in place", image.id, image.backend,
                        self.storage.name, image.storage_key)
            return
        try:
            await self.storage.delete(image.storage_key)
        except Exception:  # the image is gone from the product either way; an orphan asset is only cost
            log.exception("could not delete asset %s of image %s", image.storage_key, image.id)

    async def _changed(self) -> None:
        if self.cache is not None:
            await notify_catalog_changed(self.cache)


def _check_room(product: Product) -> None:
    if len(product.images) >= MAX_IMAGES:
        raise Conflict(f"A product can have at most {MAX_IMAGES} images.", code="too-many-images")


def _find(product: Product, image_id: str) -> ProductImage:
    for image in product.images:
        if image.id == image_id:
            return image
    raise NotFound("No such image on this product.")


def _images_changes(images: list[ProductImage]) -> dict[str, Any]:
    return {"images": [i.model_dump() for i in images], "updated_at": NOW}


# --- placeholders for the demo catalog ------------------------------------------------------------------
PALETTE = {
    "red": (232, 120, 128), "pink": (244, 176, 196), "white": (238, 232, 224), "yellow": (246, 218, 130),
    "purple": (190, 160, 214), "orange": (246, 178, 128), "blue": (150, 184, 228), "mixed": (214, 190, 220),
}


def placeholder_image(name: str, colors: list[str], size: int = 800) -> ProcessedImage:
    """A soft diagonal gradient in the bouquet's colours with its initials, as a JPEG."""
    seed = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    picks = [PALETTE[c] for c in colors if c in PALETTE] or [list(PALETTE.values())[seed % len(PALETTE)]]
    start = _soften(picks[0], 0.25)
    end = _soften(picks[1] if len(picks) > 1 else PALETTE["white"], 0.45)
    # Diagonal gradient from a 2×2 image resized smoothly: fast and band-free.
    img = Image.new("RGB", (2, 2))
    mid = tuple((a + b) // 2 for a, b in zip(start, end, strict=True))
    img.putdata([start, mid, mid, end])
    img = img.resize((size, size), Image.Resampling.BILINEAR)
    initials = "".join(w[0] for w in name.split() if w[:1].isalpha())[:2].upper() or "AF"
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=size // 4)
    box = draw.textbbox((0, 0), initials, font=font)
    xy = ((size - (box[2] - box[0])) / 2 - box[0], (size - (box[3] - box[1])) / 2 - box[1])
    ink = tuple(int(v * 0.55) for v in picks[0])  # a deep shade of the main colour: readable on any pastel
    draw.text(xy, initials, font=font, fill=(255, 255, 255), stroke_width=max(2, size // 200), stroke_fill=ink)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85, optimize=True, progressive=True)
    data = buf.getvalue()
    return ProcessedImage(data=data, ext="jpg", width=size, height=size, digest=hashlib.sha256(data).hexdigest())


def _soften(rgb: tuple[int, int, int], amount: float) -> tuple[int, int, int]:
    r, g, b = rgb
    return (int(r + (255 - r) * amount), int(g + (255 - g) * amount), int(b + (255 - b) * amount))
