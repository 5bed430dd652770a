"""The /admin router: every admin route sits behind its staff guard (user management, delivery and promo codes
also need admin) and its audit trail: every non-GET route writes one audit entry (app/services/audit.py)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.routing import iter_route_contexts

from app.core.context import request_id_var
from app.core.problems import problem_responses
from app.deps import staff_user
from app.models.user import User
from app.routers.params import API_PREFIX
from app.services import audit
from app.services.audit_targets import ROUTE_ACTIONS, AuditAction, AuditTarget

log = logging.getLogger("app.audit")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A write route missing from ROUTE_ACTIONS (a test prevents it) is still recorded, by its path.
UNMAPPED = AuditTarget("route", None, lambda doc, settings: doc)


def full_path(request: Request) -> str:
    """The matched route's path as declared with every prefix (``/api/v1/admin/products/{product_id}``): the
    route in the scope only knows its own router's part, so a table of every route's full path is built once."""
    table = getattr(request.app.state, "route_paths", None)
    if table is None:
        table = {id(ctx.original_route): ctx.path for ctx in iter_route_contexts(request.app.routes)}
        request.app.state.route_paths = table
    route = request.scope["route"]
    path: str = table.get(id(route), route.path)
    return path


def route_action(method: str, path: str) -> AuditAction:
    """The audited action of an admin write route (``path`` as declared, with the API prefix)."""
    key = (method, path.removeprefix(API_PREFIX))
    action = ROUTE_ACTIONS.get(key)
    if action is None:
        log.error("admin write route without an audit action: %s %s", *key)
        return AuditAction(f"route.{method.lower()}", UNMAPPED, fixed_id=key[1])
    return action


async def audit_trail(request: Request, response: Response,
                      actor: Annotated[User, Depends(staff_user)]) -> AsyncIterator[None]:
    """Around every admin write: the write-ahead audit entry of ``app.services.audit.audited``. Reads go
    through untouched."""
    if request.method in SAFE_METHODS:
        yield
        return
    route = request.scope["route"]
    action = route_action(request.method, full_path(request))
    target_id = action.fixed_id or (request.path_params.get(action.id_param) if action.id_param else None)
    who = audit.Actor(id=actor.id, role=actor.role.value, ip=request.client.host if request.client else None,
                      request_id=request_id_var.get())
    async with audit.audited(action, target_id, who, request.app.state.settings,
                             success_status=route.status_code or 200) as scope:
        yield
        if scope.target_id is None and (location := response.headers.get("location")):
            scope.target_id = location.rstrip("/").rsplit("/", 1)[-1]  # a create: the new resource's id


router = APIRouter(prefix="/admin", dependencies=[Depends(staff_user), Depends(audit_trail, scope="function")],
                   responses=problem_responses(401, 403))
