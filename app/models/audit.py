"""The audit log (storage): one entry per staff or admin change, written ahead of the change.

An entry is first inserted as a ``pending`` intent (who, what, the target's state before, as JSON text in
``snapshot``), then the change runs, then the entry is replaced by its ``committed`` form (the changed fields
only, ``snapshot`` dropped). A pending intent left behind by a crashed process is resolved by the recovery
job (``app/services/audit.py``). Entries are never updated or deleted through the API; MongoDB deletes them
at ``expires_at`` (TTL index, ``AUDIT_RETENTION_DAYS`` after the change).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from beanie import Document
from pydantic import BaseModel, Field
from pymongo import ASCENDING, DESCENDING, IndexModel

from app.models.base import UtcDateTime, id_field, now_field


class AuditState(StrEnum):
    pending = "pending"  # the intent, written before the change
    committed = "committed"  # the change's outcome is known (or was recovered)


class AuditOutcome(StrEnum):
    pending = "pending"  # not resolved yet (the request is running, or its process died)
    succeeded = "succeeded"
    failed = "failed"  # the request failed but changed something before it did (e.g. a refund Stripe refused)
    unknown = "unknown"  # recovered after a crash without a way to read the result (a create whose id was lost)


class AuditChange(BaseModel):
    """One changed field: a dotted path into the admin API's view of the target (``sizes.deluxe.price``;
    list items keyed by their ``id`` or ``code``, else by position) with its values before and after (JSON;
    null when absent)."""

    field: str
    before: Any = None
    after: Any = None


class AuditEntry(Document):
    # written with new_id_at("aud", at)
    id: str = id_field("aud")  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    state: AuditState = AuditState.pending
    outcome: AuditOutcome = AuditOutcome.pending
    action: str  # "<target>.<verb>", e.g. "product.update"
    actor_id: str | None = None  # the staff member or admin; None for the command line
    actor_role: str | None = None  # their role at the time ("staff", "admin", "cli")
    target_type: str
    target_id: str | None = None  # None until a create's new id is known
    changes: list[AuditChange] = Field(default_factory=list)
    status: int | None = None  # the HTTP status answered (None outside a request, or while pending)
    request_id: str | None = None
    ip: str | None = None
    recovered: bool = False  # resolved by the recovery job, not by the request that made the change
    # Pending only: the target's flattened state before the change (JSON text; never returned by the API).
    snapshot: str | None = None
    at: UtcDateTime = now_field()
    expires_at: UtcDateTime

    class Settings:
        name = "audit_log"
        # Every list is newest first by the time-ordered _id, whose time part is `at` to the millisecond, so a
        # time range is an _id range; each filter field has its own index. `at` is written only by insert or
        # whole replace (a real date on the embedded server).
        indexes = [
            IndexModel([("actor_id", ASCENDING), ("at", DESCENDING)], name="actor_at"),
            IndexModel([("target_id", ASCENDING), ("at", DESCENDING)], name="target_at"),
            IndexModel([("target_type", ASCENDING), ("at", DESCENDING)], name="target_type_at"),
            IndexModel([("action", ASCENDING), ("at", DESCENDING)], name="action_at"),
            IndexModel([("state", ASCENDING), ("at", ASCENDING)], name="state_at"),
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),
        ]
