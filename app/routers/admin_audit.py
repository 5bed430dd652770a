"""/admin/audit (admins): the audit log of staff and admin changes, newest first. Read-only: no route updates
or deletes an entry (entries expire after AUDIT_RETENTION_DAYS)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.core.problems import problem_responses
from app.deps import admin_user
from app.schemas.audit import AuditEntryOut, AuditListParams, audit_entry_out
from app.schemas.common import Page
from app.services import audit

router = APIRouter(prefix="/audit", tags=["admin: audit"], dependencies=[Depends(admin_user)])


@router.get("", response_model=Page[AuditEntryOut], responses=problem_responses(422),
            summary="Audit entries, newest first, by actor, target, action and time range")
async def list_audit(params: Annotated[AuditListParams, Query()]) -> Page[AuditEntryOut]:
    docs, cursor = await audit.list_entries(params, actor_id=params.actor_id, target_type=params.target_type,
                                            target_id=params.target_id, action=params.action,
                                            since=params.from_, until=params.to)
    return Page(items=[audit_entry_out(e) for e in docs], next_cursor=cursor)
