"""/admin/products/{id}/images (staff): upload, alt text, order, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Response, UploadFile, status

from app.core.problems import problem_responses
from app.deps import SettingsDep, get_image_service
from app.routers.params import CREATED, ImageId, ProductId, created
from app.schemas.images import AltText, ImageAltIn, ImageOrderIn, ImageOut, image_out
from app.services.images import ImageService

router = APIRouter(prefix="/products/{product_id}/images", tags=["admin: product images"],
                   responses=problem_responses(404, 422))

Images = Annotated[ImageService, Depends(get_image_service)]


@router.get("", response_model=list[ImageOut], summary="A product's images in display order")
async def list_images(product_id: ProductId, images: Images) -> list[ImageOut]:
    return [image_out(i) for i in await images.list(product_id)]


@router.post("", response_model=ImageOut, status_code=status.HTTP_201_CREATED,
             responses={**problem_responses(409, 413, 503), **CREATED},
             summary="Upload an image (JPEG, PNG or WebP, judged by content; at most 10 MiB; 200–6000 px a side)")
async def upload_image(product_id: ProductId, images: Images, settings: SettingsDep,
                       file: Annotated[UploadFile, File(description="The image file")],
                       response: Response,
                       alt: Annotated[AltText, Form(description="Alt text for screen readers")] = "") -> ImageOut:
    data = await file.read(settings.max_upload_bytes + 1)
    out = image_out(await images.upload(product_id, data, alt))
    created(response, f"/admin/products/{product_id}/images")
    return out


@router.patch("/{image_id}", response_model=ImageOut, summary="Set an image's alt text")
async def set_alt(product_id: ProductId, image_id: ImageId, body: ImageAltIn, images: Images) -> ImageOut:
    return image_out(await images.set_alt(product_id, image_id, body.alt))


@router.put("/order", response_model=list[ImageOut], responses=problem_responses(409),
            summary="Reorder the images (list every image id in the new order)")
async def reorder(product_id: ProductId, body: ImageOrderIn, images: Images) -> list[ImageOut]:
    return [image_out(i) for i in await images.reorder(product_id, body.image_ids)]


@router.delete("/{image_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an image and its stored file")
async def delete_image(product_id: ProductId, image_id: ImageId, images: Images) -> Response:
    await images.delete(product_id, image_id)
    return Response(status_code=204)
