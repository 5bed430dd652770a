"""/admin/reports (staff): sales over time, top products, customers, an overview for the dashboard, and shopper
behaviour (conversion funnel, searches, product interest, cart abandonment)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.core.problems import problem_responses
from app.deps import get_report_service, get_shopper_report_service
from app.schemas.reports import (
    SALES_BASIS,
    BucketedRange,
    CustomersReport,
    Overview,
    ReportRange,
    SalesReport,
    TopProductsQuery,
    TopProductsReport,
    customers_report_out,
    overview_out,
    sales_report_out,
    top_products_out,
)
from app.schemas.shopper_reports import (
    FUNNEL_BASIS,
    CartAbandonmentReport,
    FunnelReport,
    LimitedRange,
    ProductInterestReport,
    SearchesReport,
    cart_abandonment_out,
    funnel_out,
    product_interest_out,
    searches_out,
)
from app.services.reports import ReportService
from app.services.shopper_reports import ShopperReportService

router = APIRouter(prefix="/reports", tags=["admin: reports"])

Reports = Annotated[ReportService, Depends(get_report_service)]
Shoppers = Annotated[ShopperReportService, Depends(get_shopper_report_service)]


@router.get("/sales", response_model=SalesReport, responses=problem_responses(422),
            summary="Revenue, orders, units and average order value per shop day, ISO week or month",
            description=SALES_BASIS + " Ranges cover at most 366 days; every bucket is listed, empty ones with zeros.")
async def sales(q: Annotated[BucketedRange, Query()], reports: Reports) -> SalesReport:
    return sales_report_out(await reports.sales(q))


@router.get("/top-products", response_model=TopProductsReport, responses=problem_responses(422),
            summary="Best-selling products of paid orders placed in the range, by revenue or units")
async def top_products(q: Annotated[TopProductsQuery, Query()], reports: Reports) -> TopProductsReport:
    return top_products_out(await reports.top_products(q))


@router.get("/customers", response_model=CustomersReport, responses=problem_responses(422),
            summary="New customer accounts per bucket and the repeat-customer rate")
async def customers(q: Annotated[BucketedRange, Query()], reports: Reports) -> CustomersReport:
    return customers_report_out(await reports.customers(q))


@router.get("/overview", response_model=Overview, summary="Today, last 7 and last 30 shop days at a glance")
async def overview(reports: Reports) -> Overview:
    return overview_out(await reports.overview())


# --- shopper behaviour (analytics events; see app/services/analytics.py) ------------------------------------
@router.get("/funnel", response_model=FunnelReport, responses=problem_responses(422),
            summary="Conversion funnel per shop day: product views, cart adds, checkouts, paid orders, with rates",
            description=FUNNEL_BASIS)
async def funnel(q: Annotated[ReportRange, Query()], reports: Shoppers) -> FunnelReport:
    return funnel_out(await reports.funnel(q))


@router.get("/searches", response_model=SearchesReport, responses=problem_responses(422),
            summary="Top searches and the searches that found nothing")
async def searches(q: Annotated[LimitedRange, Query()], reports: Shoppers) -> SearchesReport:
    return searches_out(await reports.searches(q))


@router.get("/product-interest", response_model=ProductInterestReport, responses=problem_responses(422),
            summary="Most viewed against most bought products")
async def product_interest(q: Annotated[LimitedRange, Query()], reports: Shoppers) -> ProductInterestReport:
    return product_interest_out(await reports.product_interest(q))


@router.get("/cart-abandonment", response_model=CartAbandonmentReport, responses=problem_responses(422),
            summary="Shoppers who added to a cart and did not pay an order (and who placed one but did not pay)")
async def cart_abandonment(q: Annotated[ReportRange, Query()], reports: Shoppers) -> CartAbandonmentReport:
    return cart_abandonment_out(await reports.cart_abandonment(q))
