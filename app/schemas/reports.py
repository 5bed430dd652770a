"""Report API schemas (/admin/reports): query parameters and the figures staff see.

Money is integer cents in the shop's currency (``currency`` on each report). Days, weeks and months are
the shop's own (``SHOP_TIMEZONE``): an order belongs to the shop day on which it was **placed**
(``created_at``), and its refunds count in that same bucket, whenever they were made.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.types import RequestDate, UtcDateTime
from app.models.order import OrderStatus
from app.models.reports import (
    CustomersResult,
    Figures,
    Interval,
    OverviewPeriod,
    OverviewResult,
    SalesResult,
    TopBy,
    TopProductsResult,
)

MAX_RANGE_DAYS = 366

SALES_BASIS = (
    "Paid orders: payment_status paid, partially_refunded or refunded (unpaid, failed, expired and "
    "cancelled-before-payment orders never count). Each order counts on the shop day it was placed "
    "(created_at, in the shop's time zone); its refunds count in the same bucket. `gross` = amounts paid, "
    "`refunded` = amounts refunded, `net` = gross - refunded, `units` = quantities of the order lines "
    "(refunds do not take units back), `average_order_value` = gross / orders, rounded half up."
)


class ReportRange(BaseModel):
    """An inclusive range of shop days, at most MAX_RANGE_DAYS long."""

    model_config = ConfigDict(extra="forbid")

    from_: RequestDate = Field(alias="from", description="First shop day (YYYY-MM-DD), inclusive.")
    to: RequestDate = Field(description="Last shop day (YYYY-MM-DD), inclusive.")

    @model_validator(mode="after")
    def _bounded(self) -> ReportRange:
        if self.from_ > self.to:
            raise ValueError("`from` must not be after `to`")
        if (self.to - self.from_).days + 1 > MAX_RANGE_DAYS:
            raise ValueError(f"a report covers at most {MAX_RANGE_DAYS} days")
        return self


class BucketedRange(ReportRange):
    interval: Interval = Interval.day


class TopProductsQuery(ReportRange):
    limit: int = Field(10, ge=1, le=50)
    by: TopBy = TopBy.revenue


class SalesFigures(BaseModel):
    gross: int = Field(description="Cents paid.")
    refunded: int = Field(description="Cents refunded.")
    net: int = Field(description="gross - refunded, cents.")
    orders: int
    units: int
    average_order_value: int = Field(description="gross / orders in cents, rounded half up; 0 without orders.")


class SalesBucket(SalesFigures):
    key: str = Field(description="2030-04-09 (day), 2030-W15 (ISO week) or 2030-04 (month).")
    start: date = Field(description="First day of the bucket inside the range.")
    end: date = Field(description="Last day of the bucket inside the range (inclusive).")


class SalesReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"description": SALES_BASIS})

    from_: date = Field(serialization_alias="from")
    to: date
    interval: Interval
    time_zone: str
    currency: str
    buckets: list[SalesBucket] = Field(description="Every bucket of the range in order, empty ones with zeros.")
    totals: SalesFigures


class TopProduct(BaseModel):
    product_id: str
    name: str = Field(description="The product's name on its most recent order line.")
    units: int
    revenue: int = Field(description="Sum of line totals in cents (before order discounts, delivery, tax, "
                                     "refunds).")
    orders: int = Field(description="Paid orders containing the product.")


class TopProductsReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"description": "Products of paid orders placed in the range "
                                                 "(as in the sales report), from the order line snapshots."})

    from_: date = Field(serialization_alias="from")
    to: date
    by: TopBy
    currency: str
    items: list[TopProduct]


class CustomerBucket(BaseModel):
    key: str
    start: date
    end: date
    new_customers: int = Field(description="Customer accounts created in the bucket.")


class CustomerTotals(BaseModel):
    new_customers: int
    customers: int = Field(description="Customers with at least one paid order placed in the range (signed-in "
                                       "customers by account, guests by email address).")
    repeat_customers: int = Field(description="Customers with two or more paid orders placed in the range.")
    repeat_rate: float = Field(description="repeat_customers / customers, 4 decimals; 0 without customers.")


class CustomersReport(BaseModel):
    from_: date = Field(serialization_alias="from")
    to: date
    interval: Interval
    time_zone: str
    buckets: list[CustomerBucket]
    totals: CustomerTotals


class OverviewWindow(BaseModel):
    from_: date = Field(serialization_alias="from")
    to: date
    gross: int
    refunded: int
    net: int
    orders: int
    average_order_value: int
    new_customers: int = Field(description="Customer accounts created in the window (staff accounts excluded).")


class Overview(BaseModel):
    model_config = ConfigDict(json_schema_extra={"description": "Today (the shop's day) and the last 7 and 30 "
                                                 "shop days including today. Revenue as in the sales report."})

    as_of: UtcDateTime
    time_zone: str
    currency: str
    today: OverviewWindow
    last_7_days: OverviewWindow
    last_30_days: OverviewWindow
    orders_by_status: dict[OrderStatus, int] = Field(
        description="Orders placed in the last 30 shop days, by their current status (every status listed).")
    pending_payment: int = Field(description="Orders waiting for a card payment now (any age).")
    low_stock_sizes: int = Field(description="Sizes at or below their product's low-stock threshold.")


# --- mappers (report results -> views; pure) -------------------------------------------------------------
def _figures(f: Figures) -> dict[str, int]:
    return {"gross": f.gross, "refunded": f.refunded, "net": f.net, "orders": f.orders, "units": f.units,
            "average_order_value": f.average_order_value}


def sales_report_out(r: SalesResult) -> SalesReport:
    return SalesReport(from_=r.start, to=r.end, interval=r.interval, time_zone=r.time_zone, currency=r.currency,
                       buckets=[SalesBucket(key=b.key, start=b.start, end=b.end, **_figures(f)) for b, f in r.buckets],
                       totals=SalesFigures(**_figures(r.totals)))


def top_products_out(r: TopProductsResult) -> TopProductsReport:
    return TopProductsReport(from_=r.start, to=r.end, by=r.by, currency=r.currency,
                             items=[TopProduct(product_id=p.product_id, name=p.name, units=p.units,
                                               revenue=p.revenue, orders=p.orders) for p in r.items])


def customers_report_out(r: CustomersResult) -> CustomersReport:
    return CustomersReport(
        from_=r.start, to=r.end, interval=r.interval, time_zone=r.time_zone,
        buckets=[CustomerBucket(key=b.key, start=b.start, end=b.end, new_customers=n) for b, n in r.buckets],
        totals=CustomerTotals(new_customers=r.new_customers, customers=r.customers,
                              repeat_customers=r.repeat_customers, repeat_rate=r.repeat_rate))


def _window(w: OverviewPeriod) -> OverviewWindow:
    return OverviewWindow(from_=w.start, to=w.end, gross=w.gross, refunded=w.refunded, net=w.net, orders=w.orders,
                          average_order_value=w.average_order_value, new_customers=w.new_customers)


def overview_out(r: OverviewResult) -> Overview:
    return Overview(as_of=r.as_of, time_zone=r.time_zone, currency=r.currency, today=_window(r.today),
                    last_7_days=_window(r.last_7_days), last_30_days=_window(r.last_30_days),
                    orders_by_status=r.orders_by_status, pending_payment=r.pending_payment,
                    low_stock_sizes=r.low_stock_sizes)
