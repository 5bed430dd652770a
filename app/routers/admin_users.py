"""/admin/users (admins only): list, detail, change role, deactivate/reactivate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.core.problems import problem_responses
from app.deps import AdminUser, admin_user, get_user_admin_service
from app.routers.params import UserId
from app.schemas.common import Page
from app.schemas.users import AdminUserPatch, UserListParams, UserOut
from app.services.accounts import UserAdminService, profile, profiles

router = APIRouter(prefix="/users", tags=["admin: users"], dependencies=[Depends(admin_user)])

Users = Annotated[UserAdminService, Depends(get_user_admin_service)]


@router.get("", response_model=Page[UserOut], responses=problem_responses(422),
            summary="List users (search by email or name)")
async def list_users(users: Users, params: Annotated[UserListParams, Query()]) -> Page[UserOut]:
    docs, cursor, total = await users.list(params, q=params.q, role=params.role, active=params.active)
    return Page(items=await profiles(docs), next_cursor=cursor, total=total)


@router.get("/{user_id}", response_model=UserOut, responses=problem_responses(404))
async def get_user(user_id: UserId, users: Users) -> UserOut:
    return await profile(await users.get(user_id))


@router.patch("/{user_id}", response_model=UserOut, responses=problem_responses(404, 409, 422),
              summary="Change role or active flag (sessions of the user end)")
async def patch_user(user_id: UserId, body: AdminUserPatch, users: Users, actor: AdminUser) -> UserOut:
    return await profile(await users.update(actor, user_id, body.role, body.is_active))
