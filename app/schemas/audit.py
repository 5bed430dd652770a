"""Audit log API schemas (/admin/audit): the list's filters and an entry as admins read it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from app.core.pagination import PageParams
from app.core.types import RequestInstant, UtcDateTime
from app.models.audit import AuditEntry


class AuditListParams(PageParams):
    actor_id: str | None = Field(None, pattern=r"^usr_[0-9A-Z]{26}$", description="Changes made by this user.")
    target_type: str | None = Field(None, pattern=r"^[a-z][a-z_]{1,39}$",
                                    description="Kind of thing changed: `product`, `category`, `order`, `user`, "
                                                "`review`, `promo_code`, `delivery_zone`, `delivery_config`, "
                                                "`campaign`.")
    target_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
                                  description="Id of the thing changed (`prd_…`, `ord_…`, `delivery` for the "
                                              "delivery config).")
    action: str | None = Field(None, max_length=64, pattern=r"^[a-z][a-z_]*\.[a-z][a-z_]*$",
                               description="Exact action, e.g. `product.update`, `order.refund`, `user.update`.")
    from_: RequestInstant | None = Field(None, alias="from", description="Changes at or after this instant (UTC "
                                                                       "unless an offset is given).")
    to: RequestInstant | None = Field(None, description="Changes before this instant (exclusive).")

    @model_validator(mode="after")
    def _ordered(self) -> AuditListParams:
        if self.from_ is not None and self.to is not None and self.from_ >= self.to:
            raise ValueError("`from` must be before `to`")
        return self


class AuditChangeOut(BaseModel):
    field: str = Field(description="Dotted path in the admin API's view of the target, e.g. `status`, "
                                   "`sizes.deluxe.price` (list items by their id or code, else by position).")
    before: Any = Field(description="JSON value before the change; null when the field (or the target) did "
                                    "not exist.")
    after: Any = Field(description="JSON value after the change; null when the field (or the target) is gone.")


class AuditEntryOut(BaseModel):
    id: str
    action: str = Field(description="`<target type>.<verb>`, e.g. `product.update`, `order.status_change`.")
    outcome: Literal["pending", "succeeded", "failed", "unknown"] = Field(
        description="`succeeded`; `failed`: the request failed after changing something (the changes are what "
                    "it left); `pending`: the change is in progress, or its process stopped and the recovery job "
                    "has not resolved it yet; `unknown`: resolved by the recovery job (see `recovered`).")
    actor_id: str | None = Field(description="The staff member or admin (null: the command line).")
    actor_role: str | None = Field(description="Their role when they made the change (`staff`, `admin`, `cli`).")
    target_type: str
    target_id: str | None = Field(description="Null only for a create whose process stopped before its id was "
                                              "known.")
    changes: list[AuditChangeOut] = Field(description="The changed fields only (a create lists every field "
                                                      "with `before` null, a delete every field with `after` "
                                                      "null). Passwords, tokens and secrets are never recorded.")
    status: int | None = Field(description="HTTP status answered to the change (null outside a request or while "
                                           "pending).")
    request_id: str | None = Field(description="`X-Request-ID` of the request that made the change.")
    ip: str | None = Field(description="Client IP of that request.")
    recovered: bool = Field(description="Resolved by the recovery job after the process making the change "
                                        "stopped: `changes` are what it found changed since the change began.")
    at: UtcDateTime = Field(description="When the change began (UTC).")


def audit_entry_out(e: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        id=e.id, action=e.action, outcome=e.outcome.value, actor_id=e.actor_id, actor_role=e.actor_role,
        target_type=e.target_type, target_id=e.target_id, status=e.status, request_id=e.request_id, ip=e.ip,
        recovered=e.recovered, at=e.at,
        changes=[AuditChangeOut(field=c.field, before=c.before, after=c.after) for c in e.changes])
