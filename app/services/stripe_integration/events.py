"""What a signed Stripe event must look like before we store or act on it.

Stripe's event object (https://docs.stripe.com/api/events/object): ``{"id": "evt_…", "type": "…",
"data": {"object": {...}}}``. An event whose structure is not that — not a JSON object, no id or type, no
``data.object`` object, or an object of another kind than its type announces (a ``payment_intent.*`` event
about a charge) — is malformed: a 400 ``malformed-event``, stored nowhere. Events of types we do not
handle only need the envelope; they are recorded and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.core.errors import BadRequest

PAYMENT_EVENTS = frozenset({"payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled",
                            "payment_intent.processing", "payment_intent.amount_capturable_updated"})
REFUND_EVENTS = frozenset({"charge.refunded", "charge.refund.updated"})
# The kind of ``data.object`` each handled event type carries.
OBJECT_OF = {**{t: "payment_intent" for t in PAYMENT_EVENTS}, "charge.refunded": "charge",
             "charge.refund.updated": "refund"}

StripeId = Field(min_length=1, max_length=255)


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    class Data(BaseModel):
        model_config = ConfigDict(extra="ignore")
        object: dict[str, Any]

    id: str = StripeId
    type: str = Field(min_length=1, max_length=255)
    data: Data


class _Object(BaseModel):
    """The fields we read of a handled event's object (Stripe sends many more)."""

    model_config = ConfigDict(extra="ignore")
    id: str = StripeId
    object: str
    metadata: dict[str, Any] | None = None
    charge: str | None = Field(None, min_length=1, max_length=255)  # refunds: the refunded charge


@dataclass(frozen=True)
class StripeEvent:
    """A well-formed event: its id and type, and for handled types the object's kind, id and references."""

    id: str
    type: str
    object_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    charge_id: str | None = None  # the charge a refund event is about (the object itself for charge.refunded)


def parse_event(raw: Any) -> StripeEvent:
    """``raw`` (the verified body as parsed JSON) as a ``StripeEvent``; BadRequest ``malformed-event`` when
    its structure is not what Stripe sends for its type."""
    try:
        envelope = _Envelope.model_validate(raw)
    except ValidationError as exc:
        raise _malformed(exc) from None
    expected = OBJECT_OF.get(envelope.type)
    if expected is None:
        return StripeEvent(id=envelope.id, type=envelope.type)
    try:
        obj = _Object.model_validate(envelope.data.object)
    except ValidationError as exc:
        raise _malformed(exc) from None
    if obj.object != expected:
        raise BadRequest(f"A {envelope.type} event carries a {expected}, not a {obj.object[:40]}.",
                         code="malformed-event")
    if expected == "refund" and obj.charge is None:
        raise BadRequest("A refund event names the refunded charge.", code="malformed-event")
    charge_id = obj.id if expected == "charge" else obj.charge
    return StripeEvent(id=envelope.id, type=envelope.type, object_id=obj.id, metadata=obj.metadata or {},
                       charge_id=charge_id)


def _malformed(exc: ValidationError) -> BadRequest:
    where = ", ".join(".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()[:5])
    return BadRequest(f"The event does not have the structure of a Stripe event ({where}).", code="malformed-event")
