"""Daily sales rollups for the orders already placed: the sales reports read ``sales_days`` instead of orders.

Forward: build the rollups of every shop day from the first order's to the last order's, and record on each
order its share of them (``rollup``), as ``amour-florals rollups rebuild`` does (app/services/sales_rollups.py;
the same code runs here, with the settings of the environment: SHOP_TIMEZONE, CURRENCY). Backward: drop the
``sales_days`` collection and every order's ``rollup`` (the previous release reads orders for its reports).
Order lines keep the ``category_id`` written by checkout since this release (the previous release ignores it).
"""

from beanie import free_fall_migration

from app.config import get_settings
from app.models.order import Order
from app.models.sales import SalesDay
from app.services.sales_rollups import SalesRollups


class Forward:
    @free_fall_migration(document_models=[Order, SalesDay])
    async def build_sales_rollups(self, session):
        rollups = SalesRollups(get_settings())
        span = await rollups.order_days()
        if span is not None:
            await rollups.rebuild(*span)


class Backward:
    @free_fall_migration(document_models=[Order, SalesDay])
    async def drop_sales_rollups(self, session):
        await Order.get_pymongo_collection().update_many({}, {"$unset": {"rollup": ""}}, session=session)
        await SalesDay.get_pymongo_collection().drop(session=session)
