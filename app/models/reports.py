"""Staff report results (computed, never stored): what ``ReportService`` answers. Money is integer cents in
the shop's currency; days, weeks and months are the shop's (``SHOP_TIMEZONE``). The API views are built from
these by the mappers of ``app.schemas.reports``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from app.models.order import OrderStatus


class Interval(StrEnum):
    day = "day"
    week = "week"  # ISO week, Monday to Sunday
    month = "month"


class TopBy(StrEnum):
    revenue = "revenue"
    units = "units"


@dataclass(frozen=True, slots=True)
class Bucket:
    """One day, ISO week or month of a report: its ``key`` (``2030-04-09``, ``2030-W15``, ``2030-04``) and
    its first and last day inside the report's range (inclusive)."""

    key: str
    start: date
    end: date


@dataclass(frozen=True, slots=True)
class Figures:
    """Sales of paid orders: ``gross`` paid, ``refunded``, ``net`` = gross - refunded (cents), ``orders``,
    ``units`` ordered, ``average_order_value`` = gross / orders rounded half up (0 without orders)."""

    gross: int
    refunded: int
    net: int
    orders: int
    units: int
    average_order_value: int


@dataclass(frozen=True, slots=True)
class SalesResult:
    start: date
    end: date
    interval: Interval
    time_zone: str
    currency: str
    buckets: list[tuple[Bucket, Figures]]
    totals: Figures


@dataclass(frozen=True, slots=True)
class ProductSales:
    """One product's paid order lines: ``revenue`` is the sum of line totals in cents."""

    product_id: str
    name: str
    units: int
    revenue: int
    orders: int


@dataclass(frozen=True, slots=True)
class TopProductsResult:
    start: date
    end: date
    by: TopBy
    currency: str
    items: list[ProductSales]


@dataclass(frozen=True, slots=True)
class CustomersResult:
    """New accounts per bucket, and customers with paid orders in the range (``repeat_rate`` = repeat /
    customers, 4 decimals)."""

    start: date
    end: date
    interval: Interval
    time_zone: str
    buckets: list[tuple[Bucket, int]]
    new_customers: int
    customers: int
    repeat_customers: int
    repeat_rate: float


@dataclass(frozen=True, slots=True)
class OverviewPeriod:
    """Shop days ``start``..``end`` (inclusive): sales (units left out) and new customer accounts."""

    start: date
    end: date
    gross: int
    refunded: int
    net: int
    orders: int
    average_order_value: int
    new_customers: int


@dataclass(frozen=True, slots=True)
class OverviewResult:
    as_of: datetime
    time_zone: str
    currency: str
    today: OverviewPeriod
    last_7_days: OverviewPeriod
    last_30_days: OverviewPeriod
    orders_by_status: dict[OrderStatus, int]
    pending_payment: int
    low_stock_sizes: int


# --- shopper behaviour (ShopperReportService) ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FunnelStages:
    """Distinct shoppers per stage (viewed, added_to_cart, checked_out, paid), the events behind them, and
    the stage-to-stage ratios (4 decimals, 0 when the denominator is 0)."""

    viewed: int
    added_to_cart: int
    checked_out: int
    paid: int
    product_views: int
    cart_adds: int
    orders_placed: int
    orders_paid: int
    view_to_cart: float
    cart_to_checkout: float
    checkout_to_paid: float
    view_to_paid: float


@dataclass(frozen=True, slots=True)
class FunnelResult:
    start: date
    end: date
    time_zone: str
    days: list[tuple[date, FunnelStages]]
    totals: FunnelStages


@dataclass(frozen=True, slots=True)
class SearchTermStats:
    query: str
    searches: int
    shoppers: int
    last_results: int


@dataclass(frozen=True, slots=True)
class SearchesResult:
    start: date
    end: date
    searches: int
    searches_without_results: int
    no_result_rate: float
    top: list[SearchTermStats]
    without_results: list[SearchTermStats]


@dataclass(frozen=True, slots=True)
class ProductInterestRow:
    product_id: str
    name: str
    views: int
    viewers: int
    units_bought: int
    orders: int
    orders_per_viewer: float


@dataclass(frozen=True, slots=True)
class ProductInterestResult:
    start: date
    end: date
    most_viewed: list[ProductInterestRow]
    most_bought: list[ProductInterestRow]


@dataclass(frozen=True, slots=True)
class CartAbandonmentResult:
    start: date
    end: date
    shoppers_with_cart: int
    checked_out: int
    paid: int
    abandoned: int
    abandonment_rate: float
    checkout_abandonment_rate: float
