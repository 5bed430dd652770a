"""Newsletter and back-in-stock API schemas."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.security import LINK_TOKEN_PATTERN, MAX_LINK_TOKEN
from app.schemas.auth import Email
from app.schemas.cart import OptionCode
from app.schemas.common import StrictModel

LinkToken = Annotated[str, StringConstraints(min_length=52, max_length=MAX_LINK_TOKEN, pattern=LINK_TOKEN_PATTERN)]


class SubscribeIn(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"email": "olivia@example.com"}]})

    email: Email


class ConfirmIn(StrictModel):
    token: LinkToken = Field(description="The `token` of the confirmation link (`/newsletter/confirm?token=…`).")


class SubscriptionOut(BaseModel):
    email: str
    status: Literal["pending", "confirmed", "unsubscribed"]


class StockAlertIn(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"size": "deluxe", "email": "olivia@example.com"}]})

    size: OptionCode = Field(description="The sold-out size code (a key of the product's `sizes`).")
    email: Email | None = Field(None, description="Guests: where to send the one email. Signed-in customers "
                                                  "omit it: the account's address is used.")
