"""Shopper-behaviour report schemas (/admin/reports/funnel, /searches, /product-interest, /cart-abandonment)
and their mappers from the report results (``app.models.reports``).

Days are the shop's own (``SHOP_TIMEZONE``). A **shopper** is the storefront's visitor id (``X-Visitor-Id``),
else the signed-in account; a paid order counts for the shopper of its checkout. Events carrying neither are
counted as events but belong to no shopper. Every integer is a count (shoppers, events, orders, units, searches,
matches), never money: these reports carry no currency. Rates are ratios rounded to 4 decimals, 0 when the
denominator is 0.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from app.models.reports import (
    CartAbandonmentResult,
    FunnelResult,
    FunnelStages,
    ProductInterestResult,
    ProductInterestRow,
    SearchesResult,
    SearchTermStats,
)
from app.schemas.reports import ReportRange

FUNNEL_BASIS = (
    "Each stage counts distinct shoppers per shop day, independently of the others: shoppers who opened a "
    "product page (`viewed`), added to the cart (`added_to_cart`), placed an order at checkout (`checked_out`) "
    "and whose order's payment became paid that day (`paid`; pay-on-pickup orders when settled at the counter). "
    "Because stages are independent (a shopper may add from a list, or pay the day after the checkout), a rate "
    "can exceed 1 on small numbers."
)


class LimitedRange(ReportRange):
    limit: int = Field(10, ge=1, le=50, description="Rows per list.")


class FunnelFigures(BaseModel):
    viewed: int = Field(description="Shoppers who opened at least one product page.")
    added_to_cart: int = Field(description="Shoppers who added at least one item to a cart.")
    checked_out: int = Field(description="Shoppers who placed at least one order at checkout.")
    paid: int = Field(description="Shoppers with at least one order whose payment became paid.")
    product_views: int = Field(description="Product page views (events, with or without a shopper).")
    cart_adds: int = Field(description="Items added to carts (events).")
    orders_placed: int = Field(description="Orders placed at checkout.")
    orders_paid: int = Field(description="Orders whose payment became paid.")
    view_to_cart: float = Field(description="added_to_cart / viewed.")
    cart_to_checkout: float = Field(description="checked_out / added_to_cart.")
    checkout_to_paid: float = Field(description="paid / checked_out.")
    view_to_paid: float = Field(description="paid / viewed: the day's conversion rate.")


class FunnelDay(FunnelFigures):
    date: date


class FunnelReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"description": FUNNEL_BASIS})

    from_: date = Field(serialization_alias="from")
    to: date
    time_zone: str
    days: list[FunnelDay] = Field(description="Every shop day of the range in order, empty ones with zeros.")
    totals: FunnelFigures = Field(description="The whole range (a shopper active on several days counts once).")


class SearchTerm(BaseModel):
    query: str = Field(description="The search text, folded (lower case, accents and punctuation removed); "
                                   "`[redacted]` for the searches whose text looked like personal data (an `@`, "
                                   "or 7+ digits as in a phone number), which are not stored as typed.")
    searches: int = Field(description="Searches of this text in the range.")
    shoppers: int = Field(description="Distinct shoppers who searched it.")
    last_results: int = Field(description="Matches found by its most recent search in the range.")


class SearchesReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"description": "Searches of `/products?q=` (first pages) made "
                                                 "in the range, grouped by their folded text."})

    from_: date = Field(serialization_alias="from")
    to: date
    searches: int = Field(description="Searches in the range.")
    searches_without_results: int = Field(description="Searches in the range that found no product.")
    no_result_rate: float = Field(description="searches_without_results / searches.")
    top: list[SearchTerm] = Field(description="Most searched, most first.")
    without_results: list[SearchTerm] = Field(description="Most searched among searches that found nothing: "
                                                          "`searches` counts those without results only.")


class ProductInterest(BaseModel):
    product_id: str
    name: str = Field(description="The product's current name (else its name on an order line).")
    views: int = Field(description="Product page views in the range.")
    viewers: int = Field(description="Distinct shoppers who viewed it.")
    units_bought: int = Field(description="Units in paid orders placed in the range (as in the sales report).")
    orders: int = Field(description="Paid orders placed in the range containing it.")
    orders_per_viewer: float = Field(description="orders / viewers.")


class ProductInterestReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"description": "Interest (product page views) against "
                                                 "purchases (paid orders placed in the range) per product."})

    from_: date = Field(serialization_alias="from")
    to: date
    most_viewed: list[ProductInterest] = Field(description="By views, most first.")
    most_bought: list[ProductInterest] = Field(description="By units bought, most first.")


class CartAbandonmentReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"description": "Shoppers who added to a cart in the range and "
                                                 "what became of it within the range. Choose a range that ended "
                                                 "a day ago or more, so payments have had time to arrive."})

    from_: date = Field(serialization_alias="from")
    to: date
    shoppers_with_cart: int = Field(description="Shoppers who added at least one item to a cart.")
    checked_out: int = Field(description="Of them, shoppers who placed an order.")
    paid: int = Field(description="Of them, shoppers with a paid order.")
    abandoned: int = Field(description="Of them, shoppers without a paid order: shoppers_with_cart - paid.")
    abandonment_rate: float = Field(description="abandoned / shoppers_with_cart.")
    checkout_abandonment_rate: float = Field(description="Shoppers who placed an order but have none paid, over "
                                                         "checked_out.")


# --- mappers (report results -> views; pure) -------------------------------------------------------------
def _funnel(f: FunnelStages) -> FunnelFigures:
    return FunnelFigures(viewed=f.viewed, added_to_cart=f.added_to_cart, checked_out=f.checked_out, paid=f.paid,
                         product_views=f.product_views, cart_adds=f.cart_adds, orders_placed=f.orders_placed,
                         orders_paid=f.orders_paid, view_to_cart=f.view_to_cart, cart_to_checkout=f.cart_to_checkout,
                         checkout_to_paid=f.checkout_to_paid, view_to_paid=f.view_to_paid)


def funnel_out(r: FunnelResult) -> FunnelReport:
    return FunnelReport(from_=r.start, to=r.end, time_zone=r.time_zone,
                        days=[FunnelDay(date=d, **_funnel(f).model_dump()) for d, f in r.days],
                        totals=_funnel(r.totals))


def _term(t: SearchTermStats) -> SearchTerm:
    return SearchTerm(query=t.query, searches=t.searches, shoppers=t.shoppers, last_results=t.last_results)


def searches_out(r: SearchesResult) -> SearchesReport:
    return SearchesReport(from_=r.start, to=r.end, searches=r.searches,
                          searches_without_results=r.searches_without_results, no_result_rate=r.no_result_rate,
                          top=[_term(t) for t in r.top], without_results=[_term(t) for t in r.without_results])


def _interest(p: ProductInterestRow) -> ProductInterest:
    return ProductInterest(product_id=p.product_id, name=p.name, views=p.views, viewers=p.viewers,
                           units_bought=p.units_bought, orders=p.orders, orders_per_viewer=p.orders_per_viewer)


def product_interest_out(r: ProductInterestResult) -> ProductInterestReport:
    return ProductInterestReport(from_=r.start, to=r.end, most_viewed=[_interest(p) for p in r.most_viewed],
                                 most_bought=[_interest(p) for p in r.most_bought])


def cart_abandonment_out(r: CartAbandonmentResult) -> CartAbandonmentReport:
    return CartAbandonmentReport(from_=r.start, to=r.end, shoppers_with_cart=r.shoppers_with_cart,
                                 checked_out=r.checked_out, paid=r.paid, abandoned=r.abandoned,
                                 abandonment_rate=r.abandonment_rate,
                                 checkout_abandonment_rate=r.checkout_abandonment_rate)
