"""Stream tickets: issued to whoever may open a stream, taken once, and the re-check of a signed-in stream.

A ticket is a random secret valid EVENTS_TICKET_SECONDS (at most 60) for one stream: one order's stream, or
the staff board. Only its SHA-256 hash is stored (models/events.py). Taking it deletes it in the same atomic
operation, filtered on the stream it was issued for, so it opens at most one stream on any process; an
expired, reused or foreign ticket is a 401 ``invalid-ticket``.

A ticket remembers the account and the refresh-session family of the access token that asked for it; while
the stream runs, ``still_allowed`` checks that the account is active (and still staff for the board), that no
"sign out everywhere", password change or role change happened since (``tokens_valid_after``), and that the
session family was not signed out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Literal

from app.config import Settings
from app.core.clock import utcnow
from app.core.errors import Forbidden, Unauthorized
from app.core.security import hash_token, new_token
from app.models.auth import RefreshSession
from app.models.events import StreamTicket
from app.models.order import Order
from app.models.user import Role, User
from app.schemas.events import TicketOut

STAFF_ROLES = (Role.staff, Role.admin)


class InvalidTicket(Unauthorized):
    code = "invalid-ticket"


class TicketService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def issue(self, scope: Literal["order", "staff"], *, user: User | None, session_id: str | None,
                    order: Order | None = None) -> TicketOut:
        """A ticket for ``scope``. The caller has authorized it: ``order`` belongs to ``user`` or the guest
        proved the order token. The staff board needs a staff ``user`` (401 / 403 otherwise)."""
        if scope == "staff":
            if user is None:
                raise Unauthorized("Sign in to open the staff board.")
            if user.role not in STAFF_ROLES:
                raise Forbidden("The staff board is for shop staff.")
        family = None
        if user is not None and session_id:
            session = await RefreshSession.get(session_id)
            family = session.family_id if session is not None else None
        secret = new_token()
        expires = utcnow() + timedelta(seconds=self.settings.events_ticket_seconds)
        order_id = order.id if order is not None else ""
        await StreamTicket(id=hash_token(secret), scope=scope, order_id=order_id,
                           user_id=user.id if user is not None else None, family_id=family,
                           expires_at=expires).insert()
        path = f"/api/v1/events/orders/{order_id}" if scope == "order" else "/api/v1/events/staff"
        return TicketOut(ticket=secret, stream=scope, order_id=order_id or None, expires_at=expires,
                         url=f"{path}?ticket={secret}")

    async def take(self, secret: str, scope: Literal["order", "staff"], order_id: str = "") -> StreamTicket:
        """Consume the ticket for this stream (atomic: at most one caller anywhere gets it). InvalidTicket when
        it is unknown, expired or used, or when the account or session that asked for it has since been signed
        out, deactivated or (staff board) demoted — the same check an open stream repeats periodically."""
        raw = await StreamTicket.get_pymongo_collection().find_one_and_delete(
            {"_id": hash_token(secret), "scope": scope, "order_id": order_id})
        ticket: StreamTicket | None = StreamTicket.model_validate(raw) if raw is not None else None
        if ticket is None or ticket.expires_at <= utcnow():
            raise InvalidTicket("The stream ticket is invalid, expired or already used; ask for a new one.")
        check = self.still_allowed(ticket)
        if check is not None and not await check():
            raise InvalidTicket("The session that asked for this stream ticket has ended; sign in again.")
        return ticket

    def still_allowed(self, ticket: StreamTicket) -> Callable[[], Awaitable[bool]] | None:
        """The periodic re-check of a signed-in stream (None for a guest's: the order token cannot be revoked)."""
        if ticket.user_id is None:
            return None

        async def check() -> bool:
            user = await User.get(ticket.user_id)
            if user is None or not user.is_active:
                return False
            if ticket.scope == "staff" and user.role not in STAFF_ROLES:
                return False
            if user.tokens_valid_after and user.tokens_valid_after > ticket.created_at:
                return False
            if ticket.family_id is not None:
                live = await RefreshSession.find({"family_id": ticket.family_id, "revoked_at": None}).to_list()
                if not any(s.expires_at > utcnow() for s in live):
                    return False
            return True

        return check
