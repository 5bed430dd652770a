"""Product image API schemas."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from app.core.text import FreeText
from app.models.catalog import ProductImage
from app.schemas.common import StrictModel, unique_items

AltText = Annotated[str, FreeText(200)]
ImageId = Annotated[str, StringConstraints(max_length=40, pattern=r"^img_[0-9A-Z]{26}$")]


class ImageOut(BaseModel):
    id: str
    url: str
    alt: str
    width: int
    height: int
    variants: dict[str, str] = Field(default_factory=dict,
                                     description="Width in px → URL, for srcset (empty for local storage).")


class ImageAltIn(StrictModel):
    alt: AltText


class ImageOrderIn(StrictModel):
    image_ids: Annotated[list[ImageId], unique_items("image ids")] = Field(
        min_length=1, max_length=50, description="Every image id, in the new order.")


def image_out(image: ProductImage) -> ImageOut:
    return ImageOut(id=image.id, url=image.url, alt=image.alt, width=image.width, height=image.height,
                    variants=image.variants)
