"""/admin/reports (staff): sales over time, top products, customers, and an overview for the dashboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.deps import get_report_service
from app.models.common import problem_responses
from app.schemas.reports import (
    SALES_BASIS,
    BucketedRange,
    CustomersReport,
    Overview,
    SalesReport,
    TopProductsQuery,
    TopProductsReport,
)
from app.services.reports import ReportService

router = APIRouter(prefix="/reports", tags=["admin: reports"])

Reports = Annotated[ReportService, Depends(get_report_service)]


@router.get("/sales", response_model=SalesReport, responses=problem_responses(422),
            summary="Revenue, orders, units and average order value per shop day, ISO week or month",
            description=SALES_BASIS + " Ranges cover at most 366 days; every bucket is listed, empty ones with zeros.")
async def sales(q: Annotated[BucketedRange, Query()], reports: Reports) -> SalesReport:
    return await reports.sales(q)


@router.get("/top-products", response_model=TopProductsReport, responses=problem_responses(422),
            summary="Best-selling products of paid orders placed in the range, by revenue or units")
async def top_products(q: Annotated[TopProductsQuery, Query()], reports: Reports) -> TopProductsReport:
    return await reports.top_products(q)


@router.get("/customers", response_model=CustomersReport, responses=problem_responses(422),
            summary="New customer accounts per bucket and the repeat-customer rate")
async def customers(q: Annotated[BucketedRange, Query()], reports: Reports) -> CustomersReport:
    return await reports.customers(q)


@router.get("/overview", response_model=Overview, summary="Today, last 7 and last 30 shop days at a glance")
async def overview(reports: Reports) -> Overview:
    return await reports.overview()
