"""/events: live stock, order and staff-board streams (Server-Sent Events) and their tickets.

The stock stream is public. The order stream and the staff board open with a single-use ticket from
``POST /events/tickets`` (``EventSource`` cannot send an Authorization header, and tokens stay out of URLs).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from sse_starlette import EventSourceResponse

from app.core.errors import Unprocessable
from app.core.ids import looks_like_id
from app.core.problems import problem_responses
from app.core.ratelimit import client_ip
from app.deps import OptionalUser, get_order_service
from app.routers.params import CREATED, OrderId
from app.schemas.events import MAX_STOCK_PRODUCTS, TicketIn, TicketOut
from app.services.event_streams import StreamService, board_snapshot, get_stream_service, order_snapshot, stock_snapshot
from app.services.event_tickets import TicketService
from app.services.orders import OrderService

router = APIRouter(prefix="/events", tags=["events"])

Ticket = Annotated[str, Query(min_length=20, max_length=100, description="A ticket from POST /events/tickets")]


async def streams(request: Request) -> StreamService:
    return get_stream_service(request.app.state.runtime)


async def tickets(request: Request) -> TicketService:
    return TicketService(request.app.state.settings)


Streams = Annotated[StreamService, Depends(streams)]
Tickets = Annotated[TicketService, Depends(tickets)]
Orders = Annotated[OrderService, Depends(get_order_service)]


@router.post("/tickets", response_model=TicketOut, status_code=status.HTTP_201_CREATED,
             responses={**problem_responses(401, 403, 404, 422), **CREATED},
             summary="A single-use ticket (valid EVENTS_TICKET_SECONDS, ≤ 60 s) to open one order's stream or the "
                     "staff board")
async def create_ticket(body: TicketIn, request: Request, response: Response, user: OptionalUser, orders: Orders,
                        svc: Tickets,
                        order_token: Annotated[str | None, Header(alias="X-Order-Token", min_length=16,
                                                                  max_length=128,
                                                                  description="Guests: the order's access token"
                                                                  )] = None) -> TicketOut:
    session_id = getattr(request.state, "session_id", None)
    if body.stream == "order":
        order = await orders.get_for_customer(body.order_id or "", user, order_token)
        ticket = await svc.issue("order", user=user, session_id=session_id, order=order)
    else:
        ticket = await svc.issue("staff", user=user, session_id=session_id)
    response.headers["Location"] = ticket.url  # the stream the ticket opens
    return ticket


@router.get("/stock", responses=problem_responses(422, 429),
            summary="Live stock of up to 50 products: the current availability per size, then every change")
async def stock_events(request: Request, svc: Streams,
                       product_ids: Annotated[list[str], Query(alias="product_id", min_length=1,
                                                               max_length=MAX_STOCK_PRODUCTS,
                                                               description="Repeat for each product (≤ 50)")],
                       ) -> EventSourceResponse:
    for pid in product_ids:
        if not looks_like_id(pid, "prd"):
            raise Unprocessable(f"{pid[:40]!r} is not a product id.", code="invalid-product-id")
    ids = list(dict.fromkeys(product_ids))
    return await svc.open(channels=[f"stock:{p}" for p in ids], snapshot=lambda: stock_snapshot(ids),
                          ip=client_ip(request))


@router.get("/orders/{order_id}", responses=problem_responses(401, 422, 429),
            summary="One order's live status: its current status and payment status, then every change")
async def order_events(order_id: OrderId, ticket: Ticket, request: Request, svc: Streams, tickets: Tickets,
                       orders: Orders) -> EventSourceResponse:
    taken = await tickets.take(ticket, "order", order_id)
    order = await orders.get(order_id)
    return await svc.open(channels=[f"order:{order_id}"], snapshot=order_snapshot(order), ip=client_ip(request),
                          user_id=taken.user_id, still_allowed=tickets.still_allowed(taken))


@router.get("/staff", responses=problem_responses(401, 422, 429),
            summary="The staff board: orders waiting to be prepared and low stock, then new paid orders, status "
                    "changes and low-stock alerts")
async def staff_events(ticket: Ticket, request: Request, svc: Streams, tickets: Tickets) -> EventSourceResponse:
    taken = await tickets.take(ticket, "staff")
    return await svc.open(channels=["staff"], snapshot=board_snapshot, ip=client_ip(request),
                          user_id=taken.user_id, still_allowed=tickets.still_allowed(taken))
