"""/orders: a customer's own orders; guests read theirs with the order access token (X-Order-Token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query

from app.core.pagination import PageParams
from app.core.problems import problem_responses
from app.deps import CurrentUser, OptionalUser, get_order_service
from app.models.order import Order
from app.routers.params import OrderId
from app.schemas.common import Page
from app.schemas.orders import (
    CancelIn,
    OrderOut,
    OrderSummaryOut,
    TrackingOut,
    order_out,
    summary_out,
    tracking_out,
)
from app.services import order_queries
from app.services.orders import OrderService

router = APIRouter(prefix="/orders", tags=["orders"])

Orders = Annotated[OrderService, Depends(get_order_service)]
OrderToken = Annotated[str | None, Header(alias="X-Order-Token", min_length=16, max_length=128,
                                          pattern=r"^[A-Za-z0-9_-]+$",
                                          description="Guests: the order access token returned at checkout.")]


async def customer_order(order_id: OrderId, user: OptionalUser, orders: Orders, token: OrderToken = None) -> Order:
    """The order if the caller owns it or holds its access token; 404 otherwise (existence is not confirmed)."""
    return await orders.get_for_customer(order_id, user, token)


CustomerOrder = Annotated[Order, Depends(customer_order)]


@router.get("", response_model=Page[OrderSummaryOut], responses=problem_responses(401, 422),
            summary="My orders, newest first")
async def list_orders(user: CurrentUser, page: Annotated[PageParams, Query()]) -> Page[OrderSummaryOut]:
    docs, cursor, _ = await order_queries.list_for_user(user.id, page)
    return Page(items=[summary_out(o) for o in docs], next_cursor=cursor)


@router.get("/{order_id}", response_model=OrderOut, responses=problem_responses(401, 404, 422),
            summary="One order (owner, or a guest with X-Order-Token)")
async def get_order(order: CustomerOrder) -> OrderOut:
    return order_out(order)


@router.get("/{order_id}/tracking", response_model=TrackingOut, responses=problem_responses(401, 404, 422),
            summary="Status history with timestamps and the delivery window")
async def track_order(order: CustomerOrder) -> TrackingOut:
    return tracking_out(order)


@router.post("/{order_id}/cancel", response_model=OrderOut,
             responses=problem_responses(401, 404, 409, 422, 502, 503),
             summary="Cancel before preparation starts (stock, slot and promo use returned; card refunded)")
async def cancel_order(order: CustomerOrder, orders: Orders, user: OptionalUser,
                       body: CancelIn | None = None) -> OrderOut:
    by = user.id if user is not None else "guest"
    return order_out(await orders.cancel(order, by=by, note=body.reason if body else None))
