"""The audit log: one entry per staff or admin change, never lost when a process dies mid-change.

**How an entry is written (write-ahead intent).** The embedded database has no transactions (it accepts
them but does not roll back), and a change and its entry live in different documents, so they cannot be one
atomic write. Instead the entry is written *first*:

1. ``AuditScope.open`` reads the target's state (its admin view, ``app/services/audit_targets.py``) and
   inserts a ``pending`` entry holding it. If that insert fails, the request fails before anything changes.
2. The change runs (the route and its service, untouched).
3. ``AuditScope.close`` reads the target again and replaces the entry with its ``committed`` form: the
   changed fields only, the outcome and the HTTP status. A failed request that changed nothing removes its
   intent (nothing happened); one that changed something (e.g. a refund Stripe refused, marked failed) is
   committed as ``failed`` with its changes.
4. If the process dies between 1 and 3, the intent stays ``pending``. The ``audit-recovery`` job (every API
   process; ``AUDIT_RECOVERY_GRACE_SECONDS`` after the intent) compares the stored state with the target's
   state now: a difference is committed with ``recovered: true``, no difference means the change never
   happened and the intent is removed. So a change can never be left without its entry.

On MongoDB with a replica set the same could be one transaction; the intent protocol works on both and
costs two ``_id`` reads and two writes per admin change.

**Where it runs.** Every non-GET route under ``/admin`` gets it from one dependency on the admin router
(``app/routers/admin.py``), using the route's action from ``ROUTE_ACTIONS`` — no route or service carries
audit code. A service that knows the exact values (a stock change, from its atomic update) hands them to the
open scope with ``note_change``; they replace the read-back diff, which a concurrent checkout could blur.

**Elsewhere** (the command line, background work such as a campaign being sent): call ``record`` — the one
function to use outside the admin API — with the before and after state you hold, or wrap the change in
``audited(...)`` to get the same write-ahead protocol.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from app.config import Settings
from app.core.audit_diff import diff, redact
from app.core.clock import ensure_utc, utcnow
from app.core.ids import id_floor, new_id_at
from app.core.pagination import PageParams, paginate
from app.models.audit import AuditChange, AuditEntry, AuditOutcome, AuditState
from app.services.audit_targets import ACTIONS, TARGETS, AuditAction

log = logging.getLogger("app.audit")


@dataclass(frozen=True)
class Actor:
    """Who made a change: a user id and role (``cli`` for the command line), the client IP and request id."""

    id: str | None
    role: str
    ip: str | None = None
    request_id: str | None = None


def _expires(settings: Settings, at: Any) -> Any:
    return at + timedelta(days=settings.audit_retention_days)


def _entry_doc(entry: AuditEntry) -> dict[str, Any]:
    doc: dict[str, Any] = entry.model_dump(by_alias=True)
    return doc


class AuditScope:
    """The write-ahead entry of one change (see the module docstring). Use ``audited`` or the admin router's
    dependency rather than this class directly."""

    def __init__(self, action: AuditAction, target_id: str | None, actor: Actor, settings: Settings) -> None:
        self.action = action
        self.target_id = target_id
        self.actor = actor
        self.settings = settings
        self.before: dict[str, Any] = {}
        self.exact: tuple[dict[str, Any], dict[str, Any]] | None = None
        self.entry: AuditEntry | None = None

    async def _snapshot(self) -> dict[str, Any]:
        if self.target_id is None:
            return {}
        return await self.action.target.snapshot(self.target_id, self.settings, self.action.only)

    async def open(self) -> None:
        """Read the target and insert the pending entry. Raises what the database raises (the caller then
        fails before changing anything)."""
        self.before = await self._snapshot()
        now = utcnow()
        self.entry = AuditEntry(
            id=new_id_at("aud", now), action=self.action.name, actor_id=self.actor.id, actor_role=self.actor.role,
            target_type=self.action.target.name, target_id=self.target_id, request_id=self.actor.request_id,
            ip=self.actor.ip, snapshot=json.dumps(self.before), at=now, expires_at=_expires(self.settings, now))
        await AuditEntry.get_pymongo_collection().insert_one(_entry_doc(self.entry))

    def note(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        """Exact values from the service that made the change (flattened paths of the target's view)."""
        if self.exact is None:
            self.exact = (dict(before), dict(after))
        else:
            self.exact = ({**before, **self.exact[0]}, {**self.exact[1], **after})

    async def close(self, *, status: int, failed: bool) -> None:
        """Commit the entry with what changed (or drop the intent of a failed request that changed nothing).
        Never raises: if the database fails here the intent stays pending and the recovery job resolves it."""
        entry = self.entry
        assert entry is not None, "close() follows a successful open()"
        coll = AuditEntry.get_pymongo_collection()
        try:
            if self.exact is not None:
                changes = diff(*self.exact)
            else:
                changes = diff(self.before, await self._snapshot())
            if failed and not changes:
                await coll.delete_one({"_id": entry.id, "state": AuditState.pending.value})
                return
            committed = entry.model_copy(update={
                "state": AuditState.committed, "target_id": self.target_id, "snapshot": None, "status": status,
                "outcome": AuditOutcome.failed if failed else AuditOutcome.succeeded,
                "changes": [AuditChange(**c) for c in changes]})
            # Unconditional: the request's own result wins over a recovery that ran first (slow request).
            await coll.replace_one({"_id": entry.id}, _entry_doc(committed), upsert=True)
        except Exception:
            log.exception("audit entry %s left pending (the recovery job will resolve it)", entry.id)


_current: ContextVar[AuditScope | None] = ContextVar("audit_scope", default=None)


def note_change(target_type: str, target_id: str, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Give the audit entry being written for ``target_type``/``target_id`` (if any, in this request) the
    exact before and after values of the change, as dotted paths of the target's admin view (e.g.
    ``{"sizes.deluxe.stock": 3}``). A no-op outside an audited change of that target."""
    scope = _current.get()
    if scope is not None and scope.action.target.name == target_type and scope.target_id == target_id:
        scope.note(before, after)


def status_of(exc: BaseException) -> int:
    """The HTTP status an exception becomes (AppError, HTTPException, validation error; else 500)."""
    status = getattr(exc, "status", None) or getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    return 422 if type(exc).__name__ == "RequestValidationError" else 500


@asynccontextmanager
async def audited(action: AuditAction, target_id: str | None, actor: Actor, settings: Settings,
                  *, success_status: int = 200) -> AsyncIterator[AuditScope]:
    """Write-ahead audit of the change made inside the block (see the module docstring). A create sets
    ``scope.target_id`` inside the block once the new id is known. Raises what ``AuditScope.open`` raises,
    before the block runs; exceptions of the block propagate after the entry is resolved."""
    scope = AuditScope(action, target_id, actor, settings)
    await scope.open()
    token = _current.set(scope)
    try:
        yield scope
    except BaseException as exc:
        _current.reset(token)
        await scope.close(status=status_of(exc), failed=True)
        raise
    _current.reset(token)
    await scope.close(status=success_status, failed=False)


async def record(action: str, target_type: str, target_id: str, *, before: Any = None, after: Any = None,
                 actor: Actor, settings: Settings, status: int | None = None) -> AuditEntry:
    """Write one committed audit entry for a change made outside the admin API (command line, background
    work): ``before``/``after`` are the target's state as JSON-able dicts (None when it did not / no longer
    exist); only changed paths are kept and secrets are dropped (``audit_diff.redact``). Returns the entry.
    Prefer ``audited`` when the change has not happened yet: an entry written after the change is lost if the
    process dies in between."""
    now = utcnow()
    changes = diff(redact(before or {}), redact(after or {}))
    entry = AuditEntry(id=new_id_at("aud", now), state=AuditState.committed, outcome=AuditOutcome.succeeded,
                       action=action, actor_id=actor.id, actor_role=actor.role, target_type=target_type,
                       target_id=target_id,
                       changes=[AuditChange(**c) for c in changes], status=status, request_id=actor.request_id,
                       ip=actor.ip, at=now, expires_at=_expires(settings, now))
    await AuditEntry.get_pymongo_collection().insert_one(_entry_doc(entry))
    return entry


# --- recovery -------------------------------------------------------------------------------------------
async def recover_pending(settings: Settings, *, limit: int = 100) -> int:
    """Resolve intents older than ``AUDIT_RECOVERY_GRACE_SECONDS`` (their process died mid-change): commit
    what changed since the intent (``recovered: true``, outcome ``unknown``), or remove the intent when
    nothing did. Safe with several processes: each write is conditional on the entry still being pending.
    Returns how many intents were resolved."""
    coll = AuditEntry.get_pymongo_collection()
    cutoff = utcnow() - timedelta(seconds=settings.audit_recovery_grace_seconds)
    raws = await coll.find({"state": AuditState.pending.value, "at": {"$lt": cutoff}}).sort("at", 1) \
        .limit(limit).to_list(None)
    done = 0
    for raw in raws:
        entry = AuditEntry.model_validate(raw)
        action = ACTIONS.get(entry.action)
        target = TARGETS.get(entry.target_type)
        if entry.target_id is not None and target is not None:
            before = json.loads(entry.snapshot or "{}")
            after = await target.snapshot(entry.target_id, settings, action.only if action else ())
            changes = diff(before, after)
            if not changes:
                await coll.delete_one({"_id": entry.id, "state": AuditState.pending.value})
                done += 1
                continue
        else:
            changes = []  # a create whose new id was never learnt: the entry says so (outcome unknown)
        committed = entry.model_copy(update={
            "state": AuditState.committed, "outcome": AuditOutcome.unknown, "recovered": True, "snapshot": None,
            "changes": [AuditChange(**c) for c in changes]})
        res = await coll.replace_one({"_id": entry.id, "state": AuditState.pending.value}, _entry_doc(committed))
        done += res.matched_count
        log.warning("audit entry %s (%s on %s) recovered after its process stopped", entry.id, entry.action,
                    entry.target_id)
    return done


def recovery_job(settings: Settings) -> Callable[[], Awaitable[int]]:
    """The ``audit-recovery`` job for the JobRunner: ``recover_pending`` at most every quarter of the grace
    period (at most every minute), however often the runner polls."""
    interval = min(60.0, settings.audit_recovery_grace_seconds / 4)
    last = [-interval]

    async def run() -> int:
        now = time.monotonic()
        if now - last[0] < interval:
            return 0
        last[0] = now
        return await recover_pending(settings)

    return run


# --- reading --------------------------------------------------------------------------------------------
NEWEST = [("_id", -1)]


async def list_entries(params: PageParams, *, actor_id: str | None = None, target_type: str | None = None,
                       target_id: str | None = None, action: str | None = None, since: Any = None,
                       until: Any = None) -> tuple[list[AuditEntry], str | None]:
    """Entries newest first with the given filters (``since`` inclusive, ``until`` exclusive; UTC).
    Raises InvalidCursor (422) for a cursor this list did not issue."""
    query: dict[str, Any] = {}
    if actor_id:
        query["actor_id"] = actor_id
    if target_type:
        query["target_type"] = target_type
    if target_id:
        query["target_id"] = target_id
    if action:
        query["action"] = action
    # The time range is an _id range: an entry's id carries its `at` to the millisecond (new_id_at), and the
    # embedded server compares dates only to the second (tests/test_db_contract_audit_analytics.py).
    ids: dict[str, Any] = {}
    if since is not None:
        ids["$gte"] = id_floor("aud", ensure_utc(since))
    if until is not None:
        ids["$lt"] = id_floor("aud", ensure_utc(until))
    if ids:
        query["_id"] = ids
    docs, cursor, _ = await paginate(AuditEntry, query, NEWEST, params)
    return docs, cursor
