"""Checkout API schemas. The body carries choices only (delivery, contact, payment method): every amount
comes from the server's pricing of the cart, and unknown fields such as a price are rejected."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from app.core.text import FreeText
from app.core.types import RequestDate
from app.models.order import Order, PaymentMethod, PaymentStatus
from app.schemas.auth import Email
from app.schemas.common import StrictModel
from app.schemas.orders import OrderOut, order_out
from app.schemas.users import Zip

Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=7, max_length=20,
                                         pattern=r"^\+?[0-9 ().-]{7,20}$")]
Name = Annotated[str, FreeText(100, min_length=1)]
SlotCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40,
                                            pattern=r"^[a-z0-9_-]+$")]


class CheckoutAddress(StrictModel):
    line1: Annotated[str, FreeText(120, min_length=1)]
    line2: Annotated[str, FreeText(120)] | None = None
    city: Annotated[str, FreeText(80, min_length=1)]
    state: Annotated[str, FreeText(40, min_length=2)]
    zip: Zip = Field(description="ZIP or ZIP+4 (`12345` or `12345-6789`); the delivery zone is found by its "
                                 "first five digits.")


class CheckoutDelivery(StrictModel):
    method: Literal["delivery", "pickup"]
    date: RequestDate
    slot: SlotCode
    recipient_name: Name
    recipient_phone: Phone
    address: CheckoutAddress | None = Field(None, description="Required for delivery; omitted for pickup.")
    card_message: Annotated[str, FreeText(300, multiline=True)] | None = None
    instructions: Annotated[str, FreeText(500, multiline=True)] | None = None

    @model_validator(mode="after")
    def _address_fits_method(self) -> CheckoutDelivery:
        if self.method == "delivery" and self.address is None:
            raise ValueError("a delivery needs the recipient's address")
        if self.method == "pickup" and self.address is not None:
            raise ValueError("a pickup order has no delivery address")
        return self


class CheckoutContact(StrictModel):
    email: Email
    phone: Phone
    name: Name | None = None


class CheckoutPaymentMethod(StrEnum):
    """What the customer chooses; an order whose total is 0 is recorded as ``free`` whatever was chosen."""
    card = "card"
    pay_on_pickup = "pay_on_pickup"


class CheckoutIn(StrictModel):
    payment_method: CheckoutPaymentMethod
    delivery: CheckoutDelivery
    contact: CheckoutContact | None = Field(None, description="Required for guests; a signed-in customer's "
                                                              "account email is used (the phone may be given).")

    @model_validator(mode="after")
    def _pay_on_pickup_is_for_pickup(self) -> CheckoutIn:
        if self.payment_method == CheckoutPaymentMethod.pay_on_pickup and self.delivery.method != "pickup":
            raise ValueError("pay_on_pickup is only for store-pickup orders")
        return self


class PaymentOut(BaseModel):
    method: PaymentMethod
    status: PaymentStatus
    payment_intent_id: str | None
    client_secret: str | None = Field(description="For Stripe.js (card orders awaiting payment).")
    amount: int
    currency: str


class CheckoutOut(BaseModel):
    order: OrderOut
    payment: PaymentOut
    access_token: str | None = Field(None, description="Guests: the order access token for X-Order-Token "
                                                       "(keep it; it is also in the confirmation email link).")


def checkout_out(order: Order, *, client_secret: str | None, access_token: str | None) -> CheckoutOut:
    """The checkout's answer for ``order``: the order, its payment (``client_secret``: for Stripe.js while a
    card payment is awaited) and, for a guest's order, its access token. Pure: no I/O."""
    a = order.amounts
    payment = PaymentOut(method=order.payment_method, status=order.payment_status,
                         payment_intent_id=order.payment_intent_id, client_secret=client_secret, amount=a.total,
                         currency=a.currency)
    return CheckoutOut(order=order_out(order), payment=payment, access_token=access_token)
