"""The /admin router: every admin route sits behind its staff guard; user management also needs admin."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.deps import staff_user
from app.models.common import problem_responses

router = APIRouter(prefix="/admin", dependencies=[Depends(staff_user)], responses=problem_responses(401, 403))
