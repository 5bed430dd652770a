"""/admin/orders (staff): list with filters, detail, status changes, refunds, counter settlement, notes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.core.problems import problem_responses
from app.deps import StaffUser, get_order_service
from app.models.order import Order, OrderStatus
from app.routers.params import OrderId
from app.schemas.common import Page
from app.schemas.orders import (
    AdminOrderFilters,
    AdminOrderOut,
    NoteIn,
    OrderSummaryOut,
    RefundIn,
    SettleIn,
    StatusIn,
    admin_order_out,
    summary_out,
)
from app.services import order_queries
from app.services.orders import OrderService

router = APIRouter(prefix="/orders", tags=["admin: orders"])

Orders = Annotated[OrderService, Depends(get_order_service)]


async def staff_order(order_id: OrderId, orders: Orders) -> Order:
    return await orders.get(order_id)


StaffOrder = Annotated[Order, Depends(staff_order)]


@router.get("", response_model=Page[OrderSummaryOut], responses=problem_responses(422),
            summary="All orders, newest first, with filters (page or cursor)")
async def list_orders(filters: Annotated[AdminOrderFilters, Query()]) -> Page[OrderSummaryOut]:
    docs, cursor, total = await order_queries.list_for_staff(filters, filters)
    return Page(items=[summary_out(o) for o in docs], next_cursor=cursor, total=total)


@router.get("/{order_id}", response_model=AdminOrderOut, responses=problem_responses(404))
async def get_order(order: StaffOrder) -> AdminOrderOut:
    return admin_order_out(order)


@router.post("/{order_id}/status", response_model=AdminOrderOut,
             responses=problem_responses(404, 409, 422, 502, 503),
             summary="Move the order along the status machine (illegal step: 409)")
async def change_status(order: StaffOrder, body: StatusIn, orders: Orders, staff: StaffUser) -> AdminOrderOut:
    return admin_order_out(await orders.staff_move(order, OrderStatus(body.status.value), by=staff.id,
                                                   note=body.note))


@router.post("/{order_id}/refund", response_model=AdminOrderOut, responses=problem_responses(404, 409, 422, 503),
             summary="Refund all or part of a card payment through Stripe (never more than was paid)")
async def refund_order(order: StaffOrder, body: RefundIn, orders: Orders, staff: StaffUser) -> AdminOrderOut:
    return admin_order_out(await orders.refunds.refund(order.id, amount=body.amount, reason=body.reason, by=staff.id))


@router.post("/{order_id}/settle", response_model=AdminOrderOut, responses=problem_responses(404, 409, 422),
             summary="Record the counter payment of a pay-on-pickup order")
async def settle_order(order: StaffOrder, orders: Orders, staff: StaffUser,
                       body: SettleIn | None = None) -> AdminOrderOut:
    return admin_order_out(await orders.settle_at_counter(order.id, by=staff.id, note=body.note if body else None))


@router.post("/{order_id}/notes", response_model=AdminOrderOut, responses=problem_responses(404, 422),
             summary="Add an internal note (never shown to the customer)")
async def add_note(order: StaffOrder, body: NoteIn, orders: Orders, staff: StaffUser) -> AdminOrderOut:
    return admin_order_out(await orders.add_note(order.id, by=staff.id, text=body.text))
