"""Public catalog: categories, products (lists, facets, detail, related), suggestions, sitemap.

The reader answers the declared response models (built from cached rows plus live stock by the mappers of
``app.schemas.catalog.public``); each is encoded once and sent with ETag + Cache-Control (``If-None-Match``
gets 304). Each response is kept ready (bytes and ETag) by the catalog cache, and
``ResponseCacheMiddleware`` answers the same GET again from it until the catalog or stock changes (see
app/services/catalog_responses.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from app.core.http_cache import OnServe, if_none_match
from app.core.problems import problem_responses
from app.core.query import QueryModel
from app.deps import get_tracker
from app.schemas.catalog.params import ProductFilters, ProductListParams
from app.schemas.catalog.public import (
    CategoryDetail,
    CategoryTree,
    Facets,
    ProductDetail,
    ProductList,
    ProductPage,
    Suggestions,
)
from app.services.analytics import Tracker, tracker_of
from app.services.catalog_read import CatalogReader, get_catalog_reader

router = APIRouter(tags=["catalog"], dependencies=[Depends(if_none_match)])  # every read: ETag and 304


async def reader_dep(request: Request) -> AsyncIterator[CatalogReader]:
    reader = get_catalog_reader(request.app.state.runtime)
    async with reader.cache.pinned():  # one snapshot of the cache versions per request
        yield reader


Reader = Annotated[CatalogReader, Depends(reader_dep)]
Track = Annotated[Tracker, Depends(get_tracker)]
Ref = Annotated[str, Path(min_length=2, max_length=80, pattern=r"^[A-Za-z0-9_-]+$",
                          description="Id or slug")]
ShortLimit = Annotated[int, Query(ge=1, le=48)]
ListQuery = QueryModel(ProductListParams)
FacetQuery = QueryModel(ProductFilters)



async def _json(request: Request, reader: CatalogReader, produce: Callable[[], Awaitable[object]],
                on_serve: Callable[[Any], OnServe | None] | None = None) -> Response:
    stored = await reader.cache.render(request, produce, max_age=request.app.state.settings.catalog_http_max_age,
                                       on_serve=on_serve)
    return stored.response(request)


def _viewed(product: ProductDetail) -> OnServe:
    """Shop analytics: every answer of a product page (also 304 and from the response store) is a view."""
    product_id = product.id
    return lambda request: tracker_of(request).product_viewed(product_id)


def _searched(q: str | None, cursor: str | None) -> Callable[[ProductPage], OnServe | None]:
    """Shop analytics: the first page of a search (later pages are the same search) with its result count."""
    if not q or cursor:
        return lambda page: None

    def hook(page: ProductPage) -> OnServe:
        total = page.total or 0
        return lambda request: tracker_of(request).searched(q, total)

    return hook



@router.get("/categories", summary="Tree of active categories with product counts",
            response_model=CategoryTree)
async def category_tree(request: Request, reader: Reader) -> Response:
    return await _json(request, reader, lambda: reader.category_tree())


@router.get("/categories/{ref}", response_model=CategoryDetail, responses=problem_responses(404),
            summary="A category by id or slug, with breadcrumbs, children and SEO fields")
async def category_detail(ref: Ref, request: Request, reader: Reader) -> Response:
    return await _json(request, reader, lambda: reader.category_detail(ref))


@router.get("/products", response_model=ProductPage, responses=problem_responses(404, 422),
            summary="Filter, search, sort and page through bouquets", openapi_extra=ListQuery.openapi)
async def list_products(request: Request, reader: Reader, _track: Track,
                        params: Annotated[ProductListParams, Depends(ListQuery)]) -> Response:
    return await _json(request, reader, lambda: reader.list_products(params), _searched(params.q, params.cursor))


@router.get("/products/facets", response_model=Facets, responses=problem_responses(404, 422),
            summary="Counts per occasion, flower type, color, category and price bucket for the filters",
            openapi_extra=FacetQuery.openapi)
async def product_facets(request: Request, reader: Reader,
                         params: Annotated[ProductFilters, Depends(FacetQuery)]) -> Response:
    return await _json(request, reader, lambda: reader.facets(params))


@router.get("/products/featured", response_model=ProductList, summary="Featured bouquets")
async def featured(request: Request, reader: Reader, limit: ShortLimit = 12) -> Response:
    return await _json(request, reader, lambda: reader.featured(limit))


@router.get("/products/popular", response_model=ProductList, summary="Best sellers (by units sold)")
async def popular(request: Request, reader: Reader, limit: ShortLimit = 12) -> Response:
    return await _json(request, reader, lambda: reader.popular(limit))


@router.get("/products/{ref}", response_model=ProductDetail, responses=problem_responses(404),
            summary="A bouquet by id or slug")
async def product_detail(ref: Ref, request: Request, reader: Reader, _track: Track) -> Response:
    return await _json(request, reader, lambda: reader.product_detail(ref), _viewed)


@router.get("/products/{ref}/related", response_model=ProductList, responses=problem_responses(404),
            summary="In-stock bouquets of the same category or occasion")
async def related(ref: Ref, request: Request, reader: Reader, limit: ShortLimit = 8) -> Response:
    return await _json(request, reader, lambda: reader.related(ref, limit))


@router.get("/search/suggest", response_model=Suggestions, responses=problem_responses(422),
            summary="Up to 10 suggestions (products, categories, occasions) for a prefix; from 2 characters")
async def suggest(request: Request, reader: Reader,
                  q: Annotated[str, Query(min_length=1, max_length=100)]) -> Response:
    return await _json(request, reader, lambda: reader.suggest(q))


@router.get("/sitemap.xml", summary="Storefront URLs of active categories and products",
            response_class=Response,
            responses={200: {"content": {"application/xml": {"schema": {"type": "string",
                                                                        "description": "A sitemaps.org urlset"}}}}})
async def sitemap(request: Request, reader: Reader) -> Response:
    stored = await reader.cache.render(request, reader.sitemap, media_type="application/xml",
                                       max_age=max(300, request.app.state.settings.catalog_http_max_age))
    return stored.response(request)

