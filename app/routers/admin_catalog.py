"""/admin/categories, /admin/products and /admin/inventory (shop staff and admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from app.core.pagination import PageParams
from app.core.problems import problem_responses
from app.deps import StaffUser, get_category_admin_service, get_product_admin_service
from app.routers.params import CREATED, CategoryId, ProductId, created
from app.schemas.catalog.admin import (
    AdminCategory,
    AdminProduct,
    AdminProductParams,
    CategoryCreate,
    CategoryMove,
    CategoryUpdate,
    LowStockList,
    ProductCreate,
    ProductUpdate,
    StockAdjust,
    StockMovementOut,
    admin_category_out,
    admin_product_out,
    movement_out,
)
from app.schemas.common import Page
from app.services.categories import CategoryAdminService
from app.services.inventory import low_stock_report
from app.services.product_admin import ProductAdminService

categories = APIRouter(prefix="/categories", tags=["admin: catalog"])
products = APIRouter(prefix="/products", tags=["admin: catalog"])
inventory = APIRouter(prefix="/inventory", tags=["admin: inventory"])


Categories = Annotated[CategoryAdminService, Depends(get_category_admin_service)]
Products = Annotated[ProductAdminService, Depends(get_product_admin_service)]


def _currency(request: Request) -> str:
    currency: str = request.app.state.settings.currency
    return currency


# --- categories ------------------------------------------------------------------------------------
@categories.get("", response_model=list[AdminCategory], summary="Every category (inactive ones too), tree order")
async def list_categories(svc: Categories) -> list[AdminCategory]:
    return [admin_category_out(c) for c in await svc.list_all()]


@categories.post("", response_model=AdminCategory, status_code=status.HTTP_201_CREATED,
                 responses={**problem_responses(409, 422), **CREATED},
                 summary="Create a category (slug from the name if omitted)")
async def create_category(body: CategoryCreate, svc: Categories, response: Response) -> AdminCategory:
    out = admin_category_out(await svc.create(body))
    created(response, f"/admin/categories/{out.id}")
    return out


@categories.get("/{category_id}", response_model=AdminCategory, responses=problem_responses(404))
async def get_category(category_id: CategoryId, svc: Categories) -> AdminCategory:
    return admin_category_out(await svc.get(category_id))


@categories.patch("/{category_id}", response_model=AdminCategory, responses=problem_responses(404, 409, 422),
                  summary="Update fields of a category (use /move to change its parent)")
async def update_category(category_id: CategoryId, body: CategoryUpdate, svc: Categories) -> AdminCategory:
    return admin_category_out(await svc.update(category_id, body))


@categories.post("/{category_id}/move", response_model=AdminCategory, responses=problem_responses(404, 409, 422),
                 summary="Move under another parent (or to the root); a cycle or a 5th level is 409")
async def move_category(category_id: CategoryId, body: CategoryMove, svc: Categories) -> AdminCategory:
    return admin_category_out(await svc.move(category_id, body.parent_id))


@categories.delete("/{category_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404, 409),
                   summary="Delete an empty category (409 while it has subcategories or products)")
async def delete_category(category_id: CategoryId, svc: Categories) -> Response:
    await svc.delete(category_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- products --------------------------------------------------------------------------------------
@products.get("", response_model=Page[AdminProduct], responses=problem_responses(404, 422),
              summary="Products in every status, newest first, with filters")
async def list_products(request: Request, svc: Products,
                        params: Annotated[AdminProductParams, Query()]) -> Page[AdminProduct]:
    docs, cursor, total = await svc.list(params)
    return Page(items=[admin_product_out(p, _currency(request)) for p in docs], next_cursor=cursor, total=total)


@products.post("", response_model=AdminProduct, status_code=status.HTTP_201_CREATED,
               responses={**problem_responses(409, 422), **CREATED},
               summary="Create a product (draft unless status is given)")
async def create_product(request: Request, response: Response, body: ProductCreate, svc: Products,
                         actor: StaffUser) -> AdminProduct:
    out = admin_product_out(await svc.create(body, actor), _currency(request))
    created(response, f"/admin/products/{out.id}")
    return out


@products.get("/{product_id}", response_model=AdminProduct, responses=problem_responses(404))
async def get_product(request: Request, product_id: ProductId, svc: Products) -> AdminProduct:
    return admin_product_out(await svc.get(product_id), _currency(request))


@products.patch("/{product_id}", response_model=AdminProduct, responses=problem_responses(404, 409, 422),
                summary="Update the fields sent (stock changes go through /stock)")
async def update_product(request: Request, product_id: ProductId, body: ProductUpdate, svc: Products) -> AdminProduct:
    return admin_product_out(await svc.update(product_id, body), _currency(request))


@products.post("/{product_id}/archive", response_model=AdminProduct, responses=problem_responses(404),
               summary="Archive: hidden from the shop, kept for orders")
async def archive_product(request: Request, product_id: ProductId, svc: Products) -> AdminProduct:
    return admin_product_out(await svc.archive(product_id), _currency(request))


@products.delete("/{product_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404, 409),
                 summary="Delete a product that was never ordered (otherwise 409: archive it)")
async def delete_product(product_id: ProductId, svc: Products) -> Response:
    await svc.delete(product_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@products.post("/{product_id}/stock", response_model=StockMovementOut, status_code=status.HTTP_201_CREATED,
               responses={**problem_responses(404, 409, 422), **CREATED},
               summary="Add or remove units of one size atomically (never below zero: 409)",
               description="`Location` is the product's stock-movement list, which starts with this movement.")
async def adjust_stock(product_id: ProductId, body: StockAdjust, svc: Products, actor: StaffUser,
                       response: Response) -> StockMovementOut:
    out = movement_out(await svc.adjust_stock(product_id, body, actor))
    created(response, f"/admin/products/{product_id}/stock-movements")
    return out


@products.get("/{product_id}/stock-movements", response_model=Page[StockMovementOut],
              responses=problem_responses(404), summary="Stock movements of a product, newest first")
async def stock_movements(product_id: ProductId, svc: Products,
                          page: Annotated[PageParams, Query()]) -> Page[StockMovementOut]:
    docs, cursor = await svc.movements(product_id, page)
    return Page(items=[movement_out(m) for m in docs], next_cursor=cursor)


# --- inventory -------------------------------------------------------------------------------------
@inventory.get("/low-stock", response_model=LowStockList,
               summary="Sizes at or below their product's low-stock threshold (draft and active products)")
async def low_stock() -> LowStockList:
    return LowStockList.model_validate({"items": await low_stock_report()})
