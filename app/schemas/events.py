"""Live events (Server-Sent Events): the data of each event type, stream tickets, and the OpenAPI description
of the streams (``text/event-stream`` with an ``x-itemSchema`` per event: the document is OpenAPI 3.1, which
has no ``itemSchema``; the extension carries OpenAPI 3.2's "Special Considerations for Server-Sent Events")."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, Field, TypeAdapter, model_validator

from app.core.types import UtcDateTime
from app.models.order import DeliveryMethod, OrderStatus, PaymentStatus
from app.schemas.common import StrictModel

ORDER_ID_PATTERN = r"^ord_[0-9A-Z]{26}$"
MAX_STOCK_PRODUCTS = 50


class StockEvent(BaseModel):
    """``stock``: what the product endpoints show for one size right now (an archived or unpublished product:
    0 and false)."""

    product_id: str
    size: str
    available: int = Field(ge=0, description="Units that can be ordered now")
    in_stock: bool


class OrderEvent(BaseModel):
    """``order`` (the order stream) and ``order.new`` / ``order.status`` (the staff board): an order's state."""

    order_id: str
    number: str
    status: OrderStatus
    payment_status: PaymentStatus
    total: int = Field(description="Cents")
    currency: str
    delivery_method: DeliveryMethod
    delivery_date: str = Field(description="YYYY-MM-DD in the shop's time zone")
    updated_at: datetime


class LowStockEvent(BaseModel):
    """``stock.low`` (staff board): a size at or below its product's low-stock threshold after a change."""

    product_id: str
    name: str
    size: str
    available: int
    threshold: int


class BoardEvent(BaseModel):
    """``board`` (first event of the staff board): orders waiting to be prepared (paid, or confirmed
    pay-on-pickup; newest first, at most 50) and the sizes at or below their threshold (emptiest first, at
    most 50)."""

    orders: list[OrderEvent]
    low_stock: list[LowStockEvent]


EndReason = Literal["max-lifetime", "overflow", "resync", "revoked", "shutdown"]


class EndEvent(BaseModel):
    """``end``: the server closes the stream. ``revoked``: do not reconnect (sign in again). Any other reason:
    reconnect (with a new ticket where one is needed); the stream starts again with the current state."""

    reason: EndReason


STREAM_EVENTS: dict[str, dict[str, type[BaseModel]]] = {
    "/api/v1/events/stock": {"stock": StockEvent, "end": EndEvent},
    "/api/v1/events/orders/{order_id}": {"order": OrderEvent, "end": EndEvent},
    "/api/v1/events/staff": {"board": BoardEvent, "order.new": OrderEvent, "order.status": OrderEvent,
                             "stock.low": LowStockEvent, "end": EndEvent},
}


# --- tickets ----------------------------------------------------------------------------------------------
class TicketIn(StrictModel):
    stream: Literal["order", "staff"] = Field(description="`order`: one order's stream (its owner, or a guest "
                                              "sending X-Order-Token); `staff`: the staff board (staff, admins)")
    order_id: str | None = Field(None, max_length=40, pattern=ORDER_ID_PATTERN,
                                 description="Required for `order`")

    @model_validator(mode="after")
    def _order_needs_id(self) -> TicketIn:
        if (self.stream == "order") != (self.order_id is not None):
            raise ValueError("order_id is required for the order stream and not accepted for the staff board")
        return self


class TicketOut(BaseModel):
    ticket: str = Field(description="Single use; pass as `ticket` in the stream's URL (never a token)")
    stream: Literal["order", "staff"]
    order_id: str | None = None
    expires_at: UtcDateTime
    url: str = Field(description="The stream's path with the ticket, for `new EventSource(API_ORIGIN + url)`")


# --- OpenAPI ----------------------------------------------------------------------------------------------
def _item_schema(events: dict[str, type[BaseModel]]) -> dict[str, Any]:
    variants = []
    for name, model in events.items():
        variants.append({
            "type": "object", "required": ["event", "data", "id"],
            "properties": {
                "event": {"const": name},
                "data": {"type": "string", "contentMediaType": "application/json",
                         "contentSchema": {"$ref": f"#/components/schemas/{model.__name__}"}},
                "id": {"type": "string", "description": "Unique; sent back as Last-Event-ID on reconnection"},
                "retry": {"type": "integer", "minimum": 0},
            },
        })
    return {"oneOf": variants}


def document_streams(app: FastAPI) -> None:
    """Make the app's OpenAPI document describe each stream's 200 as ``text/event-stream`` whose items are the
    events above, their data schemas in ``components``."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        models = {m for events in STREAM_EVENTS.values() for m in events.values()}
        for model in sorted(models, key=lambda m: m.__name__):
            js = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
            for name, sub in js.pop("$defs", {}).items():
                components.setdefault(name, sub)
            components[model.__name__] = js
        schema["components"]["schemas"] = dict(sorted(components.items()))
        for path, events in STREAM_EVENTS.items():
            ok = schema["paths"][path]["get"]["responses"]["200"]
            ok["description"] = ("A stream of Server-Sent Events: " + ", ".join(f"`{e}`" for e in events)
                                 + ". Comment lines (`: ping`) keep the connection alive.")
            ok["content"] = {"text/event-stream": {"schema": {"type": "string"},
                                                   "x-itemSchema": _item_schema(events)}}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema
